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
counted in one pass into the reference's equal-width cells, stored with the baseline
(:mod:`monitors.baseline.grid`), or, where a reference has none, sorted and counted into its
quantile bins; with the exact mass beyond the reference range this gives the normalised
Wasserstein distance within a small fraction of 1 % of scipy's on large windows. Parquet windows
stream in batches, so memory stays bounded by the batch size, whatever the window's length.

Where each part lives: ``window`` (streaming window summaries), ``statistics`` (the tests and
distances), ``verdicts`` (per-column and dataset verdicts), ``monitor`` (the two monitor kinds).
"""

from typing import TYPE_CHECKING

from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from monitors.drift.monitor import run_drift, run_prediction_drift
    from monitors.drift.slices import SliceConfig, slice_findings
    from monitors.drift.statistics import benjamini_hochberg, choose_method
    from monitors.drift.verdicts import (
        DEFAULT_THRESHOLDS,
        ColumnDrift,
        DriftResult,
        compare,
        compute_drift,
    )
    from monitors.drift.window import BATCH_ROWS, WindowSummary, summarise_window
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "monitors.drift.monitor": ("run_drift", "run_prediction_drift"),
            "monitors.drift.slices": ("SliceConfig", "slice_findings"),
            "monitors.drift.statistics": ("benjamini_hochberg", "choose_method"),
            "monitors.drift.verdicts": (
                "DEFAULT_THRESHOLDS",
                "ColumnDrift",
                "DriftResult",
                "compare",
                "compute_drift",
            ),
            "monitors.drift.window": ("BATCH_ROWS", "WindowSummary", "summarise_window"),
        },
    )

__all__ = [
    "BATCH_ROWS",
    "DEFAULT_THRESHOLDS",
    "ColumnDrift",
    "DriftResult",
    "SliceConfig",
    "WindowSummary",
    "benjamini_hochberg",
    "choose_method",
    "compare",
    "compute_drift",
    "run_drift",
    "run_prediction_drift",
    "slice_findings",
    "summarise_window",
]
