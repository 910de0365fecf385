"""Drift statistics: KS, chi-square, Z, Jensen-Shannon, Wasserstein and Benjamini-Hochberg.

Each test takes a baseline column summary and a window summary (never raw reference data) and
matches Evidently 0.7's definition; numeric tests run on raw values when both sides kept them,
otherwise on the reference's grid cells (:mod:`monitors.baseline.grid`) or quantile bins, and
say so (``approximate``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from monitors.baseline.column_summary import (
    RAW_LIMIT,
    CategoricalSummary,
    ColumnType,
    FloatArray,
    NumericSummary,
)
from monitors.drift.window import CategoricalWindow, NumericWindow, WindowSummary
from monitors.spec import DriftMethod

__all__ = [
    "benjamini_hochberg",
    "category_counts",
    "chi_square",
    "choose_method",
    "distinct_values",
    "jensen_shannon",
    "ks_test",
    "wasserstein",
    "z_test",
]


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Return Benjamini-Hochberg adjusted p-values (the step-up false-discovery-rate procedure)."""
    if not p_values:
        return []
    values = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(values)
    ranked = values[order] * values.size / np.arange(1, values.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    result = np.empty_like(adjusted)
    result[order] = np.minimum(adjusted, 1.0)
    return [float(value) for value in result]


def distinct_values(reference: Any, current: WindowSummary) -> int | None:
    """Count distinct non-missing values on both sides, ``None`` when there are many."""
    if isinstance(reference, CategoricalSummary) and isinstance(current, CategoricalWindow):
        return len(set(reference.frequencies) | set(current.frequencies))
    if isinstance(reference, NumericSummary) and isinstance(current, NumericWindow):
        known = reference.frequencies()
        if known is None or current.frequencies is None:
            return None
        return len(set(known) | set(current.frequencies))
    return None


def choose_method(column: ColumnType, *, reference_rows: int, distinct: int | None) -> DriftMethod:
    """Pick the drift method Evidently 0.7 picks by default for this column."""
    few = distinct is not None and distinct <= 5
    if reference_rows <= RAW_LIMIT:
        if column == "numeric" and not few:
            return DriftMethod.KS
        binary = distinct is not None and distinct <= 2
        return DriftMethod.Z if binary else DriftMethod.CHI_SQUARE
    if column == "numeric" and not few:
        return DriftMethod.WASSERSTEIN
    return DriftMethod.JENSEN_SHANNON


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


def category_counts(
    reference: Any, current: WindowSummary
) -> tuple[list[Any], FloatArray, FloatArray] | None:
    """Return the union of categories with reference and current counts (few values only)."""
    if isinstance(reference, CategoricalSummary) and isinstance(current, CategoricalWindow):
        ref_freq: dict[Any, int] = reference.frequencies
        cur_freq: dict[Any, int] = current.frequencies
    elif isinstance(reference, NumericSummary) and isinstance(current, NumericWindow):
        known = reference.frequencies()
        if known is None or current.frequencies is None:
            return None
        ref_freq = dict(known)
        cur_freq = current.frequencies
    else:
        return None
    keys = sorted(set(ref_freq) | set(cur_freq), key=_sort_key)
    ref = np.asarray([ref_freq.get(key, 0) for key in keys], dtype=np.float64)
    cur = np.asarray([cur_freq.get(key, 0) for key in keys], dtype=np.float64)
    return keys, ref, cur


def chi_square(ref: FloatArray, cur: FloatArray) -> tuple[float, float]:
    """Return Evidently's chi-square goodness-of-fit p-value and Cramér's V (ref vs current)."""
    from scipy import stats

    expected = ref * cur.sum() / ref.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(
            expected > 0, (cur - expected) ** 2 / expected, np.where(cur > 0, np.inf, 0)
        )
    statistic = float(terms.sum())
    dof = ref.size - 1
    p_value = float(stats.chi2.sf(statistic, dof)) if dof > 0 else 1.0
    table = np.vstack([ref, cur])
    total = table.sum()
    expected_table = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        cells = np.where(expected_table > 0, (table - expected_table) ** 2 / expected_table, 0.0)
    cramers_v = math.sqrt(float(cells.sum()) / total) if dof > 0 else 0.0
    return p_value, cramers_v


def z_test(keys: list[Any], ref: FloatArray, cur: FloatArray) -> tuple[float, float]:
    """Return Evidently's two-proportion Z-test p-value and Cohen's h."""
    from scipy import stats

    n_ref, n_cur = float(ref.sum()), float(cur.sum())
    if len(keys) <= 1:
        return 1.0, 0.0
    p_ref = 1.0 - ref[0] / n_ref
    p_cur = 1.0 - cur[0] / n_cur
    pooled = (p_ref * n_ref + p_cur * n_cur) / (n_ref + n_cur)
    denominator = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    z = (p_ref - p_cur) / denominator if denominator > 0 else 0.0
    p_value = float(2 * stats.norm.sf(abs(z)))
    cohens_h = abs(2 * math.asin(math.sqrt(p_ref)) - 2 * math.asin(math.sqrt(p_cur)))
    return p_value, cohens_h


def jensen_shannon(ref: FloatArray, cur: FloatArray) -> float:
    """Return the Jensen-Shannon distance (natural log) between two count vectors."""
    p = ref / ref.sum()
    q = cur / cur.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return math.sqrt(max(float(left + right) / 2, 0.0))


def _bin_masses(reference: NumericSummary, current: NumericWindow) -> tuple[FloatArray, ...]:
    """Return per-edge atom masses and per-bin masses of both sides, as shares."""
    edges = reference.edges
    atom_index = np.searchsorted(edges, reference.atoms)
    ref_atoms = np.zeros(edges.size, dtype=np.float64)
    cur_atoms = np.zeros(edges.size, dtype=np.float64)
    ref_atoms[atom_index] = reference.atom_counts
    cur_atoms[atom_index] = current.atom_counts
    return (
        ref_atoms / reference.count,
        reference.bin_counts / reference.count,
        cur_atoms / current.count,
        current.bin_counts / current.count,
    )


def _binned_cdfs(
    reference: NumericSummary, current: NumericWindow
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return both CDFs just after each edge's atom and just before the next edge's atom."""
    ref_atoms, ref_bins, cur_atoms, cur_bins = _bin_masses(reference, current)
    below = current.below / current.count
    ref_after = np.cumsum(ref_atoms[:-1]) + np.concatenate(([0.0], np.cumsum(ref_bins)[:-1]))
    cur_after = (
        below + np.cumsum(cur_atoms[:-1]) + np.concatenate(([0.0], np.cumsum(cur_bins)[:-1]))
    )
    return ref_after, ref_after + ref_bins, cur_after, cur_after + cur_bins


def _wasserstein_binned(reference: NumericSummary, current: NumericWindow) -> float:
    """Return W1 = ∫|F_ref - F_cur| from bins, exact wherever the CDFs do not cross in a bin.

    Inside bin ``[a, b)`` the integral of a CDF is ``w·F(a+) + Σ(b - v)/n`` over the bin's
    values, known exactly from its count and sum; where the difference changes sign inside a
    bin, both CDFs are taken as linear there. Beyond the reference's range the window's mass
    is integrated exactly.
    """
    edges = reference.edges
    tails = (current.below_mass + current.above_mass) / current.count
    if edges.size < 2:
        return tails
    ref_start, ref_end, cur_start, cur_end = _binned_cdfs(reference, current)
    start = ref_start - cur_start
    end = ref_end - cur_end
    widths = np.diff(edges)
    right = edges[1:]
    ref_area = widths * ref_start + (reference.bin_counts * right - reference.bin_sums) / (
        reference.count
    )
    cur_area = widths * cur_start + (current.bin_counts * right - current.bin_sums) / (
        current.count
    )
    exact = ref_area - cur_area
    middle = (4 * exact / np.where(widths > 0, widths, 1.0) - start - end) / 2
    crossing = (_linear_area(start, middle) + _linear_area(middle, end)) * widths / 2
    same_sign = (start * end >= 0) & (start * exact >= 0) & (end * exact >= 0)
    areas = np.where(same_sign, np.abs(exact), crossing)
    return float(areas.sum()) + tails


def _linear_area(start: FloatArray, end: FloatArray) -> FloatArray:
    """Return ∫|d| over a unit interval where ``d`` runs linearly from ``start`` to ``end``."""
    magnitude = np.abs(start) + np.abs(end)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(magnitude > 0, (start**2 + end**2) / (2 * magnitude), 0.0)
    return np.where(start * end >= 0, magnitude / 2, crossing)


def _wasserstein_grid(current: NumericWindow) -> float:
    """Return W1 from the window's cell counts: both CDFs linear between integration points."""
    grid, cells = current.grid, current.cells
    assert grid is not None
    assert cells is not None
    difference = grid.cdf - grid.window_cdf(cells, current.below, current.count)
    start, end = difference[:-1], difference[1:]
    magnitude = np.abs(difference)
    magnitude = magnitude[:-1] + magnitude[1:]
    areas = magnitude / 2 * grid.widths  # where the CDFs do not cross: (|a| + |b|) / 2
    crossing = np.flatnonzero(start * end < 0)  # few cells: the rest of _linear_area there
    if crossing.size:
        a, b, m = start[crossing], end[crossing], magnitude[crossing]
        areas[crossing] = (a**2 + b**2) / (2 * m) * grid.widths[crossing]
    return float(areas.sum()) + (current.below_mass + current.above_mass) / current.count


def _ks_statistic_grid(current: NumericWindow) -> float:
    grid, cells = current.grid, current.cells
    assert grid is not None
    assert cells is not None
    difference = grid.cdf - grid.window_cdf(cells, current.below, current.count)
    beyond = max(current.below, current.above) / current.count
    return float(max(np.abs(difference).max(), beyond))


def _ks_statistic_binned(reference: NumericSummary, current: NumericWindow) -> float:
    if current.cells is not None:
        return _ks_statistic_grid(current)
    ref_start, ref_end, cur_start, cur_end = _binned_cdfs(reference, current)
    below = current.below / current.count
    return float(max(np.abs(ref_start - cur_start).max(), np.abs(ref_end - cur_end).max(), below))


def ks_test(reference: NumericSummary, current: NumericWindow) -> tuple[float, float, bool]:
    """Return the KS p-value, statistic and whether it is approximate (bins, not values)."""
    from scipy import stats

    raw = current.raw_values()
    if reference.values is not None and raw is not None:
        result = stats.ks_2samp(reference.values, raw)
        return float(result.pvalue), float(result.statistic), False
    if reference.values is not None and current.grid_le is not None and current.grid_lt is not None:
        grid = np.unique(reference.values)
        ref_le = np.searchsorted(reference.values, grid, side="right") / reference.count
        ref_before = np.concatenate(([0.0], ref_le[:-1]))
        statistic = float(
            max(
                np.abs(ref_le - current.grid_le / current.count).max(),
                np.abs(ref_before - current.grid_lt / current.count).max(),
            )
        )
        approximate = False
    else:
        statistic = _ks_statistic_binned(reference, current)
        approximate = True
    m, n = sorted([float(reference.count), float(current.count)], reverse=True)
    p_value = float(stats.kstwo.sf(statistic, np.round(m * n / (m + n))))
    return min(max(p_value, 0.0), 1.0), statistic, approximate


def wasserstein(reference: NumericSummary, current: NumericWindow) -> tuple[float, bool]:
    """Return the Wasserstein distance normalised by the reference's standard deviation."""
    norm = max(reference.std, 0.001)
    raw = current.raw_values()
    if reference.values is not None and raw is not None:
        from scipy import stats

        return float(stats.wasserstein_distance(reference.values, raw)) / norm, False
    if current.cells is not None:
        return _wasserstein_grid(current) / norm, True
    return _wasserstein_binned(reference, current) / norm, True
