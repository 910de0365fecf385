"""The drift and prediction-drift monitor kinds: verdicts turned into findings and charts.

``drift`` gives a ``warn`` per drifted column and an ``alert`` when the dataset drifts;
``prediction_drift`` an ``alert`` when the prediction or score column drifts.
"""

from __future__ import annotations

from collections.abc import Iterator

from lineage.errors import InvalidInput
from monitors.drift.verdicts import DriftResult, compute_drift
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, MonitorContext, register_kind
from monitors.spec import Kind, MonitorSpec

__all__ = ["run_drift", "run_prediction_drift"]


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
        engine=context.engine, spark_master=context.spark_master,
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
        column_thresholds=spec.column_thresholds, fdr=spec.fdr, engine=context.engine,
        spark_master=context.spark_master,
    )  # fmt: skip
    findings = list(
        _column_findings(result, monitor=Kind.PREDICTION_DRIFT.value, status=Status.ALERT)
    )
    return KindResult(
        findings=findings, report=result.to_dict(), charts=_charts(result, "Prediction drift")
    )
