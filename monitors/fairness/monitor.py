"""The fairness monitor kind: metrics judged into findings and drawn as interval charts.

A disparity is judged against its threshold through its bootstrap interval (``warn`` while the
interval still reaches the threshold, ``alert`` when all of it lies beyond); a group metric by its
shift from the same group in the reference (the baseline's ``"fairness"`` extras).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from lineage.errors import InvalidInput
from monitors.fairness.config import config_from_spec
from monitors.fairness.counts import fairness_fold
from monitors.fairness.metrics import (
    DISPARITY_METRICS,
    GROUP_METRICS,
    LABEL_METRICS,
    Disparity,
    Estimate,
    FairnessResult,
    compute_fairness,
    fairness_from_counts,
)
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, Model, MonitorContext, register_kind
from monitors.spec import Kind, MonitorSpec

__all__ = ["fairness_charts", "fairness_findings", "reference_fairness", "run_fairness"]

MONITOR = Kind.FAIRNESS.value


def _judge(estimate: Estimate, threshold: float, *, upper: bool) -> Status:
    """Judge a disparity: within the threshold ``ok``, beyond it ``warn``, surely beyond ``alert``.

    ``upper`` bounds the value from above (differences), otherwise from below (the ratio). With no
    interval (``bootstrap_samples=0``) a breach of the point estimate is an alert.
    """
    if not estimate.sufficient or estimate.value is None:
        return Status.INSUFFICIENT
    if (estimate.value <= threshold) if upper else (estimate.value >= threshold):
        return Status.OK
    edge = estimate.low if upper else estimate.high
    if edge is None or ((edge > threshold) if upper else (edge < threshold)):
        return Status.ALERT
    return Status.WARN


def _judge_shift(estimate: Estimate, reference: float | None, limit: float) -> Status:
    """Judge a group metric against the reference: distance of the point, then of the interval."""
    if not estimate.sufficient or estimate.value is None:
        return Status.INSUFFICIENT
    if reference is None:
        return Status.OK
    if abs(estimate.value - reference) <= limit:
        return Status.OK
    low = estimate.low if estimate.low is not None else estimate.value
    high = estimate.high if estimate.high is not None else estimate.value
    distance = max(low - reference, reference - high, 0.0)
    return Status.ALERT if distance > limit else Status.WARN


def _extremes(disparity: Disparity, metric: str) -> dict[str, str]:
    judged = [
        g
        for g in disparity.groups
        if g.metrics[metric].sufficient and g.metrics[metric].value is not None
    ]
    if not judged:
        return {}
    key = lambda g: g.metrics[metric].value  # noqa: E731
    return {"lowest": min(judged, key=key).label, "highest": max(judged, key=key).label}


def fairness_findings(
    result: FairnessResult,
    *,
    reference: Mapping[str, Mapping[str, float | None]] | None = None,
) -> list[Finding]:
    """Turn a fairness result into findings: one per disparity metric and per group metric.

    Args:
        result: What :func:`compute_fairness` measured on the window.
        reference: ``FairnessResult.to_dict()["groups"]`` of the reference data (the baseline's
            extras); group metrics are then judged by their shift from it.

    Returns:
        Disparity findings scoped ``feature:<a>[&<b>]`` (the gap belongs to a feature set, so a
        bare ``dataset`` scope would collide between ``sex`` and ``race``), then group findings
        scoped ``group:<a>=<x>[&<b>=<y>]``. Label metrics are left out when the window has no
        labels at all; equalized odds is then ``insufficient`` with that reason.
    """
    config = result.config
    thresholds = {
        "demographic_parity_difference": (config.max_demographic_parity_difference, True),
        "demographic_parity_ratio": (config.min_demographic_parity_ratio, False),
        "equalized_odds_difference": (config.max_equalized_odds_difference, True),
    }
    findings: list[Finding] = []
    detail: dict[str, Any]
    for disparity in result.disparities:
        for name in DISPARITY_METRICS:
            estimate = disparity.metrics[name]
            threshold, upper = thresholds[name]
            detail = {
                "low": estimate.low,
                "high": estimate.high,
                "confidence": config.confidence,
                "groups_judged": estimate.n,
                "excluded_groups": disparity.excluded[name],
                "min_group_size": config.min_group_size,
            }
            if name == "equalized_odds_difference":
                if result.labelled == 0:
                    detail["reason"] = "the window has no labels yet"
            else:
                detail.update(_extremes(disparity, "selection_rate"))
            status = _judge(estimate, threshold, upper=upper)
            findings.append(
                Finding(
                    monitor=MONITOR,
                    metric=name,
                    scope=disparity.scope,
                    value=estimate.value if status is not Status.INSUFFICIENT else None,
                    threshold=threshold,
                    status=status,
                    detail=detail,
                )
            )
    for disparity in result.disparities:
        for group in disparity.groups:
            baseline = (reference or {}).get(group.scope, {})
            for name in GROUP_METRICS:
                if name in LABEL_METRICS and result.labelled == 0:
                    continue
                estimate = group.metrics[name]
                expected = baseline.get(name)
                status = _judge_shift(estimate, expected, config.max_group_shift)
                detail = {"n": estimate.n}
                if status is Status.INSUFFICIENT:
                    detail["reason"] = (
                        f"{estimate.n} rows behind this rate, fewer than "
                        f"min_group_size={config.min_group_size}"
                    )
                else:
                    detail.update(low=estimate.low, high=estimate.high)
                if expected is not None:
                    detail["reference"] = expected
                    if estimate.value is not None:
                        detail["shift"] = estimate.value - expected
                findings.append(
                    Finding(
                        monitor=MONITOR,
                        metric=name,
                        scope=group.scope,
                        value=estimate.value if status is not Status.INSUFFICIENT else None,
                        threshold=config.max_group_shift if expected is not None else None,
                        status=status,
                        detail=detail,
                    )
                )
    return findings


def fairness_charts(
    result: FairnessResult,
    *,
    reference: Mapping[str, Mapping[str, float | None]] | None = None,
) -> list[Chart]:
    """Return interval charts per feature set: selection rate, and TPR once labels exist.

    Groups too small to judge are left out of a chart (their findings say so) rather than
    drawn as if their value meant something; the title counts them.
    """
    metrics = ["selection_rate"] + (["true_positive_rate"] if result.labelled else [])
    charts = []
    for disparity in result.disparities:
        for metric in metrics:
            shown = [
                g
                for g in disparity.groups
                if g.metrics[metric].sufficient and g.metrics[metric].value is not None
            ]
            if not shown:
                continue
            hidden = len(disparity.groups) - len(shown)
            estimates = [g.metrics[metric] for g in shown]
            title = (
                f"{metric.replace('_', ' ').capitalize()} by {' & '.join(disparity.features)}"
                f" ({result.config.confidence:.0%} interval; mark: reference)"
                + (f"; {hidden} group(s) too small to judge left out" if hidden else "")
            )
            charts.append(
                Chart(
                    title=title,
                    kind="intervals",
                    data={
                        "labels": [g.label for g in shown],
                        "values": [e.value for e in estimates],
                        "lower": [e.value if e.low is None else e.low for e in estimates],
                        "upper": [e.value if e.high is None else e.high for e in estimates],
                        "reference": [
                            (reference or {}).get(g.scope, {}).get(metric) for g in shown
                        ],
                    },
                )
            )
    return charts


def _require_decisions(spec: MonitorSpec, model: Model | None) -> None:
    if spec.prediction_column is None and model is None:
        raise InvalidInput(
            "fairness needs the model's decisions: set prediction_column, or run with the model",
            field="prediction_column",
        )


def _predictions(
    spec: MonitorSpec, frame: pd.DataFrame, model: Model | None, features: list[str] | None
) -> npt.ArrayLike:
    if spec.prediction_column is not None:
        return frame[spec.prediction_column].to_numpy()
    _require_decisions(spec, model)
    assert model is not None
    columns = features or [str(c) for c in frame.columns]
    return np.asarray(model.predict(frame[columns]))


def reference_fairness(
    frame: pd.DataFrame, *, spec: MonitorSpec, model: Model | None = None
) -> dict[str, Any]:
    """Return the ``baseline.extras["fairness"]`` section for reference (training/eval) rows.

    The frame needs the sensitive columns, the label column when ``spec`` names one, and the
    prediction column, or else ``model`` to predict from the frame's feature columns.
    """
    config = config_from_spec(spec)
    predicted = _predictions(spec, frame, model, getattr(model, "feature_names_in_", None))
    labels = None if spec.label_column is None else frame[spec.label_column].to_numpy()
    return compute_fairness(
        sensitive=frame, y_pred=predicted, y_true=labels, config=config
    ).to_dict()


@register_kind(Kind.FAIRNESS)
def run_fairness(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Run fairness: group metrics with intervals, disparities, judged as the module says.

    Reads ``spec.sensitive_features``, ``prediction_column`` (or predicts with
    ``context.model``), ``label_column`` (optional: without labels only selection rates and
    demographic parity) and ``positive_label``; thresholds and options as in
    :func:`config_from_spec`; the reference from ``baseline.extras["fairness"]`` (built by
    :func:`reference_fairness`).
    """
    config = config_from_spec(spec)
    available = set(context.window_columns())
    wanted = {f for scope in config.scopes() for f in scope}
    for name, field_name in [
        *((feature, "sensitive_features") for feature in sorted(wanted)),
        (spec.prediction_column, "prediction_column"),
        (spec.label_column, "label_column"),
    ]:
        if name is not None and name not in available:
            raise InvalidInput(
                f"the window has no column {name!r} (set in {field_name}); "
                f"its columns are {sorted(available)}",
                field=field_name,
            )
    columns = sorted(wanted | {c for c in (spec.prediction_column, spec.label_column) if c})
    if spec.prediction_column is None:
        columns = sorted(set(columns) | set(context.feature_names or available))
    context.report_progress(0.1, f"fairness over {context.row_count()} rows")
    if spec.prediction_column is not None:  # counted on the context's engine
        fold = fairness_fold(
            config, prediction_column=spec.prediction_column, label_column=spec.label_column
        )
        result = fairness_from_counts(context.summarise(fold), config=config)
    else:  # the model predicts here
        _require_decisions(spec, context.model)
        frame = context.frame(columns)
        predicted = _predictions(spec, frame, context.model, context.feature_names)
        labels = None if spec.label_column is None else frame[spec.label_column].to_numpy()
        result = compute_fairness(sensitive=frame, y_pred=predicted, y_true=labels, config=config)
    reference = context.baseline.extras.get("fairness", {}).get("groups")
    return KindResult(
        findings=fairness_findings(result, reference=reference),
        report={**result.to_dict(), "reference": reference},
        charts=fairness_charts(result, reference=reference),
    )
