"""Drift verdicts: each column judged against the baseline, then the dataset as a whole.

The method per column follows Evidently 0.7's defaults (see :mod:`monitors.drift`); with
``fdr`` set, p-values are adjusted with Benjamini-Hochberg before they are judged. Every
verdict carries its effect size and the reference and current shares a chart draws.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lineage.errors import InvalidInput
from monitors.baseline.column_summary import (
    FREQUENCY_LIMIT,
    CategoricalSummary,
    ColumnType,
    FloatArray,
    NumericSummary,
)
from monitors.baseline.summary import Baseline
from monitors.drift.statistics import (
    benjamini_hochberg,
    category_counts,
    chi_square,
    choose_method,
    distinct_values,
    jensen_shannon,
    ks_test,
    wasserstein,
    z_test,
)
from monitors.drift.window import (
    BATCH_ROWS,
    CategoricalWindow,
    NumericWindow,
    WindowSummary,
    summarise_window,
)
from monitors.engine import EngineName
from monitors.kinds import Progress
from monitors.spec import DriftMethod

if TYPE_CHECKING:
    import pyarrow as pa

    from monitors.inferences.windows import WindowView

__all__ = [
    "DEFAULT_THRESHOLDS",
    "P_VALUE_METHODS",
    "ColumnDrift",
    "DriftResult",
    "compare",
    "compute_drift",
]

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


def _distribution(reference: Any, current: WindowSummary) -> dict[str, Any]:
    """Return reference and current shares over a few bins or the top categories, for charts."""
    if isinstance(reference, CategoricalSummary) and isinstance(current, CategoricalWindow):
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
    if isinstance(reference, NumericSummary) and isinstance(current, NumericWindow):
        if reference.count == 0 or current.count == 0:
            return {}
        points, ref_cdf = reference.chart_points(CHART_BINS)
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
    reference: NumericSummary, current: NumericWindow, points: FloatArray
) -> FloatArray:
    """Return the window's share ≤ each point, interpolated inside the reference's bins."""
    raw = current.raw_values()
    if raw is not None:
        return np.searchsorted(raw, points, side="right") / max(raw.size, 1)
    if current.grid is not None and current.cells is not None:
        grid = current.grid
        cdf = grid.window_cdf(current.cells, current.below, current.count)
        shares = np.interp(points, grid.boundaries, cdf)
        return np.asarray(np.where(points >= grid.high, 1 - current.above / current.count, shares))
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
    distinct = distinct_values(reference, current)
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
        if not isinstance(reference, NumericSummary) or not isinstance(current, NumericWindow):
            raise InvalidInput(
                f"{chosen.value} needs a numeric column; {name!r} is categorical",
                field=f"methods.{name}",
            )
        if chosen is DriftMethod.KS:
            p_value, statistic, approximate = ks_test(reference, current)
            return ColumnDrift(
                **base, value=p_value, drifted=p_value <= limit, p_value=p_value,
                adjusted_p_value=None, effect_size=statistic, effect_size_name="ks_statistic",
                approximate=approximate, distribution=distribution,
            )  # fmt: skip
        distance, approximate = wasserstein(reference, current)
        return ColumnDrift(
            **base, value=distance, drifted=distance >= limit, p_value=None,
            adjusted_p_value=None, effect_size=distance, effect_size_name="wasserstein_normed",
            approximate=approximate, distribution=distribution,
        )  # fmt: skip
    counted = category_counts(reference, current)
    if counted is None:
        raise InvalidInput(
            f"{chosen.value} needs a categorical column or one with at most "
            f"{FREQUENCY_LIMIT} distinct values; {name!r} has more",
            field=f"methods.{name}",
        )
    keys, ref, cur = counted
    if chosen is DriftMethod.JENSEN_SHANNON:
        distance = jensen_shannon(ref, cur)
        return ColumnDrift(
            **base, value=distance, drifted=distance >= limit, p_value=None,
            adjusted_p_value=None, effect_size=distance, effect_size_name="jensenshannon",
            distribution=distribution,
        )  # fmt: skip
    if chosen is DriftMethod.CHI_SQUARE:
        p_value, effect = chi_square(ref, cur)
        effect_name = "cramers_v"
    else:
        p_value, effect = z_test(keys, ref, cur)
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
    window: pd.DataFrame | pa.Table | Path | WindowView,
    *,
    columns: list[str] | None = None,
    methods: dict[str, DriftMethod] | None = None,
    column_thresholds: dict[str, float] | None = None,
    fdr: float | None = 0.05,
    drift_share: float = 0.5,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
    engine: EngineName = "local",
    spark_master: str = "local[2]",
) -> DriftResult:
    """Compute drift of a window (DataFrame or Parquet file) against a baseline.

    Args:
        baseline: The reference summary.
        window: The current data; a Parquet file streams in ``batch_rows`` batches; an Arrow
            table (a logged window's judged columns) is counted from Arrow; a logged
            window read in place (:class:`monitors.inferences.windows.WindowView`) only on
            Spark.
        columns: Columns to judge (default: every baseline column).
        methods: Per-column method overrides.
        column_thresholds: Per-column thresholds (p-value level or distance).
        fdr: Benjamini-Hochberg false-discovery rate for p-value tests; ``None`` judges raw
            p-values at 0.05 as Evidently does.
        drift_share: Share of drifted columns at which the dataset drifts.
        batch_rows: Rows per streamed batch.
        progress: Called with the share of a Parquet window read so far.
        engine: ``spark`` summarises the window with Spark (:mod:`monitors.spark_engine`),
            same summaries, same verdicts; ``local`` streams it here.
        spark_master: The Spark master URL.
    """
    names = list(baseline.columns) if columns is None else columns
    for name in [*(methods or {}), *(column_thresholds or {})]:
        if name not in names:
            raise InvalidInput(
                f"column {name!r} has an override but is not judged; judged: {names}",
                field="methods",
            )
    import pyarrow as pa

    if engine == "spark":
        from monitors.spark_engine import spark_session, spark_window_summaries

        if isinstance(window, pa.Table):
            window = window.to_pandas()
        summaries = spark_window_summaries(
            baseline, window, names, session=spark_session(spark_master)
        )
    elif isinstance(window, pd.DataFrame | pa.Table | Path):
        summaries = summarise_window(
            baseline, window, names, batch_rows=batch_rows, progress=progress
        )
    else:
        raise TypeError("a window read in place is summarised by Spark, never here")
    return compare(
        baseline, summaries, methods=methods, column_thresholds=column_thresholds, fdr=fdr,
        drift_share=drift_share,
    )  # fmt: skip
