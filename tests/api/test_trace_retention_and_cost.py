"""Retention purges and cost recomputes, end to end: routes queue, the worker runs and audits."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from api.scheduler import LEASE_NAME, Scheduler
from api.settings import Settings
from api.worker_process import audit_as_warden
from governance.audit import AuditEntry
from governance.roles import Role
from lineage.projects import Project
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.lease import try_acquire_lease
from lineage.runtime.queue import RuntimeJob
from lineage.runtime.worker import Worker
from lineage.store import session_scope
from monitors.traces import Trace, TraceContent, TraceSpan
from monitors.traces.jobs import TRACE_PURGE, queue_due_purges, queue_purge, register_trace_handlers
from monitors.traces.pricing import recompute_costs
from tests.conftest import Issued
from tests.monitors.traces.conftest import make_llm_deployment, payload

BASE = "/api/v1/projects/acme/llm"
NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
TRACE_IDS = iter(f"{n:032x}" for n in range(1, 1000))


@pytest.fixture
def people(
    engine: Engine, make_project: Callable[[str], Any], make_principal: Callable[..., Issued]
) -> tuple[dict[str, str], dict[str, str]]:
    """Return (writer, admin) headers for project acme with an LLM deployment."""
    make_llm_deployment(engine, make_project("acme"))
    writer = make_principal(role=Role.DATA_SCIENTIST, service=True)
    admin = make_principal(role=Role.ADMIN, name="ada")
    return writer.headers, admin.headers


def send(
    client: TestClient,
    writer: dict[str, str],
    at: datetime,
    *,
    model: str = "gpt-4o-mini",
    cost_usd: float | None = None,
) -> str:
    """Send one chat span that started at ``at``; return its trace id."""
    document = payload("semconv")
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    trace_id = next(TRACE_IDS)
    start = int(at.timestamp()) * 10**9
    span.update(
        traceId=trace_id, startTimeUnixNano=str(start), endTimeUnixNano=str(start + 1_250_000_000)
    )
    for attribute in span["attributes"]:
        if attribute["key"] in {"gen_ai.request.model", "gen_ai.response.model"}:
            attribute["value"] = {"stringValue": model}
    if cost_usd is not None:
        span["attributes"].append({"key": "gen_ai.usage.cost", "value": {"doubleValue": cost_usd}})
    answer = client.post(
        "/v1/traces",
        content=json.dumps(document),
        headers={"Content-Type": "application/json", **writer},
    )
    assert answer.status_code == 200, answer.text
    return trace_id


def work(engine: Engine) -> None:
    """Run every queued job with the trace handlers, audited as the worker does."""
    worker = Worker(
        engine=engine, registry=register_trace_handlers(HandlerRegistry(), audit=audit_as_warden)
    )
    while worker.run_once():
        pass


def daily_metrics(engine: Engine) -> list[tuple[Any, ...]]:
    s = TraceSpan.__table__.c  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        rows = session.execute(
            sa.select(
                sa.func.date(s.start_at),
                sa.func.count(),
                sa.func.sum(s.input_tokens),
                sa.func.sum(s.output_tokens),
                sa.func.sum(s.cost_nano_usd),
                sa.func.sum(s.latency_ms),
            )
            .group_by(sa.func.date(s.start_at))
            .order_by(sa.func.date(s.start_at))
        ).all()
    return [tuple(row) for row in rows]


def contents(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return sorted(session.exec(select(TraceContent.trace_id)).all())


def audited(engine: Engine, action: str) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.seq))
        ).all()
        return [{"actor": r.actor_name, **r.detail_object()} for r in rows]


def add_price(client: TestClient, admin: dict[str, str], valid_from: str, input_price: int) -> None:
    answer = client.post(
        f"{BASE}/prices",
        json={
            "provider": "openai",
            "model_pattern": "gpt-4o-mini*",
            "input_nano_usd_per_mtok": input_price,
            "output_nano_usd_per_mtok": 600_000_000,
            "valid_from": valid_from,
        },
        headers=admin,
    )
    assert answer.status_code == 201, answer.text


def test_a_purge_on_a_fixed_clock_drops_old_content_keeps_the_metrics_and_is_audited(
    client: TestClient, engine: Engine, people: tuple[dict[str, str], dict[str, str]]
) -> None:
    writer, admin = people
    add_price(client, admin, "2026-01-01T00:00:00Z", 150_000_000)
    old = send(client, writer, NOW - timedelta(days=10))
    recent = send(client, writer, NOW - timedelta(days=1))
    ancient = send(client, writer, NOW - timedelta(days=45))
    changed = client.put(
        f"{BASE}/retention", json={"content_days": 7, "metrics_days": 30}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    metrics = daily_metrics(engine)
    assert all(day[4] for day in metrics)  # every day has a cost
    acme = _project_id(engine)
    with session_scope(engine) as session:
        queue_purge(session=session, project_id=acme, now=NOW)
    work(engine)
    assert contents(engine) == [recent]
    assert daily_metrics(engine) == metrics[1:]  # the 45-day-old trace left whole, metrics too
    with session_scope(engine) as session:
        assert sorted(session.exec(select(Trace.trace_id)).all()) == sorted([old, recent])
    [entry] = audited(engine, "trace.purge")
    assert entry["actor"] == "warden"
    assert entry["after"]["contents"] == 2
    assert entry["after"]["spans"] == 1
    assert entry["after"]["traces"] == 1
    assert entry["after"]["held"] is False
    assert ancient not in json.dumps(entry)
    assert client.get(f"{BASE}/retention", headers=admin).json()["last_purge_at"] is not None


def test_a_legal_hold_keeps_everything_and_the_held_purge_is_audited(
    client: TestClient, engine: Engine, people: tuple[dict[str, str], dict[str, str]]
) -> None:
    writer, admin = people
    send(client, writer, NOW - timedelta(days=500))
    hold = client.put(
        f"{BASE}/retention/legal-hold",
        json={"hold": True, "reason": "litigation 2026-17"},
        headers=admin,
    )
    assert hold.status_code == 200, hold.text
    assert hold.json()["legal_hold"] is True
    acme = _project_id(engine)
    with session_scope(engine) as session:
        queue_purge(session=session, project_id=acme, now=NOW)
    work(engine)
    assert len(contents(engine)) == 1
    [entry] = audited(engine, "trace.purge")
    assert entry["after"]["held"] is True
    assert entry["after"]["contents"] == 0
    [held] = audited(engine, "retention.legal_hold")
    assert held["after"] == {"legal_hold": True}
    lifted = client.put(
        f"{BASE}/retention/legal-hold", json={"hold": False, "reason": "settled"}, headers=admin
    )
    assert lifted.status_code == 200
    queued = client.post(f"{BASE}/retention/purge", headers=admin)
    assert queued.status_code == 202, queued.text
    work(engine)
    assert contents(engine) == []
    assert len(audited(engine, "trace.purge")) == 2


def test_the_scheduler_queues_one_purge_a_day_per_project_with_traces(
    client: TestClient,
    engine: Engine,
    people: tuple[dict[str, str], dict[str, str]],
    make_project: Callable[[str], Any],
) -> None:
    writer, _ = people
    make_project("empty")
    send(client, writer, NOW)
    acme = _project_id(engine)
    with session_scope(engine) as session:
        assert queue_due_purges(session=session) == [acme]
        assert queue_due_purges(session=session) == []
    with session_scope(engine) as session:
        later = datetime.now(UTC) + timedelta(days=1, minutes=1)
        assert queue_due_purges(session=session, now=later) == [acme]
        jobs = session.exec(select(func.count()).where(col(RuntimeJob.kind) == TRACE_PURGE)).one()
        assert jobs == 2


def test_bad_lifetimes_are_refused_naming_the_field(
    client: TestClient, people: tuple[dict[str, str], dict[str, str]]
) -> None:
    _, admin = people
    answer = client.put(
        f"{BASE}/retention", json={"content_days": 40, "metrics_days": 30}, headers=admin
    )
    assert answer.status_code == 422
    assert "content_days may not exceed metrics_days" in answer.text
    answer = client.put(
        f"{BASE}/retention", json={"content_days": 0, "metrics_days": 30}, headers=admin
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "content_days"


def test_a_price_change_and_an_explicit_recompute_change_past_costs_and_are_audited(
    client: TestClient, engine: Engine, people: tuple[dict[str, str], dict[str, str]]
) -> None:
    writer, admin = people
    add_price(client, admin, "2026-01-01T00:00:00Z", 150_000_000)
    priced = send(client, writer, NOW - timedelta(days=3))
    unpriced = send(client, writer, NOW - timedelta(days=3), model="mystery-model")
    ingested = send(client, writer, NOW - timedelta(days=3), cost_usd=0.5)

    def costs() -> dict[str, tuple[int | None, str | None, int]]:
        with session_scope(engine) as session:
            spans = {s.trace_id: s for s in session.exec(select(TraceSpan))}
            traces = {t.trace_id: t for t in session.exec(select(Trace))}
            return {
                trace_id: (
                    span.cost_nano_usd,
                    span.cost_source,
                    traces[trace_id].cost_missing_spans,
                )
                for trace_id, span in spans.items()
            }

    # 42 input tokens of which 16 cached (cached at the input price), 9 output tokens
    first = 42 * 150 + 9 * 600
    assert costs() == {
        priced: (first, "computed", 0),
        unpriced: (None, None, 1),  # pricing missing, never $0
        ingested: (500_000_000, "ingested", 0),
    }
    add_price(client, admin, "2026-06-01T00:00:00Z", 300_000_000)
    assert costs()[priced][0] == first  # a price change alone rewrites nothing
    queued = client.post(f"{BASE}/prices/recompute", json={}, headers=admin)
    assert queued.status_code == 202, queued.text
    assert queued.json()["kind"] == "trace_cost_recompute"
    work(engine)
    second = 42 * 300 + 9 * 600
    assert costs() == {
        priced: (second, "computed", 0),
        unpriced: (None, None, 1),
        ingested: (500_000_000, "ingested", 0),
    }
    with session_scope(engine) as session:
        trace = session.exec(select(Trace).where(Trace.trace_id == priced)).one()
        assert trace.cost_nano_usd == second
    [requested] = audited(engine, "price.recompute")
    assert requested["actor"] == "ada"
    [done] = audited(engine, "trace.cost_recompute")
    assert done["after"] == {
        "spans_checked": 2,
        "spans_changed": 1,
        "spans_missing": 1,
        "traces_updated": 1,
    }
    assert done["requested_by"] == "ada"
    add_price(client, admin, "2026-06-10T00:00:00Z", 600_000_000)
    with session_scope(engine) as session:  # one span per page: every page is re-priced
        counts = recompute_costs(session=session, project_id=_project_id(engine), page_size=1)
    assert counts.spans_checked == 2
    assert counts.spans_changed == 1
    assert costs()[priced] == (42 * 600 + 9 * 600, "computed", 0)


def test_only_admins_queue_purges_and_recomputes(
    client: TestClient, make_principal: Callable[..., Issued], people: Any
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST, name="sam").headers
    assert client.post(f"{BASE}/retention/purge", headers=scientist).status_code == 403
    assert client.post(f"{BASE}/prices/recompute", json={}, headers=scientist).status_code == 403
    assert (
        client.put(
            f"{BASE}/retention/legal-hold", json={"hold": True, "reason": "x"}, headers=scientist
        ).status_code
        == 403
    )
    assert client.get(f"{BASE}/retention", headers=scientist).json()["content_days"] == 30


def _project_id(engine: Engine) -> Any:
    with session_scope(engine) as session:
        return session.exec(select(Project.id).where(Project.name == "acme")).one()


def test_only_the_scheduler_leader_queues_the_daily_purges(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    people: tuple[dict[str, str], dict[str, str]],
) -> None:
    writer, _ = people
    send(client, writer, NOW)
    leader = Scheduler(engine=engine, settings=settings, holder="leader")
    standby = Scheduler(engine=engine, settings=settings, holder="standby")
    with session_scope(engine) as session:
        assert try_acquire_lease(
            session=session, name=LEASE_NAME, holder="leader", ttl=timedelta(minutes=5)
        )
    assert standby.queue_purges() == []
    assert leader.queue_purges() == [_project_id(engine)]
    assert leader.queue_purges() == []
