"""Model performance once labels exist, with confidence intervals, against the reference.

Classification: accuracy, precision, recall, F1 (of ``positive_label`` for two classes, macro
averages otherwise) and ROC AUC (two classes, with a score column). Regression: MAE and RMSE.

Intervals (95 %):

* confusion-matrix metrics by bootstrap: resampling rows is the same as drawing the confusion
  matrix's cells from a multinomial with the observed shares, so ``BOOTSTRAP`` resamples cost
  microseconds whatever the window's size;
* ROC AUC by the Hanley-McNeil standard error;
* MAE and RMSE by the normal approximation of the mean absolute and mean squared error.

Every metric is computed from counts that add across batches (the confusion matrix, error
moments, per-label score counts: :mod:`monitors.performance_counts`), so the Spark engine's
metrics and intervals are the local engine's.

The reference values live in ``baseline.extras["performance"]`` (``reference_performance``
computes them, typically on a held-out set at training time). A metric degrades when it is worse
than the reference by more than its threshold (``spec.thresholds`` by metric name): an absolute
drop for classification metrics (default 0.05), a relative increase for MAE and RMSE (default
0.1, i.e. 10 %). Absolute limits need no reference at all: ``min_<metric>`` for a
classification metric (``{"min_accuracy": 0.8}``), ``max_<metric>`` for MAE and RMSE; so a
monitor without any baseline still judges. It is an ``alert`` when the whole interval lies
beyond a limit, a ``warn`` when only the point estimate does; the worse verdict wins. Rows
without a label are left out; fewer than ``spec.min_rows`` labelled rows make every metric
``insufficient``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from lineage.errors import InvalidInput
from monitors.engine import fold_locally
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, MonitorContext, register_kind
from monitors.performance_counts import PerformanceCounts, ScoreTable, performance_fold
from monitors.spec import Kind, MonitorSpec, Task

__all__ = [
    "ABSOLUTE_THRESHOLDS",
    "BOOTSTRAP",
    "CLASSIFICATION_METRICS",
    "DEFAULT_THRESHOLDS",
    "REGRESSION_METRICS",
    "compute_performance",
    "judge_metric",
    "performance_from_counts",
    "reference_performance",
    "run_performance",
]

BOOTSTRAP = 1000
"""Bootstrap resamples for confusion-matrix metrics."""
Z95 = 1.959963984540054
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")
DEFAULT_THRESHOLDS: dict[str, float] = {
    "accuracy": 0.05,
    "precision": 0.05,
    "recall": 0.05,
    "f1": 0.05,
    "roc_auc": 0.05,
    "mae": 0.1,
    "rmse": 0.1,
}
"""Allowed degradation per metric: absolute for classification, relative for regression."""
ABSOLUTE_THRESHOLDS = (
    *(f"min_{name}" for name in CLASSIFICATION_METRICS),
    *(f"max_{name}" for name in REGRESSION_METRICS),
)
"""Absolute limits per metric, judged with or without a reference."""

Metric = dict[str, float | None]


def _confusion_metrics(
    matrices: npt.NDArray[np.float64], positive: int | None
) -> dict[str, npt.NDArray[np.float64]]:
    """Return accuracy, precision, recall and F1 of stacked confusion matrices (truth by row)."""
    total = matrices.sum(axis=(-2, -1))
    diagonal = np.diagonal(matrices, axis1=-2, axis2=-1)
    predicted = matrices.sum(axis=-2)
    actual = matrices.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, diagonal / predicted, 0.0)
        recall = np.where(actual > 0, diagonal / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        accuracy = diagonal.sum(axis=-1) / total
    if positive is None:
        return {
            "accuracy": accuracy,
            "precision": precision.mean(axis=-1),
            "recall": recall.mean(axis=-1),
            "f1": f1.mean(axis=-1),
        }
    return {
        "accuracy": accuracy,
        "precision": precision[..., positive],
        "recall": recall[..., positive],
        "f1": f1[..., positive],
    }


def _roc_auc(tables: dict[Any, ScoreTable], positive: Any) -> float | None:
    """Return ROC AUC by the Mann-Whitney statistic over the labels' score counts, ties averaged.

    Counting the negatives below each positive score (half at equal scores) is the rank sum of
    the positives without ranking every row, so it merges across batches. NaN scores make it NaN.
    """
    ours = [table for label, table in tables.items() if label == positive]
    theirs = [table for label, table in tables.items() if label != positive]
    positives = int(sum(int(counts.sum()) for _, counts in ours))
    negatives = int(sum(int(counts.sum()) for _, counts in theirs))
    if positives == 0 or negatives == 0:
        return None
    values = np.unique(np.concatenate([scores for scores, _ in tables.values()]))
    if np.isnan(values).any():
        return math.nan

    def at(found: list[ScoreTable]) -> npt.NDArray[np.float64]:
        counted = np.zeros(values.size)
        for scores, counts in found:
            counted[np.searchsorted(values, scores)] += counts
        return counted

    above, below = at(ours), at(theirs)
    before = np.cumsum(below) - below
    return float((above * (before + 0.5 * below)).sum() / (positives * negatives))


def _hanley_mcneil(auc: float, positives: int, negatives: int) -> tuple[float, float]:
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    half = Z95 * math.sqrt(max(variance, 0.0))
    return max(auc - half, 0.0), min(auc + half, 1.0)


def compute_performance(
    frame: pd.DataFrame,
    *,
    label_column: str,
    prediction_column: str,
    score_column: str | None = None,
    task: Task | None = None,
    positive_label: int | str = 1,
    seed: int = 0,
    bootstrap: int = BOOTSTRAP,
) -> dict[str, Any]:
    """Return every metric with its 95 % interval, over the rows that have a label.

    Returns:
        ``{"task", "rows", "metrics": {name: {"value", "lower", "upper"}}, ...}``.
    """
    for field_name, name in (
        ("label_column", label_column),
        ("prediction_column", prediction_column),
        ("score_column", score_column),
    ):
        if name is not None and name not in frame.columns:
            raise InvalidInput(f"column {name!r} is not in the window", field=field_name)
    fold = performance_fold(
        label_column=label_column,
        prediction_column=prediction_column,
        score_column=score_column,
        task=task,
    )
    return performance_from_counts(
        fold_locally(fold, frame),
        task=task,
        positive_label=positive_label,
        seed=seed,
        bootstrap=bootstrap,
    )


def performance_from_counts(
    counts: PerformanceCounts,
    *,
    task: Task | None = None,
    positive_label: int | str = 1,
    seed: int = 0,
    bootstrap: int = BOOTSTRAP,
) -> dict[str, Any]:
    """Return every metric with its 95 % interval from the window's merged counts.

    The bootstrap draws from the merged confusion matrix, so the intervals depend on the
    counts alone (and the seed), never on how the rows were split or which engine counted.
    """
    chosen: Task = counts.task(task)
    metrics: dict[str, Metric] = {}
    result: dict[str, Any] = {"task": chosen, "rows": counts.rows, "metrics": metrics}
    if not counts.rows:
        return result
    if chosen == "regression":
        if counts.absolute is None or counts.squared is None:
            raise InvalidInput(
                "regression needs numeric labels and predictions", field="label_column"
            )
        size = counts.rows
        mae, mse = counts.absolute.mean, counts.squared.mean
        metrics["mae"] = {"value": mae, "lower": None, "upper": None}
        metrics["rmse"] = {"value": math.sqrt(mse), "lower": None, "upper": None}
        if size > 1:  # one error has no spread: its interval stays unknown
            mae_half = Z95 * counts.absolute.std() / math.sqrt(size)
            mse_half = Z95 * counts.squared.std() / math.sqrt(size)
            metrics["mae"].update(lower=max(mae - mae_half, 0.0), upper=mae + mae_half)
            metrics["rmse"].update(
                lower=math.sqrt(max(mse - mse_half, 0.0)), upper=math.sqrt(mse + mse_half)
            )
        return result
    pairs = counts.pairs or {}
    classes = sorted({t for t, _ in pairs} | {g for _, g in pairs}, key=str)
    index = {value: position for position, value in enumerate(classes)}
    size = len(classes)
    matrix = np.zeros((size, size), dtype=np.int64)
    for (truth, guess), count in pairs.items():
        matrix[index[truth], index[guess]] += count
    positive = index.get(positive_label) if size <= 2 else None
    if size <= 2 and positive is None:
        positive = size - 1
    point = _confusion_metrics(matrix.astype(np.float64), positive)
    draws = np.random.default_rng(seed).multinomial(
        int(matrix.sum()), (matrix / matrix.sum()).ravel(), size=bootstrap
    )
    resampled = _confusion_metrics(
        draws.reshape(bootstrap, size, size).astype(np.float64), positive
    )
    for name, value in point.items():
        lower, upper = np.quantile(resampled[name], [0.025, 0.975])
        metrics[name] = {"value": float(value), "lower": float(lower), "upper": float(upper)}
    result["classes"] = [str(value) for value in classes]
    result["confusion_matrix"] = matrix.tolist()
    if counts.scores is not None and size <= 2 and positive is not None:
        auc = _roc_auc(counts.scores, classes[positive])
        if auc is not None:
            positives = sum(
                int(table[1].sum()) for label, table in counts.scores.items()
                if label == classes[positive]
            )  # fmt: skip
            lower, upper = _hanley_mcneil(auc, positives, counts.rows - positives)
            metrics["roc_auc"] = {"value": auc, "lower": lower, "upper": upper}
    return result


def reference_performance(
    frame: pd.DataFrame,
    *,
    label_column: str,
    prediction_column: str,
    score_column: str | None = None,
    task: Task | None = None,
    positive_label: int | str = 1,
) -> dict[str, Any]:
    """Return the ``baseline.extras["performance"]`` section for a labelled reference frame."""
    return compute_performance(
        frame, label_column=label_column, prediction_column=prediction_column,
        score_column=score_column, task=task, positive_label=positive_label,
    )  # fmt: skip


def _judge(
    name: str, metric: Metric, reference: float | None, threshold: float
) -> tuple[Status, float | None]:
    if reference is None:
        return Status.OK, None
    if name in REGRESSION_METRICS:
        return _beyond(metric, reference * (1 + threshold), upper_bound=True)
    return _beyond(metric, reference - threshold, upper_bound=False)


_RANK = {Status.OK: 0, Status.WARN: 1, Status.ALERT: 2}


def _beyond(metric: Metric, limit: float, *, upper_bound: bool) -> tuple[Status, float | None]:
    """Judge a metric against a limit it must stay below (``upper_bound``) or above."""
    value = metric["value"]
    if value is None:
        return Status.OK, None
    if upper_bound:
        if value <= limit:
            return Status.OK, limit
        lower = metric["lower"]
        return (Status.ALERT if lower is not None and lower > limit else Status.WARN), limit
    if value >= limit:
        return Status.OK, limit
    upper = metric["upper"]
    return (Status.ALERT if upper is not None and upper < limit else Status.WARN), limit


def judge_metric(
    name: str,
    metric: Metric,
    reference: float | None,
    threshold: float,
    absolute: float | None = None,
) -> tuple[Status, float | None]:
    """Judge one metric (``value``, ``lower``, ``upper``) against its reference and limit.

    The worse of the two verdicts wins: degradation beyond ``threshold`` from ``reference``,
    and the ``absolute`` limit (a floor for classification metrics, a ceiling for MAE and
    RMSE). Returns the status and the limit it was judged against.
    """
    status, limit = _judge(name, metric, reference, threshold)
    if absolute is not None:
        floor = _beyond(metric, absolute, upper_bound=name in REGRESSION_METRICS)
        if _RANK[floor[0]] > _RANK[status] or limit is None:
            status, limit = floor
    return status, limit


@register_kind(Kind.PERFORMANCE)
def run_performance(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Run performance: each metric with its interval, judged against the reference.

    Thresholds: allowed degradation per metric name (see ``DEFAULT_THRESHOLDS``).
    Options: ``seed`` (bootstrap seed, default 0).
    """
    known = {*DEFAULT_THRESHOLDS, *ABSOLUTE_THRESHOLDS}
    unknown = sorted(set(spec.thresholds) - known)
    if unknown:
        raise InvalidInput(
            f"unknown thresholds {unknown} for performance; use {sorted(known)}",
            field="thresholds",
        )
    if spec.label_column is None or spec.prediction_column is None:
        raise InvalidInput(
            "performance needs label_column and prediction_column",
            field="label_column" if spec.label_column is None else "prediction_column",
        )
    columns = [spec.label_column, spec.prediction_column]
    if spec.score_column:
        columns.append(spec.score_column)
    missing = [name for name in columns if name not in context.window_columns()]
    if missing:
        raise InvalidInput(f"the window has no column {missing[0]!r}", field="label_column")
    fold = performance_fold(
        label_column=spec.label_column, prediction_column=spec.prediction_column,
        score_column=spec.score_column, task=spec.task,
    )  # fmt: skip
    result = performance_from_counts(
        context.summarise(fold), task=spec.task, positive_label=spec.positive_label,
        seed=int(spec.options.get("seed", 0)),
    )  # fmt: skip
    reference: dict[str, Any] = context.baseline.extras.get("performance", {}).get("metrics", {})
    thresholds = {**DEFAULT_THRESHOLDS, **spec.thresholds}
    absolute = {
        key.split("_", 1)[1]: value
        for key, value in spec.thresholds.items()
        if key in ABSOLUTE_THRESHOLDS
    }
    findings: list[Finding] = []
    insufficient = result["rows"] < spec.min_rows
    names = REGRESSION_METRICS if result["task"] == "regression" else CLASSIFICATION_METRICS
    for name in names:
        metric: Metric | None = result["metrics"].get(name)
        if metric is None:
            continue
        ref_value = reference.get(name, {}).get("value")
        if insufficient:
            status, limit = Status.INSUFFICIENT, None
        else:
            status, limit = judge_metric(
                name, metric, ref_value, thresholds[name], absolute.get(name)
            )
        findings.append(
            Finding(
                monitor=Kind.PERFORMANCE.value,
                metric=name,
                scope="dataset",
                value=None if insufficient else metric["value"],
                threshold=limit,
                status=status,
                detail={
                    "lower": metric["lower"],
                    "upper": metric["upper"],
                    "reference": ref_value,
                    "rows": result["rows"],
                    "allowed_degradation": thresholds[name],
                    "absolute_limit": absolute.get(name),
                },
            )
        )
    if not findings:
        findings.append(
            Finding(
                monitor=Kind.PERFORMANCE.value, metric="labelled_rows", scope="dataset",
                value=None, threshold=float(spec.min_rows), status=Status.INSUFFICIENT,
                detail={"rows": result["rows"]},
            )
        )  # fmt: skip
    shown = [finding for finding in findings if finding.metric in names]
    chart = Chart(
        title="Performance with 95% intervals (line: reference)",
        kind="intervals",
        data={
            "labels": [finding.metric for finding in shown],
            "values": [result["metrics"][finding.metric]["value"] for finding in shown],
            "lower": [result["metrics"][finding.metric]["lower"] for finding in shown],
            "upper": [result["metrics"][finding.metric]["upper"] for finding in shown],
            "reference": [finding.detail["reference"] for finding in shown],
        },
    )
    return KindResult(
        findings=findings,
        report={**result, "reference": reference, "thresholds": thresholds},
        charts=[chart] if shown else [],
    )
