"""LLM monitor fixtures: chat calls stored through the real trace ingest, and one monitor run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage.models import Deployment
from lineage.projects import Project
from lineage.storage import LocalStore
from lineage.store import session_scope
from monitors.execute import ChatFactory, execute_monitor_run, report_keys
from monitors.findings import Finding, RunSummary
from monitors.models import Monitor, MonitorCreate, MonitorRun, RunTrigger
from monitors.schedules import create_monitor, record_run
from monitors.spec import MonitorSpec
from monitors.traces import OtlpSpan
from tests.monitors.traces.conftest import START, make_llm_deployment, store_spans

T0 = datetime.fromtimestamp(START / 1e9, UTC)
"""The start of the reference hour; the current window is the hour after it."""
HOUR = timedelta(hours=1)


@dataclass
class Call:
    """One chat call as an application would trace it."""

    question: str
    answer: str
    at: timedelta
    latency_ms: int = 400
    status: str = "unset"
    finish: str = "stop"
    input_tokens: int = 30
    output_tokens: int = 20
    ttft_s: float | None = None
    prompt_version: str = "1"
    tool_error: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _ids(index: int) -> tuple[str, str]:
    return f"{index:032x}", f"{index:016x}"


def chat_spans(calls: Sequence[Call], *, first: int = 1) -> list[OtlpSpan]:
    """Return OTLP spans (GenAI semconv) for the calls, one trace each (plus a tool span)."""
    spans = []
    for offset, call in enumerate(calls):
        trace_id, span_id = _ids(first + offset)
        start = START + int(call.at.total_seconds() * 1e9)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "stand-in",
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": call.question}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": call.answer}],
                        "finish_reason": call.finish,
                    }
                ]
            ),
            "gen_ai.response.finish_reasons": [call.finish],
            "gen_ai.usage.input_tokens": call.input_tokens,
            "gen_ai.usage.output_tokens": call.output_tokens,
            "warden.prompt.name": "support",
            "warden.prompt.version": call.prompt_version,
            **call.extra,
        }
        if call.ttft_s is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = call.ttft_s
        spans.append(
            OtlpSpan(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=None,
                name="chat stand-in",
                kind="client",
                start_ns=start,
                end_ns=start + call.latency_ms * 1_000_000,
                status=call.status,
                status_message="",
                attributes=attributes,
            )
        )
        if call.tool_error is not None:
            spans.append(
                OtlpSpan(
                    trace_id=trace_id,
                    span_id=f"{first + offset + 10**6:016x}",
                    parent_span_id=span_id,
                    name="execute_tool lookup",
                    kind="internal",
                    start_ns=start + 1000,
                    end_ns=start + 2000,
                    status="error" if call.tool_error else "ok",
                    status_message="",
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "lookup",
                    },
                )
            )
    return spans


@dataclass
class LlmSetup:
    """A traced LLM deployment and a way to run one monitor over its current hour."""

    engine: Engine
    data_dir: Path
    deployment: Deployment
    routed: list[Finding] = field(default_factory=list)

    def store(self, calls: Sequence[Call], *, first: int = 1) -> None:
        """Store the calls through the real ingest (redaction and pricing included)."""
        spans = chat_spans(calls, first=first)
        for chunk in range(0, len(spans), 500):
            store_spans(self.engine, self.deployment, spans[chunk : chunk + 500])

    def run(
        self, spec: MonitorSpec, *, name: str | None = None, chat_for: ChatFactory | None = None
    ) -> tuple[RunSummary, dict[str, Any]]:
        """Run a monitor over ``[T0 + 1h, T0 + 2h)``; return its summary and JSON report."""

        def capture(
            *, session: Session, monitor: Monitor, run: MonitorRun, findings: list[Finding]
        ) -> None:
            self.routed.extend(findings)

        with session_scope(self.engine) as session:
            monitor = create_monitor(
                session=session,
                project_id=self.deployment.project_id,
                spec=MonitorCreate(
                    name=name or f"m-{uuid.uuid4().hex[:8]}",
                    deployment_id=self.deployment.id,
                    spec=spec,
                    window="last:1h",
                ),
            )
            run = record_run(
                session=session,
                monitor=monitor,
                scheduled_for=T0 + 2 * HOUR,
                trigger=RunTrigger.MANUAL,
            )
            assert run is not None
            run_id, project_id = run.id, run.project_id
        stored = execute_monitor_run(
            engine=self.engine,
            store=LocalStore(self.data_dir),
            run_id=run_id,
            on_findings=capture,
            chat_for=chat_for,
        )
        summary = RunSummary.from_json(stored)
        assert summary is not None
        json_path, html_path = (
            self.data_dir / key for key in report_keys(project_id=project_id, run_id=run_id)
        )
        assert html_path.is_file()
        return summary, json.loads(json_path.read_text())


@pytest.fixture
def llm_setup(engine: Engine, make_project: Callable[[str], Project], tmp_path: Path) -> LlmSetup:
    """Return a traced deployment ``support-bot`` of project ``acme``."""
    return LlmSetup(engine, tmp_path, make_llm_deployment(engine, make_project("acme")))


def by_metric(summary: RunSummary, scope: str = "dataset") -> dict[str, Finding]:
    """Return the run's findings in ``scope`` by metric."""
    return {f.metric: f for f in summary.findings if f.scope == scope}
