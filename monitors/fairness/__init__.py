"""Fairness of a model's decisions across sensitive groups, with bootstrap confidence intervals.

For each sensitive feature and each configured intersection of them (``sex``, ``race``,
``sex&race``) this module measures, per group, the selection rate (share predicted positive), the
true- and false-positive rates and the accuracy, and across groups the demographic-parity
difference and ratio and the equalized-odds difference — the metrics and definitions of fairlearn
(``MetricFrame``, ``demographic_parity_difference``, ``demographic_parity_ratio``,
``equalized_odds_difference`` with their defaults ``method="between_groups"`` and
``agg="worst_case"``).

How it is computed, and why not with fairlearn itself:
    Every one of these metrics is a function of the confusion counts per group, so a window is
    reduced once to a ``(group, label, prediction)`` count table by ``numpy.bincount`` (label
    ``missing`` is its own state: selection rates use every row, label metrics only the labelled
    ones). fairlearn's ``MetricFrame`` does the same work in 12-20 s on a million rows; the count
    table takes milliseconds. Drawing ``n`` rows with replacement (the nonparametric bootstrap) is
    exactly a multinomial draw of ``n`` over the cells of that table with the observed cell shares
    as probabilities, so each bootstrap replicate costs one ``multinomial`` call over a few dozen
    cells instead of a resample of the window. fairlearn stays the reference: the tests compare
    every number with fairlearn computed directly on the real Adult data.

Groups too small to judge are marked, not guessed:
    A per-group metric is judged only when its own denominator (rows for the selection rate,
    labelled positives for TPR, labelled negatives for FPR, labelled rows for accuracy) reaches
    ``min_group_size``; otherwise its finding is ``insufficient`` with value ``None``. The
    differences are taken across the judged groups only, and name the groups they left out.

Verdicts:
    A difference at or below its threshold is ``ok``. Above it, the bootstrap interval decides:
    ``warn`` while the interval still reaches the threshold (the breach may be noise), ``alert``
    when the whole interval lies beyond it. The ratio is judged the same way from below. A group
    metric is judged against the same group's value in the reference (the training or evaluation
    data, stored in the baseline's extras): ``ok`` within ``max_group_shift``, ``warn`` when only
    the point estimate is farther, ``alert`` when the whole interval is. Without a reference a
    group finding is descriptive (``ok``, no threshold).

Where each part lives: ``config`` (what a spec asks), ``metrics`` (the counts, rates, gaps and
intervals), ``monitor`` (the kind: findings, charts, the reference section).
"""

from typing import TYPE_CHECKING

from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from monitors.fairness.config import THRESHOLD_KEYS, FairnessConfig, config_from_spec
    from monitors.fairness.metrics import (
        DISPARITY_METRICS,
        GROUP_METRICS,
        Disparity,
        Estimate,
        FairnessResult,
        GroupResult,
        compute_fairness,
    )
    from monitors.fairness.monitor import (
        fairness_charts,
        fairness_findings,
        reference_fairness,
        run_fairness,
    )
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "monitors.fairness.config": ("THRESHOLD_KEYS", "FairnessConfig", "config_from_spec"),
            "monitors.fairness.metrics": (
                "DISPARITY_METRICS",
                "GROUP_METRICS",
                "Disparity",
                "Estimate",
                "FairnessResult",
                "GroupResult",
                "compute_fairness",
            ),
            "monitors.fairness.monitor": (
                "fairness_charts",
                "fairness_findings",
                "reference_fairness",
                "run_fairness",
            ),
        },
    )

__all__ = [
    "DISPARITY_METRICS",
    "GROUP_METRICS",
    "THRESHOLD_KEYS",
    "Disparity",
    "Estimate",
    "FairnessConfig",
    "FairnessResult",
    "GroupResult",
    "compute_fairness",
    "config_from_spec",
    "fairness_charts",
    "fairness_findings",
    "reference_fairness",
    "run_fairness",
]
