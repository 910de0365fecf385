"""Data drift and prediction drift, computed with numpy and scipy against a stored baseline.

The method per column follows Evidently 0.7's defaults (``_get_default_stattest``), so verdicts
agree with its ``DataDriftPreset``:

====================  ===========================================  =====================
reference rows        numeric (> 5 distinct values) / (≤ 5)        categorical
====================  ===========================================  =====================
≤ 1,000               KS p-value / chi-square (> 2) or Z (≤ 2)     chi-square or Z
> 1,000               normalised Wasserstein (0.1) / Jensen-Sh.    Jensen-Shannon (0.1)
====================  ===========================================  =====================

"distinct values" counts both sides together, as Evidently does. P-value tests drift below
0.05; with ``fdr`` set, the p-values of all tested columns are first adjusted with
Benjamini-Hochberg, so judging twenty columns does not flag one by chance. Every p-value comes
with an effect size (KS statistic, Cramér's V, Cohen's h). The dataset drifts when the share of
drifted columns reaches ``drift_share`` (0.5, Evidently's default).

Speed: a window is never compared value by value with the reference. Each numeric column is
sorted once and counted into the baseline's quantile bins (plus exact counts at heavy values and
the exact mass beyond the reference range), which gives the normalised Wasserstein distance
with a relative error far below 1 % on large windows. Parquet windows stream in batches, so
memory stays bounded by the batch size, whatever the window's length.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lineage.errors import InvalidInput
from monitors.baseline import (
    FREQUENCY_LIMIT,
    RAW_LIMIT,
    Baseline,
    CategoricalSummary,
    ColumnType,
    FloatArray,
    IntArray,
    NumericSummary,
    bin_totals,
    count_at_atoms,
    numeric_values,
    plain_value,
)
from monitors.findings import Finding, Status
from monitors.registry import Chart, KindResult, MonitorContext, Progress, register_kind
from monitors.spec import DriftMethod, Kind, MonitorSpec

__all__ = [
    "BATCH_ROWS",
    "DEFAULT_THRESHOLDS",
    "ColumnDrift",
    "DriftResult",
    "WindowSummary",
    "benjamini_hochberg",
    "choose_method",
    "compare",
    "compute_drift",
    "summarise_window",
]

BATCH_ROWS = 262_144
"""Rows per Parquet batch when a window streams from a file."""
EXACT_KS_LIMIT = 10_000
"""Up to this many window values KS p-values are exact (scipy's ``auto`` boundary)."""
DEFAULT_THRESHOLDS: dict[DriftMethod, float] = {
    DriftMethod.KS: 0.05,
    DriftMethod.CHI_SQUARE: 0.05,
    DriftMethod.Z: 0.05,
    DriftMethod.WASSERSTEIN: 0.1,
    DriftMethod.JENSEN_SHANNON: 0.1,
}
"""Evidently 0.7's default threshold per method (p-value level or distance)."""
P_VALUE_METHODS = frozenset({DriftMethod.KS, DriftMethod.CHI_SQUARE, DriftMethod.Z})
CHART_BINS = 20


@dataclass(slots=True)
class _NumericWindow:
    """The running summary of one numeric window column against its reference bins."""

    reference: NumericSummary
    count: int = 0
    missing: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    bin_counts: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    bin_sums: FloatArray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    atom_counts: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    below: int = 0
    below_mass: float = 0.0
    above: int = 0
    above_mass: float = 0.0
    grid_le: IntArray | None = None
    grid_lt: IntArray | None = None
    frequencies: dict[float, int] | None = field(default_factory=dict)
    raw: list[FloatArray] | None = field(default_factory=list)

    def __post_init__(self) -> None:
        edges = self.reference.edges
        self.bin_counts = np.zeros(max(edges.size - 1, 0), dtype=np.int64)
        self.bin_sums = np.zeros(max(edges.size - 1, 0), dtype=np.float64)
        self.atom_counts = np.zeros(self.reference.atoms.size, dtype=np.int64)
        if self.reference.distinct is None:
            self.frequencies = None
        if self.reference.values is not None:
            self.grid_le = np.zeros(np.unique(self.reference.values).size, dtype=np.int64)
            self.grid_lt = np.zeros_like(self.grid_le)

    def add(self, finite: FloatArray, missing: int) -> None:
        """Fold a batch of finite values (and how many were missing) into the summary."""
        self.missing += missing
        if finite.size == 0:
            return
        ordered = np.sort(finite)
        size = int(ordered.size)
        self.count += size
        self.total += float(ordered.sum())
        self.minimum = min(self.minimum, float(ordered[0]))
        self.maximum = max(self.maximum, float(ordered[-1]))
        reference = self.reference
        if reference.edges.size:
            low, high = float(reference.edges[0]), float(reference.edges[-1])
            below = int(np.searchsorted(ordered, low, side="left"))
            start = int(np.searchsorted(ordered, high, side="right"))
            self.below += below
            self.below_mass += below * low - float(ordered[:below].sum())
            self.above += size - start
            self.above_mass += float(ordered[start:].sum()) - (size - start) * high
            if self.bin_counts.size:
                counts, sums = bin_totals(ordered, reference.edges, reference.atoms)
                self.bin_counts += counts
                self.bin_sums += sums
            self.atom_counts += count_at_atoms(ordered, reference.atoms)
        if self.grid_le is not None and self.grid_lt is not None and reference.values is not None:
            grid = np.unique(reference.values)
            self.grid_le += np.searchsorted(ordered, grid, side="right")
            self.grid_lt += np.searchsorted(ordered, grid, side="left")
        if self.frequencies is not None:
            change = np.flatnonzero(np.diff(ordered)) + 1
            if change.size + 1 + len(self.frequencies) > 2 * FREQUENCY_LIMIT:
                self.frequencies = None
            else:
                starts = np.concatenate(([0], change))
                counts = np.diff(np.concatenate((starts, [size])))
                for value, count in zip(ordered[starts], counts, strict=True):
                    key = float(value)
                    self.frequencies[key] = self.frequencies.get(key, 0) + int(count)
                if len(self.frequencies) > FREQUENCY_LIMIT:
                    self.frequencies = None
        if self.raw is not None:
            if self.count > EXACT_KS_LIMIT:
                self.raw = None
            else:
                self.raw.append(ordered)

    def raw_values(self) -> FloatArray | None:
        """Return every window value when the window was small enough to keep them."""
        if self.raw is None:
            return None
        if not self.raw:
            return np.empty(0, dtype=np.float64)
        return np.sort(np.concatenate(self.raw))


@dataclass(slots=True)
class _CategoricalWindow:
    """The running category counts of one categorical window column."""

    frequencies: dict[Any, int] = field(default_factory=dict)
    missing: int = 0

    @property
    def count(self) -> int:
        return sum(self.frequencies.values())

    def add(self, counts: Iterable[tuple[Any, int]], missing: int) -> None:
        """Fold a batch's category counts into the summary."""
        self.missing += missing
        for key, count in counts:
            if count:
                value = plain_value(key)
                self.frequencies[value] = self.frequencies.get(value, 0) + int(count)


WindowSummary = _NumericWindow | _CategoricalWindow


def _new_summary(reference: NumericSummary | CategoricalSummary) -> WindowSummary:
    if isinstance(reference, NumericSummary):
        return _NumericWindow(reference=reference)
    return _CategoricalWindow()


def _add_series(summary: WindowSummary, values: pd.Series) -> None:
    if isinstance(summary, _NumericWindow):
        finite = numeric_values(values)
        summary.add(finite, len(values) - int(finite.size))
    else:
        counts = values.value_counts(dropna=False, sort=False)
        present = [(key, count) for key, count in counts.items() if not _is_missing(key)]
        summary.add(present, int(counts.sum()) - sum(count for _, count in present))


def _is_missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def _add_arrow(summary: WindowSummary, array: Any) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(summary, _NumericWindow):
        if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
            values = array.cast(pa.float64()).to_numpy(zero_copy_only=False)
            finite = values[np.isfinite(values)]
            summary.add(finite, len(values) - int(finite.size))
        else:
            _add_series(summary, array.to_pandas())
        return
    if pa.types.is_dictionary(array.type):
        indices = array.indices.to_numpy(zero_copy_only=False)
        if array.null_count:
            indices = indices[array.is_valid().to_numpy(zero_copy_only=False)]
        counts = np.bincount(indices.astype(np.int64), minlength=len(array.dictionary))
        keys = array.dictionary.to_pylist()
        pairs = zip(keys, counts.tolist(), strict=True)
        summary.add(((key, count) for key, count in pairs if key is not None), array.null_count)
        return
    counted = pc.value_counts(array)
    pairs = zip(
        counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
    )
    summary.add(((key, count) for key, count in pairs if key is not None), array.null_count)


def summarise_window(
    baseline: Baseline,
    window: pd.DataFrame | Path,
    columns: list[str],
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> dict[str, WindowSummary]:
    """Summarise the window's ``columns`` against the baseline's bins, streaming files.

    Columns absent from the window get an empty summary (judged ``insufficient``);
    ``progress`` hears the share of a file's rows read after each batch.
    """
    summaries = {name: _new_summary(baseline.column(name)) for name in columns}
    if isinstance(window, pd.DataFrame):
        for name in columns:
            if name in window.columns:
                _add_series(summaries[name], window[name])
        return summaries
    import pyarrow.parquet as pq

    # No pre-buffering: it reads whole row groups ahead, and memory would follow their size.
    source = pq.ParquetFile(window, pre_buffer=False, buffer_size=1 << 20)
    present = [name for name in columns if name in source.schema_arrow.names]
    if not present:
        return summaries
    total = max(int(source.metadata.num_rows), 1)
    read = 0
    for batch in source.iter_batches(batch_size=batch_rows, columns=present, use_threads=False):
        for name in present:
            _add_arrow(summaries[name], batch.column(name))
        read += batch.num_rows
        if progress is not None:
            progress(read / total, f"read {read:,} of {total:,} rows")
    return summaries


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """The drift verdict of one column.

    Attributes:
        column: The column judged.
        type: ``numeric`` or ``categorical`` (from the baseline).
        method: The statistic used.
        value: The p-value (KS, chi-square, Z) or distance (Wasserstein, Jensen-Shannon).
        threshold: The level or distance at which the column drifts.
        drifted: The verdict (``False`` when insufficient).
        p_value: The raw p-value, for p-value tests.
        adjusted_p_value: The Benjamini-Hochberg adjusted p-value, when ``fdr`` is set.
        effect_size: How large the difference is, whatever the sample size.
        effect_size_name: What ``effect_size`` measures.
        reference_rows: Non-missing reference values.
        current_rows: Non-missing window values.
        insufficient: No values on one side: nothing could be judged.
        approximate: The statistic came from bins rather than raw values.
        distribution: Reference and current shares for a chart (``labels``, ``reference``,
            ``current``).
    """

    column: str
    type: ColumnType
    method: DriftMethod
    value: float | None
    threshold: float
    drifted: bool
    p_value: float | None
    adjusted_p_value: float | None
    effect_size: float | None
    effect_size_name: str
    reference_rows: int
    current_rows: int
    insufficient: bool = False
    approximate: bool = False
    distribution: dict[str, Any] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        """Return the finding metric name (``wasserstein_distance``, ``ks_p_value`` …)."""
        if self.method in P_VALUE_METHODS:
            return f"{self.method.value}_p_value"
        return f"{self.method.value}_distance"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "column": self.column,
            "type": self.type,
            "method": self.method.value,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "p_value": self.p_value,
            "adjusted_p_value": self.adjusted_p_value,
            "effect_size": self.effect_size,
            "effect_size_name": self.effect_size_name,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "insufficient": self.insufficient,
            "approximate": self.approximate,
            "distribution": self.distribution,
        }


@dataclass(frozen=True, slots=True)
class DriftResult:
    """Per-column verdicts and the dataset-level share of drifted columns."""

    columns: list[ColumnDrift]
    drift_share: float
    share_threshold: float
    dataset_drift: bool

    @property
    def drifted_columns(self) -> list[str]:
        """Return the names of the drifted columns."""
        return [column.column for column in self.columns if column.drifted]

    def column(self, name: str) -> ColumnDrift:
        """Return the verdict of one column."""
        for column in self.columns:
            if column.column == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "drift_share": self.drift_share,
            "share_threshold": self.share_threshold,
            "dataset_drift": self.dataset_drift,
            "drifted_columns": self.drifted_columns,
            "columns": [column.to_dict() for column in self.columns],
        }


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


def _distinct(reference: Any, current: WindowSummary) -> int | None:
    """Count distinct non-missing values on both sides, ``None`` when there are many."""
    if isinstance(reference, CategoricalSummary) and isinstance(current, _CategoricalWindow):
        return len(set(reference.frequencies) | set(current.frequencies))
    if isinstance(reference, NumericSummary) and isinstance(current, _NumericWindow):
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


def _counts(
    reference: Any, current: WindowSummary
) -> tuple[list[Any], FloatArray, FloatArray] | None:
    """Return the union of categories with reference and current counts (few values only)."""
    if isinstance(reference, CategoricalSummary) and isinstance(current, _CategoricalWindow):
        ref_freq: dict[Any, int] = reference.frequencies
        cur_freq: dict[Any, int] = current.frequencies
    elif isinstance(reference, NumericSummary) and isinstance(current, _NumericWindow):
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


def _chi_square(ref: FloatArray, cur: FloatArray) -> tuple[float, float]:
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


def _z_test(keys: list[Any], ref: FloatArray, cur: FloatArray) -> tuple[float, float]:
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


def _jensen_shannon(ref: FloatArray, cur: FloatArray) -> float:
    """Return the Jensen-Shannon distance (natural log) between two count vectors."""
    p = ref / ref.sum()
    q = cur / cur.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return math.sqrt(max(float(left + right) / 2, 0.0))


def _bin_masses(reference: NumericSummary, current: _NumericWindow) -> tuple[FloatArray, ...]:
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
    reference: NumericSummary, current: _NumericWindow
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return both CDFs just after each edge's atom and just before the next edge's atom."""
    ref_atoms, ref_bins, cur_atoms, cur_bins = _bin_masses(reference, current)
    below = current.below / current.count
    ref_after = np.cumsum(ref_atoms[:-1]) + np.concatenate(([0.0], np.cumsum(ref_bins)[:-1]))
    cur_after = (
        below + np.cumsum(cur_atoms[:-1]) + np.concatenate(([0.0], np.cumsum(cur_bins)[:-1]))
    )
    return ref_after, ref_after + ref_bins, cur_after, cur_after + cur_bins


def _wasserstein_binned(reference: NumericSummary, current: _NumericWindow) -> float:
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


def _ks_statistic_binned(reference: NumericSummary, current: _NumericWindow) -> float:
    ref_start, ref_end, cur_start, cur_end = _binned_cdfs(reference, current)
    below = current.below / current.count
    return float(max(np.abs(ref_start - cur_start).max(), np.abs(ref_end - cur_end).max(), below))


def _ks(reference: NumericSummary, current: _NumericWindow) -> tuple[float, float, bool]:
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


def _wasserstein(reference: NumericSummary, current: _NumericWindow) -> tuple[float, bool]:
    """Return the Wasserstein distance normalised by the reference's standard deviation."""
    norm = max(reference.std, 0.001)
    raw = current.raw_values()
    if reference.values is not None and raw is not None:
        from scipy import stats

        return float(stats.wasserstein_distance(reference.values, raw)) / norm, False
    return _wasserstein_binned(reference, current) / norm, True


def _distribution(reference: Any, current: WindowSummary) -> dict[str, Any]:
    """Return reference and current shares over a few bins or the top categories, for charts."""
    if isinstance(reference, CategoricalSummary) and isinstance(current, _CategoricalWindow):
        top = sorted(reference.frequencies, key=lambda key: -reference.frequencies[key])
        top += [key for key in current.frequencies if key not in reference.frequencies]
        shown = top[:CHART_BINS]
        ref_total = max(reference.count, 1)
        cur_total = max(current.count, 1)
        labels = [str(key) for key in shown]
        ref_shares = [reference.frequencies.get(key, 0) / ref_total for key in shown]
        cur_shares = [current.frequencies.get(key, 0) / cur_total for key in shown]
        if len(top) > CHART_BINS:
            labels.append("(other)")
            ref_shares.append(max(0.0, 1 - sum(ref_shares)))
            cur_shares.append(max(0.0, 1 - sum(cur_shares)))
        return {"labels": labels, "reference": ref_shares, "current": cur_shares}
    if isinstance(reference, NumericSummary) and isinstance(current, _NumericWindow):
        if reference.count == 0 or current.count == 0:
            return {}
        points = np.unique(
            np.quantile(
                np.concatenate(([reference.minimum], reference.edges, [reference.maximum])),
                np.linspace(0, 1, CHART_BINS + 1),
            )
        )
        ref_cdf = reference.cumulative(points) / reference.count
        cur_cdf = _current_cumulative(reference, current, points)
        ref_bins = np.diff(np.concatenate(([0.0], ref_cdf)))
        cur_bins = np.diff(np.concatenate(([0.0], cur_cdf)))
        labels = [f"≤ {points[0]:.4g}"] + [
            f"({low:.4g}, {high:.4g}]" for low, high in itertools.pairwise(points)
        ]
        above_ref = 1 - float(ref_cdf[-1])
        above_cur = 1 - float(cur_cdf[-1])
        if above_cur > 0 or above_ref > 0:
            labels.append(f"> {points[-1]:.4g}")
            ref_bins = np.append(ref_bins, above_ref)
            cur_bins = np.append(cur_bins, above_cur)
        return {
            "labels": labels,
            "reference": [float(value) for value in ref_bins],
            "current": [float(value) for value in cur_bins],
        }
    return {}


def _current_cumulative(
    reference: NumericSummary, current: _NumericWindow, points: FloatArray
) -> FloatArray:
    """Return the window's share ≤ each point, interpolated inside the reference's bins."""
    raw = current.raw_values()
    if raw is not None:
        return np.searchsorted(raw, points, side="right") / max(raw.size, 1)
    proxy = NumericSummary(
        count=current.count - current.below - current.above,
        missing=0,
        minimum=reference.minimum,
        maximum=reference.maximum,
        mean=0.0,
        m2=0.0,
        edges=reference.edges,
        bin_counts=current.bin_counts,
        bin_sums=current.bin_sums,
        atoms=reference.atoms,
        atom_counts=current.atom_counts,
        distinct=None,
        values=None,
        dtype=reference.dtype,
    )
    inside = proxy.cumulative(points)
    inside = np.where(points >= reference.edges[-1], proxy.count, inside)
    return np.asarray((current.below + inside) / current.count, dtype=np.float64)


def _judge_column(
    name: str,
    reference: NumericSummary | CategoricalSummary,
    current: WindowSummary,
    *,
    method: DriftMethod | None,
    threshold: float | None,
) -> ColumnDrift:
    distinct = _distinct(reference, current)
    chosen = method or choose_method(
        reference.type, reference_rows=reference.count, distinct=distinct
    )
    limit = DEFAULT_THRESHOLDS[chosen] if threshold is None else threshold
    base: dict[str, Any] = {
        "column": name,
        "type": reference.type,
        "method": chosen,
        "threshold": limit,
        "reference_rows": reference.count,
        "current_rows": current.count,
    }
    if reference.count == 0 or current.count == 0:
        return ColumnDrift(
            **base, value=None, drifted=False, p_value=None, adjusted_p_value=None,
            effect_size=None, effect_size_name="", insufficient=True,
        )  # fmt: skip
    distribution = _distribution(reference, current)
    if chosen in (DriftMethod.KS, DriftMethod.WASSERSTEIN):
        if not isinstance(reference, NumericSummary) or not isinstance(current, _NumericWindow):
            raise InvalidInput(
                f"{chosen.value} needs a numeric column; {name!r} is categorical",
                field=f"methods.{name}",
            )
        if chosen is DriftMethod.KS:
            p_value, statistic, approximate = _ks(reference, current)
            return ColumnDrift(
                **base, value=p_value, drifted=p_value <= limit, p_value=p_value,
                adjusted_p_value=None, effect_size=statistic, effect_size_name="ks_statistic",
                approximate=approximate, distribution=distribution,
            )  # fmt: skip
        distance, approximate = _wasserstein(reference, current)
        return ColumnDrift(
            **base, value=distance, drifted=distance >= limit, p_value=None,
            adjusted_p_value=None, effect_size=distance, effect_size_name="wasserstein_normed",
            approximate=approximate, distribution=distribution,
        )  # fmt: skip
    counted = _counts(reference, current)
    if counted is None:
        raise InvalidInput(
            f"{chosen.value} needs a categorical column or one with at most "
            f"{FREQUENCY_LIMIT} distinct values; {name!r} has more",
            field=f"methods.{name}",
        )
    keys, ref, cur = counted
    if chosen is DriftMethod.JENSEN_SHANNON:
        distance = _jensen_shannon(ref, cur)
        return ColumnDrift(
            **base, value=distance, drifted=distance >= limit, p_value=None,
            adjusted_p_value=None, effect_size=distance, effect_size_name="jensenshannon",
            distribution=distribution,
        )  # fmt: skip
    if chosen is DriftMethod.CHI_SQUARE:
        p_value, effect = _chi_square(ref, cur)
        effect_name = "cramers_v"
    else:
        p_value, effect = _z_test(keys, ref, cur)
        effect_name = "cohens_h"
    return ColumnDrift(
        **base, value=p_value, drifted=p_value < limit, p_value=p_value, adjusted_p_value=None,
        effect_size=effect, effect_size_name=effect_name, distribution=distribution,
    )  # fmt: skip


def compare(
    baseline: Baseline,
    summaries: dict[str, WindowSummary],
    *,
    methods: dict[str, DriftMethod] | None = None,
    column_thresholds: dict[str, float] | None = None,
    fdr: float | None = 0.05,
    drift_share: float = 0.5,
) -> DriftResult:
    """Judge each summarised column against the baseline, then the dataset as a whole.

    With ``fdr`` set, p-value columns are judged on Benjamini-Hochberg adjusted p-values at
    their threshold (default: ``fdr``); distance columns are unaffected.
    """
    methods = methods or {}
    column_thresholds = column_thresholds or {}
    verdicts: list[ColumnDrift] = []
    for name, current in summaries.items():
        method = methods.get(name)
        threshold = column_thresholds.get(name)
        verdicts.append(
            _judge_column(name, baseline.column(name), current, method=method, threshold=threshold)
        )
    if fdr is not None:
        verdicts = _adjust(verdicts, fdr=fdr, explicit=column_thresholds)
    judged = [verdict for verdict in verdicts if not verdict.insufficient]
    share = sum(verdict.drifted for verdict in judged) / len(judged) if judged else 0.0
    return DriftResult(
        columns=verdicts,
        drift_share=share,
        share_threshold=drift_share,
        dataset_drift=bool(judged) and share >= drift_share,
    )


def _adjust(
    verdicts: list[ColumnDrift], *, fdr: float, explicit: dict[str, float]
) -> list[ColumnDrift]:
    tested = [
        index
        for index, verdict in enumerate(verdicts)
        if verdict.p_value is not None and not verdict.insufficient
    ]
    adjusted = benjamini_hochberg([float(verdicts[index].p_value or 0.0) for index in tested])
    result = list(verdicts)
    for index, value in zip(tested, adjusted, strict=True):
        verdict = verdicts[index]
        level = explicit.get(verdict.column, fdr)
        result[index] = replace(
            verdict, adjusted_p_value=value, threshold=level, drifted=value <= level
        )
    return result


def compute_drift(
    baseline: Baseline,
    window: pd.DataFrame | Path,
    *,
    columns: list[str] | None = None,
    methods: dict[str, DriftMethod] | None = None,
    column_thresholds: dict[str, float] | None = None,
    fdr: float | None = 0.05,
    drift_share: float = 0.5,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> DriftResult:
    """Compute drift of a window (DataFrame or Parquet file) against a baseline.

    Args:
        baseline: The reference summary.
        window: The current data; a Parquet file streams in ``batch_rows`` batches.
        columns: Columns to judge (default: every baseline column).
        methods: Per-column method overrides.
        column_thresholds: Per-column thresholds (p-value level or distance).
        fdr: Benjamini-Hochberg false-discovery rate for p-value tests; ``None`` judges raw
            p-values at 0.05 as Evidently does.
        drift_share: Share of drifted columns at which the dataset drifts.
        batch_rows: Rows per streamed batch.
        progress: Called with the share of a Parquet window read so far.
    """
    names = list(baseline.columns) if columns is None else columns
    for name in [*(methods or {}), *(column_thresholds or {})]:
        if name not in names:
            raise InvalidInput(
                f"column {name!r} has an override but is not judged; judged: {names}",
                field="methods",
            )
    summaries = summarise_window(baseline, window, names, batch_rows=batch_rows, progress=progress)
    return compare(
        baseline, summaries, methods=methods, column_thresholds=column_thresholds, fdr=fdr,
        drift_share=drift_share,
    )  # fmt: skip


def _check_thresholds(spec: MonitorSpec, allowed: set[str]) -> None:
    unknown = sorted(set(spec.thresholds) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown thresholds {unknown} for {spec.kind.value}; use {sorted(allowed)}",
            field="thresholds",
        )


def _drift_columns(spec: MonitorSpec, context: MonitorContext) -> list[str]:
    if spec.columns is not None:
        for name in spec.columns:
            context.baseline.column(name)
        return list(spec.columns)
    skip = {spec.label_column, spec.prediction_column, spec.score_column}
    return [name for name in context.baseline.columns if name not in skip]


def _charts(result: DriftResult, title: str) -> list[Chart]:
    judged = [column for column in result.columns if not column.insufficient]
    charts = [
        Chart(
            title=f"{title}: statistic per column",
            kind="bars",
            data={
                "labels": [f"{column.column} ({column.metric})" for column in judged],
                "values": [column.value for column in judged],
                "thresholds": [column.threshold for column in judged],
                "flags": [column.drifted for column in judged],
            },
        )
    ]
    for column in judged:
        if column.distribution:
            charts.append(
                Chart(
                    title=f"{column.column}: reference vs current",
                    kind="distribution",
                    data=column.distribution,
                )
            )
    return charts


def _column_findings(result: DriftResult, *, monitor: str, status: Status) -> Iterator[Finding]:
    for column in result.columns:
        if column.insufficient:
            verdict = Status.INSUFFICIENT
        else:
            verdict = status if column.drifted else Status.OK
        yield Finding(
            monitor=monitor,
            metric=column.metric,
            scope=f"column:{column.column}",
            value=column.value,
            threshold=column.threshold,
            status=verdict,
            detail={
                key: value
                for key, value in column.to_dict().items()
                if key not in {"column", "value", "threshold", "distribution", "metric"}
            },
        )


@register_kind(Kind.DRIFT)
def run_drift(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Run data drift: a ``warn`` per drifted column, an ``alert`` when the dataset drifts.

    Thresholds: ``drift_share`` (default 0.5).
    """
    _check_thresholds(spec, {"drift_share"})
    columns = _drift_columns(spec, context)
    context.report_progress(0.0, f"summarising {len(columns)} columns")
    result = compute_drift(
        context.baseline, context.window, columns=columns, methods=spec.methods,
        column_thresholds=spec.column_thresholds, fdr=spec.fdr,
        drift_share=spec.thresholds.get("drift_share", 0.5), progress=context.report_progress,
    )  # fmt: skip
    context.report_progress(1.0, "drift computed")
    findings = list(_column_findings(result, monitor=Kind.DRIFT.value, status=Status.WARN))
    judged = [column for column in result.columns if not column.insufficient]
    findings.append(
        Finding(
            monitor=Kind.DRIFT.value,
            metric="drift_share",
            scope="dataset",
            value=result.drift_share if judged else None,
            threshold=result.share_threshold,
            status=(
                Status.INSUFFICIENT
                if not judged
                else Status.ALERT
                if result.dataset_drift
                else Status.OK
            ),
            detail={
                "drifted_columns": result.drifted_columns,
                "judged_columns": len(judged),
                "fdr": spec.fdr,
            },
        )
    )
    return KindResult(findings=findings, report=result.to_dict(), charts=_charts(result, "Drift"))


@register_kind(Kind.PREDICTION_DRIFT)
def run_prediction_drift(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Run prediction drift on the prediction and/or score column: ``alert`` when it drifts."""
    _check_thresholds(spec, set())
    columns = [name for name in (spec.prediction_column, spec.score_column) if name]
    if not columns:
        raise InvalidInput(
            "prediction drift needs prediction_column or score_column", field="prediction_column"
        )
    for name in columns:
        context.baseline.column(name)
    result = compute_drift(
        context.baseline, context.window, columns=columns, methods=spec.methods,
        column_thresholds=spec.column_thresholds, fdr=spec.fdr,
    )  # fmt: skip
    findings = list(
        _column_findings(result, monitor=Kind.PREDICTION_DRIFT.value, status=Status.ALERT)
    )
    return KindResult(
        findings=findings, report=result.to_dict(), charts=_charts(result, "Prediction drift")
    )
