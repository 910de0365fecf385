"""The llm_operations kind over traces stored by the real ingest: every number checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lineage.errors import InvalidInput
from monitors.findings import Status
from monitors.spec import Kind, MonitorSpec
from tests.monitors.llm.conftest import HOUR, Call, LlmSetup, by_metric

MINUTE = HOUR / 60


def _calls() -> list[Call]:
    calls = []
    for i in range(10):
        calls.append(
            Call(
                question=f"question {i}",
                answer=f"answer {i}",
                at=HOUR + i * MINUTE,
                latency_ms=100 * (i + 1),
                status="error" if i in (3, 7) else "unset",
                finish="length" if i in (0, 1, 2) else "stop",
                input_tokens=30 + i,
                output_tokens=20,
                ttft_s=0.2 if i < 4 else None,
                prompt_version="1" if i < 6 else "2",
                tool_error=None if i >= 5 else i in (1, 4),
            )
        )
    return calls


def test_operations_per_deployment_and_prompt_version(llm_setup: LlmSetup) -> None:
    llm_setup.store(_calls())
    # Calls outside the window (the hour before it is the reference) are not counted in it.
    llm_setup.store([Call("old", "old", at=i * MINUTE, latency_ms=50) for i in range(5)], first=100)
    # Spans marked by an evaluation run but stored against the slot (Warden before traces_0002
    # did so; an application may send the mark) are not production traffic either.
    evaluation = {"warden.evaluation.run_id": "0b0e4f9c-2f8e-4d59-9a43-1c1f0d3b7a10"}
    llm_setup.store(
        [
            Call("eval", "eval", at=HOUR + i * MINUTE, status="error", extra=evaluation)
            for i in range(4)
        ],
        first=200,
    )
    summary, report = llm_setup.run(
        MonitorSpec(
            kind=Kind.LLM_OPERATIONS,
            min_rows=5,
            thresholds={"error_rate": 0.1, "latency_p95_ms": 5000, "truncation_rate": 0.5},
        )
    )
    found = by_metric(summary)
    latencies = np.arange(1, 11) * 100.0
    assert found["volume"].value == 10
    assert found["error_rate"].value == pytest.approx(0.2)
    assert found["error_rate"].status is Status.ALERT
    assert found["latency_p50_ms"].value == pytest.approx(np.quantile(latencies, 0.5))
    assert found["latency_p99_ms"].value == pytest.approx(np.quantile(latencies, 0.99))
    assert found["latency_p95_ms"].status is Status.OK
    assert found["ttft_p50_ms"].value == pytest.approx(200.0)
    assert found["truncation_rate"].value == pytest.approx(0.3)
    assert found["truncation_rate"].status is Status.OK
    assert found["tool_error_rate"].value == pytest.approx(2 / 5)
    assert found["input_tokens_total"].value == sum(30 + i for i in range(10))
    assert found["output_tokens_mean"].value == 20
    # No price for the stand-in model: cost is unknown, never $0.
    assert found["cost_usd"].value is None
    assert found["cost_usd"].status is Status.INSUFFICIENT
    assert report["results"][0]["report"]["overall"]["cost_missing_calls"] == 10
    assert report["results"][0]["report"]["reference"]["volume"] == 5
    v1, v2 = (
        by_metric(summary, "prompt_version:support@1"),
        by_metric(summary, "prompt_version:support@2"),
    )
    assert v1["error_rate"].value == pytest.approx(1 / 6)
    assert v2["error_rate"].value == pytest.approx(1 / 4)
    assert summary.status is Status.ALERT
    assert {f.metric for f in llm_setup.routed} >= {"error_rate", "volume"}


def test_a_floor_on_volume_and_unknown_thresholds(llm_setup: LlmSetup) -> None:
    llm_setup.store(_calls())
    summary, _ = llm_setup.run(
        MonitorSpec(kind=Kind.LLM_OPERATIONS, min_rows=5, thresholds={"volume_min": 50})
    )
    assert by_metric(summary)["volume"].status is Status.ALERT
    with pytest.raises(InvalidInput, match="unknown thresholds"):
        llm_setup.run(MonitorSpec(kind=Kind.LLM_OPERATIONS, min_rows=5, thresholds={"p95": 1}))
    with pytest.raises(InvalidInput, match="unknown options"):
        llm_setup.run(MonitorSpec(kind=Kind.LLM_OPERATIONS, min_rows=5, options={"sample": 1}))


def test_an_empty_window_is_insufficient_not_an_alert(llm_setup: LlmSetup) -> None:
    summary, _ = llm_setup.run(MonitorSpec(kind=Kind.LLM_OPERATIONS))
    assert summary.status is Status.INSUFFICIENT
    assert summary.reason == "no LLM calls were traced in the window"
