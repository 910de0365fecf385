"""Statistics from equal-width cell counts: within 1 % of scipy, merged and stored exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitors.baseline import Baseline, build_baseline
from monitors.baseline.column_summary import NumericSummary
from monitors.baseline.grid import CELLS, COMPILED_MIN, count_cells
from monitors.drift import compute_drift, summarise_window
from monitors.drift.window import NumericWindow, merge_window, window_from_dict, window_to_dict
from monitors.spec import DriftMethod

ROWS = 100_000


def _frame(rng: np.random.Generator, *, shift: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, 1.0, ROWS),
            "lognormal": rng.lognormal(shift, 0.8, ROWS),
            "mixture": np.where(
                rng.random(ROWS) < 0.3, 0.0, rng.gamma(3.0, 1.0 + shift, ROWS)
            ),  # a heavy value at 0, like capital gains
        }
    )


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, Baseline, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    reference = _frame(rng, shift=0.0)
    return reference, build_baseline(reference), _frame(rng, shift=0.0), _frame(rng, shift=0.2)


def _exact(reference: pd.Series, current: pd.Series) -> float:
    ref = reference.to_numpy(np.float64)
    return float(stats.wasserstein_distance(ref, current.to_numpy(np.float64)) / np.std(ref))


def test_large_continuous_references_keep_cell_counts(
    synthetic: tuple[pd.DataFrame, Baseline, pd.DataFrame, pd.DataFrame],
) -> None:
    reference, baseline, _, _ = synthetic
    for name in reference.columns:
        summary = baseline.column(name)
        assert isinstance(summary, NumericSummary)
        assert summary.cells is not None
        assert int(summary.cells.sum()) == ROWS
    normal = baseline.column("normal")
    assert isinstance(normal, NumericSummary)
    assert normal.cells is not None
    restored = NumericSummary.from_dict(json.loads(json.dumps(normal.to_dict())))
    assert restored.cells is not None
    assert np.array_equal(restored.cells, normal.cells)
    small = build_baseline(reference.head(800)).column("normal")
    few = NumericSummary.from_values(np.arange(5000.0) % 7, missing=0)
    assert isinstance(small, NumericSummary)
    assert small.cells is None
    assert few.cells is None


def test_cell_statistics_are_within_one_percent_of_scipy(
    synthetic: tuple[pd.DataFrame, Baseline, pd.DataFrame, pd.DataFrame],
) -> None:
    reference, baseline, same, shifted = synthetic
    for window in (same, shifted):
        result = compute_drift(baseline, window, fdr=None)
        for name in reference.columns:
            column = result.column(name)
            assert column.method is DriftMethod.WASSERSTEIN
            assert column.approximate
            exact = _exact(reference[name], window[name])
            assert column.value == pytest.approx(exact, rel=0.01), name
            assert column.drifted == (exact >= 0.1), name
    ks = compute_drift(
        baseline, shifted, columns=["lognormal"], methods={"lognormal": DriftMethod.KS}
    ).column("lognormal")
    expected = stats.ks_2samp(reference["lognormal"], shifted["lognormal"]).statistic
    assert ks.effect_size == pytest.approx(expected, abs=0.002)


def test_a_far_outlier_keeps_the_exact_path(
    synthetic: tuple[pd.DataFrame, Baseline, pd.DataFrame, pd.DataFrame],
) -> None:
    reference, _, _, shifted = synthetic
    stretched = reference[["normal"]].copy()
    stretched.loc[0, "normal"] = 1e12  # one cell would hold all the mass
    baseline = build_baseline(stretched)
    summary = baseline.column("normal")
    assert isinstance(summary, NumericSummary)
    assert summary.cells is None
    value = compute_drift(baseline, shifted[["normal"]], fdr=None).column("normal").value
    assert value == pytest.approx(_exact(stretched["normal"], shifted["normal"]), rel=0.01)


def test_cell_counts_merge_and_travel_exactly(
    synthetic: tuple[pd.DataFrame, Baseline, pd.DataFrame, pd.DataFrame],
) -> None:
    _, baseline, _, shifted = synthetic
    window = shifted.copy()
    window.loc[window.index[:50], "normal"] = np.nan
    window.loc[window.index[50:60], "normal"] = np.inf
    whole = summarise_window(baseline, window, ["normal"])["normal"]
    halves = [
        summarise_window(baseline, part, ["normal"])["normal"]
        for part in (window.iloc[: ROWS // 3], window.iloc[ROWS // 3 :])
    ]
    left = window_from_dict(
        json.loads(json.dumps(window_to_dict(halves[0]))), baseline.column("normal")
    )
    merged = merge_window(left, halves[1])
    assert isinstance(whole, NumericWindow)
    assert isinstance(merged, NumericWindow)
    assert whole.cells is not None
    assert merged.cells is not None
    assert np.array_equal(whole.cells, merged.cells)
    assert (merged.count, merged.missing, merged.above) == (whole.count, 60, whole.above)
    assert merged.above_mass == pytest.approx(whole.above_mass, rel=1e-12)
    assert whole.count + whole.missing == ROWS


def _bincount_cells(
    values: np.ndarray, *, low: float, high: float, scale: float, cells: int
) -> tuple[np.ndarray, int, float, int, float]:
    """The cells by ``np.bincount`` over all finite values at once: the definition counted."""
    finite = values[np.isfinite(values)]
    below, above = finite[finite < low], finite[finite > high]
    inside = finite[(finite >= low) & (finite <= high)]
    where = np.clip(np.trunc(inside * scale + (1.0 - low * scale)), 1, cells).astype(np.int64)
    counts = np.bincount(where - 1, minlength=cells)
    return (
        counts, below.size, float(np.sum(low - below)), above.size, float(np.sum(above - high))
    )  # fmt: skip


@pytest.mark.parametrize("size", [70_001, 300_003])
def test_the_compiled_count_equals_bincount_with_nan_inf_and_values_beyond(size: int) -> None:
    rng = np.random.default_rng(size)
    low, high, cells = -2.0, 3.0, CELLS
    values = rng.normal(0.5, 1.5, size)  # about 10 % under low, 5 % over high
    values[rng.choice(size, 500, replace=False)] = np.nan
    values[rng.choice(size, 30, replace=False)] = np.inf
    values[rng.choice(size, 30, replace=False)] = -np.inf
    values[:7] = [low, high, np.nextafter(low, 0), np.nextafter(high, 0), -1e300, 1e300, 0.0]
    values[-3:] = [np.nan, high, low]  # the last values outside a group of four
    scale = cells / (high - low)
    counted = count_cells(values, low=low, high=high, scale=scale, cells=cells)
    counts, below, below_mass, above, above_mass = _bincount_cells(
        values, low=low, high=high, scale=scale, cells=cells
    )
    assert (size >= COMPILED_MIN) == (size == 300_003)  # one size each way
    assert np.array_equal(counted.counts, counts)
    missing = int(np.count_nonzero(~np.isfinite(values)))
    assert (counted.missing, counted.below, counted.above) == (missing, below, above)
    assert counted.below_mass == pytest.approx(below_mass, rel=1e-12)
    assert counted.above_mass == pytest.approx(above_mass, rel=1e-12)
