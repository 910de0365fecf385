"""The ``llm_operations`` kind: volume, errors, latency, tokens, cost and truncation of LLM calls.

Measured over the window's model calls (and tool calls for the tool error rate), for the whole
deployment (scope ``dataset``) and per prompt version (scope ``prompt_version:<name>@<version>``).
Every metric is reported; a metric is judged only when ``thresholds`` names it, as a ceiling
(``volume_min`` is a floor): above it the finding is ``alert``, else ``ok``. A metric with nothing
to measure (no call reported a time to first token, no tool was called) is ``insufficient``.
Cost is the sum of the calls Warden could price; ``cost_missing_calls`` counts the others, so a
missing price never reads as $0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lineage.errors import InvalidInput
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, MonitorContext, register_kind
from monitors.spec import Kind, MonitorSpec

__all__ = ["CEILINGS", "FLOORS", "measure_calls", "run_llm_operations"]

CEILINGS = frozenset(
    {
        "error_rate",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "input_tokens_mean",
        "output_tokens_mean",
        "input_tokens_total",
        "output_tokens_total",
        "cost_usd",
        "truncation_rate",
        "tool_error_rate",
    }
)
"""Thresholds judged as ceilings (the metric must stay at or below)."""
FLOORS = frozenset({"volume_min"})
"""Thresholds judged as floors (``volume_min``: at least this many model calls)."""

_NANO = 1e9


def _quantile(values: pd.Series, q: float) -> float | None:
    present = values.dropna()
    return None if present.empty else float(np.quantile(present.to_numpy(), q))


def _rate(flags: pd.Series) -> float | None:
    return None if flags.empty else float(flags.mean())


def _mean(values: pd.Series) -> float | None:
    present = values.dropna()
    return None if present.empty else float(present.mean())


def measure_calls(calls: pd.DataFrame) -> dict[str, Any]:
    """Return every operations metric of a table of calls (:mod:`monitors.llm.calls`)."""
    model = calls[calls["type"] == "model"]
    tools = calls[calls["type"] == "tool"]
    costs = model["cost_nano_usd"]
    return {
        "volume": len(model),
        "traces": int(model["trace_id"].nunique()),
        "error_rate": _rate(model["status"] == "error"),
        "latency_p50_ms": _quantile(model["latency_ms"], 0.50),
        "latency_p95_ms": _quantile(model["latency_ms"], 0.95),
        "latency_p99_ms": _quantile(model["latency_ms"], 0.99),
        "ttft_p50_ms": _quantile(model["ttft_ms"], 0.50),
        "ttft_p95_ms": _quantile(model["ttft_ms"], 0.95),
        "input_tokens_total": float(model["input_tokens"].sum()),
        "output_tokens_total": float(model["output_tokens"].sum()),
        "input_tokens_mean": _mean(model["input_tokens"]),
        "output_tokens_mean": _mean(model["output_tokens"]),
        "cost_usd": float(costs.sum()) / _NANO if costs.notna().any() else None,
        "cost_missing_calls": int(costs.isna().sum()),
        "truncation_rate": _rate(model["truncated"].astype(bool)),
        "tool_calls": len(tools),
        "tool_error_rate": _rate(tools["status"] == "error"),
    }


def _check(spec: MonitorSpec) -> None:
    options = sorted(set(spec.options) - {"reference_start", "reference_end"})
    if options:
        raise InvalidInput(
            f"unknown options {options} for llm_operations; use reference_start and "
            "reference_end (the reference window)",
            field="options",
        )
    unknown = sorted(set(spec.thresholds) - CEILINGS - FLOORS)
    if unknown:
        raise InvalidInput(
            f"unknown thresholds {unknown} for llm_operations; use {sorted(CEILINGS | FLOORS)}",
            field="thresholds",
        )


def _judge(metrics: dict[str, Any], spec: MonitorSpec, scope: str) -> list[Finding]:
    findings = []
    for metric, value in metrics.items():
        threshold = spec.thresholds.get(metric)
        if metric == "volume" and "volume_min" in spec.thresholds:
            threshold = spec.thresholds["volume_min"]
        if value is None:
            status = Status.INSUFFICIENT
        elif threshold is None:
            status = Status.OK
        elif metric == "volume":
            status = Status.ALERT if value < threshold else Status.OK
        else:
            status = Status.ALERT if value > threshold else Status.OK
        findings.append(
            Finding(
                monitor=Kind.LLM_OPERATIONS.value,
                metric=metric,
                scope=scope,
                value=None if value is None else float(value),
                threshold=threshold,
                status=status,
            )
        )
    return findings


def _version_key(name: Any, version: Any) -> str:
    if pd.isna(version) or version is None:
        return "unversioned"
    return f"{name}@{version}" if name is not None and not pd.isna(name) else str(version)


@register_kind(Kind.LLM_OPERATIONS)
def run_llm_operations(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Measure the window's calls, judge the named thresholds, per deployment and prompt version.

    Thresholds (all optional): the metric names of :data:`CEILINGS`, and ``volume_min``.
    """
    _check(spec)
    calls = context.frame()
    overall = measure_calls(calls)
    findings = _judge(overall, spec, "dataset")
    alerting = {finding.metric for finding in findings if finding.status is Status.ALERT}
    keys = calls.apply(lambda row: _version_key(row["prompt_name"], row["prompt_version"]), axis=1)
    per_version: dict[str, dict[str, Any]] = {}
    for key in sorted({str(k) for k in keys}) if len(calls) else []:
        metrics = measure_calls(calls[keys == key])
        per_version[key] = metrics
        judged = {name: metrics[name] for name in spec.thresholds if name in metrics}
        if "volume_min" in spec.thresholds:
            judged["volume"] = metrics["volume"]
        findings.extend(_judge(judged, spec, f"prompt_version:{key}"))
    reference = None
    if context.reference is not None and len(context.reference):
        reference = measure_calls(context.reference)
    latency = [f"latency_p{q}_ms" for q in (50, 95, 99)]
    charts = [
        Chart(
            title="Latency of model calls (ms)",
            kind="bars",
            data={
                "labels": ["p50", "p95", "p99"],
                "values": [overall[name] for name in latency],
                "flags": [name in alerting for name in latency],
            },
        )
    ]
    if per_version:
        labels = list(per_version)
        charts.append(
            Chart(
                title="Error, truncation and tool-error rates per prompt version",
                kind="bars",
                data={
                    "labels": [
                        f"{label}: {metric}"
                        for label in labels
                        for metric in ("error_rate", "truncation_rate", "tool_error_rate")
                    ],
                    "values": [
                        per_version[label][metric]
                        for label in labels
                        for metric in ("error_rate", "truncation_rate", "tool_error_rate")
                    ],
                },
            )
        )
    return KindResult(
        findings=findings,
        report={"overall": overall, "per_prompt_version": per_version, "reference": reference},
        charts=charts,
    )
