"""The ``performance_estimate`` kind: the metrics a labelled window would show, before labels.

Classification by CBPE (:mod:`monitors.estimation.cbpe`) from the logged scores (``score`` for
two classes, ``probabilities`` for more) and predictions, calibrated on the reference; regression
by DLE (:mod:`monitors.estimation.dle`) from the logged inputs and predictions. The reference is
``baseline.extras["performance_estimate"]`` (CBPE, written when the baseline was built from a
reference with labels and scores), else it is fitted here from the baseline's reference sample
(always so for DLE, whose loss model is not JSON).

Each metric is a finding judged like ``performance``'s (same thresholds: allowed degradation
against the reference's realised value, or absolute ``min_``/``max_`` limits), with the band of
three sampling errors in place of a confidence interval: ``alert`` when the whole band lies
beyond a limit, ``warn`` when only the estimate does. Rows of the window that already have labels
are measured too, and the report shows estimate and realised value side by side.

Whether to trust the estimate is a finding of its own, ``estimate_reliability`` (``warn`` with
its reasons, never hidden): scores or inputs outside what the reference covered (share above
``options["max_outside_share"]``, default 0.1), a small reference, and realised values outside
the estimate's band once labels arrive (the mark of concept drift, which CBPE and DLE assume
away).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from lineage.errors import InvalidInput
from monitors.baseline.summary import Baseline
from monitors.estimation.cbpe import (
    CLASSIFICATION_METRICS,
    ClassificationReference,
    class_key,
    estimate_classification,
    fit_classification,
    realised_classification,
)
from monitors.estimation.dle import (
    REGRESSION_METRICS,
    estimate_regression,
    fit_regression,
    realised_regression,
)
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, MonitorContext, register_kind
from monitors.performance import ABSOLUTE_THRESHOLDS, DEFAULT_THRESHOLDS, judge_metric
from monitors.spec import Kind, MonitorSpec

__all__ = ["SECTION", "reference_estimation", "run_performance_estimate"]

SECTION = "performance_estimate"
"""The baseline extras section holding the fitted CBPE reference."""
MONITOR = Kind.PERFORMANCE_ESTIMATE.value
_SMALL_REFERENCE = 1000
_OPTIONS = {"max_outside_share", "seed"}


def reference_estimation(
    frame: pd.DataFrame,
    *,
    label_column: str,
    prediction_column: str,
    score_column: str | None = None,
    probability_columns: dict[str, str] | None = None,
    positive_label: int | str = 1,
) -> dict[str, Any]:
    """Return the ``extras["performance_estimate"]`` section of a labelled, scored reference."""
    rows = frame[frame[label_column].notna() & frame[prediction_column].notna()]
    if probability_columns:
        classes = sorted(probability_columns)
        scores = rows[[probability_columns[c] for c in classes]].to_numpy(np.float64)
        fitted = fit_classification(
            rows[label_column].tolist(), rows[prediction_column].tolist(), scores, classes=classes
        )
    else:
        if score_column is None:
            raise InvalidInput("estimating performance needs a score column", field="score_column")
        rows = rows[rows[score_column].notna()]
        fitted = fit_classification(
            rows[label_column].tolist(),
            rows[prediction_column].tolist(),
            rows[score_column].to_numpy(np.float64),
            positive_label=positive_label,
        )
    return fitted.to_dict()


def _probabilities(column: pd.Series, classes: list[str]) -> np.ndarray:
    """Parse logged class probabilities (JSON objects) into a rows by classes array."""
    matrix = np.full((len(column), len(classes)), np.nan)
    for row, text in enumerate(column):
        if text is None or (isinstance(text, float) and math.isnan(text)):
            continue
        values = json.loads(text) if isinstance(text, str) else dict(text)
        keyed = {class_key(k): v for k, v in values.items()}
        for k, name in enumerate(classes):
            if keyed.get(name) is not None:
                matrix[row, k] = float(keyed[name])
    return matrix


def _task(spec: MonitorSpec, baseline: Baseline, frame: pd.DataFrame) -> str:
    if spec.task is not None:
        return spec.task
    if SECTION in baseline.extras:
        return "classification"
    reference_task = baseline.extras.get("performance", {}).get("task")
    if reference_task in ("classification", "regression"):
        return str(reference_task)
    has_scores = (spec.score_column and spec.score_column in frame.columns) or (
        "probabilities" in frame.columns and frame["probabilities"].notna().any()
    )
    return "classification" if has_scores else "regression"


def _classification(
    spec: MonitorSpec, context: MonitorContext, frame: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any] | None, ClassificationReference, list[str]]:
    """Estimate (and measure, where labelled) a classifier's metrics on the window."""
    baseline = context.baseline
    notes: list[str] = []
    if SECTION in baseline.extras:
        reference = ClassificationReference.from_dict(baseline.extras[SECTION])
    else:
        sample = baseline.sample
        needed = [spec.label_column, spec.prediction_column, spec.score_column]
        if sample is None or any(c is None or c not in sample.columns for c in needed):
            raise InvalidInput(
                "estimating performance needs a baseline built from a reference with labels, "
                "predictions and scores (label_column, prediction_column, score_column)",
                field="baseline",
            )
        assert spec.label_column
        assert spec.prediction_column
        assert spec.score_column
        reference = ClassificationReference.from_dict(
            reference_estimation(
                sample, label_column=spec.label_column,
                prediction_column=spec.prediction_column, score_column=spec.score_column,
                positive_label=spec.positive_label,
            )
        )  # fmt: skip
        notes.append(f"calibrated on the baseline's reference sample ({reference.rows} rows)")
    prediction = spec.prediction_column
    if prediction is None or prediction not in frame.columns:
        raise InvalidInput(
            "estimating a classifier's performance needs its logged predictions",
            field="prediction_column",
        )
    classes = list(reference.classes)
    if reference.binary:
        score = spec.score_column
        if score is None or score not in frame.columns:
            raise InvalidInput(
                "estimating a binary classifier's performance needs its logged scores",
                field="score_column",
            )
        scores = frame[score].to_numpy(np.float64)
        usable = np.isfinite(scores)
    else:
        if "probabilities" not in frame.columns:
            raise InvalidInput(
                "estimating a multi-class model's performance needs its logged probabilities",
                field="score_column",
            )
        scores = _probabilities(frame["probabilities"], classes)
        usable = np.isfinite(scores).all(axis=1)
    usable &= frame[prediction].notna().to_numpy()
    skipped = int((~usable).sum())
    if skipped:
        notes.append(f"{skipped} rows without a prediction or score were left out")
    rows = frame[usable]
    estimated = estimate_classification(reference, rows[prediction].tolist(), scores[usable])
    estimated["outside_share"] = estimated.pop("outside_score_range")
    realised = None
    label = spec.label_column
    if label is not None and label in rows.columns:
        labelled = rows[label].notna().to_numpy()
        if int(labelled.sum()) >= spec.min_rows:
            subset = rows[labelled]
            realised = {
                "rows": int(labelled.sum()),
                "estimated": estimate_classification(
                    reference, subset[prediction].tolist(), scores[usable][labelled]
                )["metrics"],
                "metrics": realised_classification(
                    subset[label].tolist(), subset[prediction].tolist(), scores[usable][labelled],
                    classes=classes, positive=reference.positive,
                ),
            }  # fmt: skip
    return estimated, realised, reference, notes


def _regression(
    spec: MonitorSpec, context: MonitorContext, frame: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any], list[str]]:
    """Estimate (and measure, where labelled) a regressor's MAE and RMSE on the window."""
    sample = context.baseline.sample
    label, prediction = spec.label_column, spec.prediction_column
    if prediction is None or prediction not in frame.columns:
        raise InvalidInput(
            "estimating a regressor's performance needs its logged predictions",
            field="prediction_column",
        )
    if sample is None or label is None or label not in sample or prediction not in sample:
        raise InvalidInput(
            "estimating a regressor's performance needs a baseline whose reference sample has "
            "labels and predictions (label_column, prediction_column)",
            field="baseline",
        )
    features = [
        name
        for name in context.feature_names or []
        if name in sample.columns and name in frame.columns
    ]
    fitted = fit_regression(
        sample, features=features, label_column=label, prediction_column=prediction,
        seed=int(spec.options.get("seed", 0)),
    )  # fmt: skip
    notes = [f"loss model fitted on the baseline's reference sample ({fitted.rows} rows)"]
    estimated = estimate_regression(fitted, frame, prediction_column=prediction)
    estimated["outside_share"] = estimated.pop("outside_reference")
    realised = None
    if label in frame.columns:
        subset = frame[frame[label].notna() & frame[prediction].notna()]
        if len(subset) >= spec.min_rows:
            realised = {
                "rows": len(subset),
                "estimated": estimate_regression(fitted, subset, prediction_column=prediction)[
                    "metrics"
                ],
                "metrics": realised_regression(
                    subset[label].to_numpy(np.float64), subset[prediction].to_numpy(np.float64)
                ),
            }
    reference = {"rows": fitted.rows, "realised": fitted.realised, "features": features}
    return estimated, realised, reference, notes


def _comparison(realised: dict[str, Any] | None, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of estimate beside realised value, on the labelled rows of the window."""
    if realised is None:
        return []
    rows = []
    for name in names:
        estimate = realised["estimated"].get(name) or {}
        value = realised["metrics"].get(name)
        lower, upper = estimate.get("lower"), estimate.get("upper")
        inside = None
        if value is not None and lower is not None and upper is not None:
            inside = bool(lower <= value <= upper)
        rows.append({
            "metric": name, "estimated": estimate.get("value"), "lower": lower, "upper": upper,
            "realised": value, "within_band": inside, "rows": realised["rows"],
        })  # fmt: skip
    return rows


def _check_spec(spec: MonitorSpec) -> None:
    known = {*DEFAULT_THRESHOLDS, *ABSOLUTE_THRESHOLDS}
    unknown = sorted(set(spec.thresholds) - known)
    if unknown:
        raise InvalidInput(
            f"unknown thresholds {unknown} for performance_estimate; use {sorted(known)}",
            field="thresholds",
        )
    if spec.slices:
        raise InvalidInput(
            "performance_estimate is not judged per slice; slice a performance, drift or "
            "fairness monitor instead",
            field="slices",
        )
    extra = sorted(set(spec.options) - _OPTIONS)
    if extra:
        raise InvalidInput(
            f"unknown options {extra} for performance_estimate; use {sorted(_OPTIONS)}",
            field="options",
        )


@register_kind(Kind.PERFORMANCE_ESTIMATE)
def run_performance_estimate(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Estimate each metric with its band, judge it, and say how far to trust it.

    Thresholds: as ``performance`` (allowed degradation per metric, ``min_``/``max_`` limits).
    Options: ``max_outside_share`` (default 0.1), ``seed`` (the loss model's, default 0).
    """
    _check_spec(spec)
    frame = context.frame()
    task = _task(spec, context.baseline, frame)
    context.report_progress(0.1, f"estimating {task} performance")
    reference_rows: int
    if task == "classification":
        estimated, realised, fitted, notes = _classification(spec, context, frame)
        names: tuple[str, ...] = CLASSIFICATION_METRICS
        reference_values = dict(fitted.realised)
        reference_rows = fitted.rows
        method = "cbpe"
        reference_info: dict[str, Any] = {
            "rows": fitted.rows, "classes": list(fitted.classes), "positive": fitted.positive,
            "calibrated": sorted(name for name, c in fitted.calibrations.items() if c.x),
            "realised": reference_values, "notes": list(fitted.notes),
        }  # fmt: skip
    else:
        estimated, realised, reference_info, notes = _regression(spec, context, frame)
        names = REGRESSION_METRICS
        reference_values = dict(reference_info["realised"])
        reference_rows = int(reference_info["rows"])
        method = "dle"
    limit_outside = float(spec.options.get("max_outside_share", 0.1))
    comparison = _comparison(realised, names)
    caveats: list[str] = []
    outside = float(estimated["outside_share"])
    if outside > limit_outside:
        what = "scores" if task == "classification" else "inputs or predictions"
        caveats.append(
            f"{outside:.0%} of the window's {what} lie outside the reference's range, where "
            "the estimate extrapolates"
        )
    if reference_rows < _SMALL_REFERENCE:
        caveats.append(
            f"the reference has only {reference_rows} labelled rows; the estimate's bands are "
            "wide and its calibration coarse"
        )
    missed = [row["metric"] for row in comparison if row["within_band"] is False]
    if missed:
        caveats.append(
            f"realised {', '.join(missed)} fell outside the estimate's band on the labelled rows: "
            "the relation between inputs and labels has changed (concept drift), which the "
            "estimate assumes away; trust the realised values for this window"
        )
    enough = estimated["rows"] >= spec.min_rows
    thresholds = {**DEFAULT_THRESHOLDS, **spec.thresholds}
    absolute = {
        key.split("_", 1)[1]: value
        for key, value in spec.thresholds.items()
        if key in ABSOLUTE_THRESHOLDS
    }
    realised_values = {row["metric"]: row for row in comparison}
    findings: list[Finding] = []
    for name in names:
        metric = estimated["metrics"].get(name) or {}
        if metric.get("value") is None:
            continue
        if not enough:
            status, limit = Status.INSUFFICIENT, None
        else:
            status, limit = judge_metric(
                name, metric, reference_values.get(name), thresholds[name], absolute.get(name)
            )
        seen = realised_values.get(name, {})
        findings.append(
            Finding(
                monitor=MONITOR, metric=name, scope="dataset",
                value=None if not enough else metric["value"], threshold=limit, status=status,
                detail={
                    "estimated": True, "method": method,
                    "sampling_error": metric["sampling_error"],
                    "lower": metric["lower"], "upper": metric["upper"],
                    "reference": reference_values.get(name), "rows": estimated["rows"],
                    "allowed_degradation": thresholds[name], "absolute_limit": absolute.get(name),
                    "realised": seen.get("realised"), "realised_rows": seen.get("rows"),
                    "within_band": seen.get("within_band"), "trusted": not caveats,
                },
            )
        )  # fmt: skip
    findings.append(
        Finding(
            monitor=MONITOR, metric="estimate_reliability", scope="dataset", value=outside,
            threshold=limit_outside,
            status=Status.WARN if caveats else (Status.OK if enough else Status.INSUFFICIENT),
            detail={"trusted": not caveats, "caveats": caveats, "method": method,
                    "reference_rows": reference_rows},
        )
    )  # fmt: skip
    shown = [f for f in findings if f.metric in names and f.value is not None]
    chart_data: dict[str, Any] = {
        "labels": [f.metric for f in shown],
        "values": [f.value for f in shown],
        "lower": [f.detail["lower"] for f in shown],
        "upper": [f.detail["upper"] for f in shown],
    }
    if comparison:
        chart_data["reference"] = [realised_values[f.metric]["realised"] for f in shown]
        chart_data["reference_label"] = "realised"
        title = "Estimated performance (band: ±3 sampling errors; mark: realised)"
    else:
        chart_data["reference"] = [f.detail["reference"] for f in shown]
        title = "Estimated performance (band: ±3 sampling errors; mark: reference)"
    chart_data["value_label"] = "estimated (±3 sampling errors)"
    report = {
        "task": task,
        "method": method,
        "rows": estimated["rows"],
        "estimated": estimated["metrics"],
        "outside_share": outside,
        "realised": None if realised is None else realised["metrics"],
        "realised_rows": None if realised is None else realised["rows"],
        "comparison": comparison,
        "reference": reference_info,
        "thresholds": thresholds,
        "trusted": not caveats,
        "caveats": caveats,
        "notes": notes,
    }
    return KindResult(
        findings=findings,
        report=report,
        charts=[Chart(title=title, kind="intervals", data=chart_data)] if shown else [],
    )
