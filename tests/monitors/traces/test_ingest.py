"""Storing spans: idempotent, bad spans rejected alone, content apart, late spans roll up."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from lineage.errors import InvalidInput, NotFound
from lineage.models import Deployment
from lineage.store import session_scope
from monitors.traces import (
    OtlpSpan,
    Trace,
    TraceContent,
    TraceSpan,
    decode_request,
    find_deployment,
    ingest_spans,
)
from monitors.traces.pricing import PriceCreate, add_price
from tests.monitors.traces.conftest import payload

TRACE = "0af7651916cd43dd8448eb211c80319c"
START = 1_765_000_000_000_000_000


def _span(span_id: str, parent: str | None, offset_ms: int, **attributes: object) -> OtlpSpan:
    return OtlpSpan(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        name=f"span {span_id[:4]}",
        kind="internal",
        start_ns=START + offset_ms * 1_000_000,
        end_ns=START + (offset_ms + 100) * 1_000_000,
        status="unset",
        status_message="",
        attributes=dict(attributes),
    )


def _ingest(engine: Engine, deployment: Deployment, spans: list[OtlpSpan]):  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return ingest_spans(
            session=session,
            project_id=deployment.project_id,
            deployment_id=deployment.id,
            spans=spans,
            resource={"service.name": "support-bot"},
        )


def test_spans_are_stored_once_and_rolled_up(
    engine: Engine, llm_deployment: Callable[..., Deployment]
) -> None:
    deployment = llm_deployment()
    llm = _span(
        "b" * 16,
        "a" * 16,
        10,
        **{"gen_ai.usage.input_tokens": 30, "gen_ai.usage.output_tokens": 5},
    )
    first = _ingest(engine, deployment, [llm])
    assert (first.accepted, first.duplicates, first.traces) == (1, 0, 1)
    again = _ingest(engine, deployment, [llm, llm])
    assert (again.accepted, again.duplicates, again.rejected) == (0, 2, [])
    with session_scope(engine) as session:
        trace = session.exec(select(Trace)).one()
        assert (trace.span_count, trace.root_span_id, trace.name) == (1, None, "span bbbb")
        assert (trace.input_tokens, trace.output_tokens, trace.cost_missing_spans) == (30, 5, 1)
        assert trace.cost_nano_usd is None  # pricing missing, never $0
    # The root arrives late, earlier than its child: the roll-up follows.
    root = _span("a" * 16, None, 0, **{"gen_ai.usage.cost": 0.0001})
    _ingest(engine, deployment, [root])
    with session_scope(engine) as session:
        trace = session.exec(select(Trace)).one()
        assert (trace.span_count, trace.root_span_id, trace.name) == (2, "a" * 16, "span aaaa")
        assert trace.duration_ms == pytest.approx(110.0)
        assert trace.cost_nano_usd == 100_000
        spans = {s.span_id: s for s in session.exec(select(TraceSpan))}
        assert spans["a" * 16].cost_source == "ingested"
        assert spans["b" * 16].cost_source is None


def test_a_bad_span_is_rejected_alone(
    engine: Engine, llm_deployment: Callable[..., Deployment]
) -> None:
    deployment = llm_deployment()
    good = _span("c" * 16, None, 0)
    bad = _span("d" * 16, None, 0)
    bad.problem = "endTimeUnixNano is before startTimeUnixNano"
    outcome = _ingest(engine, deployment, [good, bad])
    assert outcome.accepted == 1
    assert [(r.span_id, r.reason) for r in outcome.rejected] == [("d" * 16, bad.problem)]
    with session_scope(engine) as session:
        assert [s.span_id for s in session.exec(select(TraceSpan))] == ["c" * 16]


def test_content_is_kept_apart_from_the_span_metrics(
    engine: Engine, llm_deployment: Callable[..., Deployment]
) -> None:
    deployment = llm_deployment()
    (resource,) = decode_request(json.dumps(payload("openinference")).encode(), encoding="json")
    _ingest(engine, deployment, resource.spans)
    with session_scope(engine) as session:
        span = session.exec(select(TraceSpan)).one()
        content = session.exec(select(TraceContent)).one()
    assert not any(key.startswith("llm.input_messages") for key in span.attributes)
    assert "input.value" not in span.attributes
    assert span.attributes["llm.token_count.total"] == 51
    assert content.span_row_id == span.id
    assert content.input_messages[1] == {"role": "user", "content": "Where is my parcel?"}
    assert "Where is my parcel?" in content.text
    assert content.other == {}  # input.value was read into the messages, not kept twice


def test_deployments_are_found_by_name_id_and_environment(
    engine: Engine, llm_deployment: Callable[..., Deployment]
) -> None:
    production = llm_deployment()
    staging = llm_deployment(environment="staging")
    with session_scope(engine) as session:
        found = find_deployment(
            session=session, project_id=production.project_id, name=str(staging.id)
        )
        assert found.id == staging.id
        found = find_deployment(
            session=session,
            project_id=production.project_id,
            name="support-bot",
            environment="production",
        )
        assert found.id == production.id
        with pytest.raises(InvalidInput, match="live in several environments"):
            find_deployment(session=session, project_id=production.project_id, name="support-bot")
        with pytest.raises(NotFound, match="no deployment named 'nope'"):
            find_deployment(session=session, project_id=production.project_id, name="nope")


def test_every_text_is_redacted_before_it_is_stored(
    engine: Engine, llm_deployment: Callable[..., Deployment]
) -> None:
    deployment = llm_deployment()
    span = _span(
        "e" * 16,
        None,
        0,
        **{
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "mail ann@example.com"}]}]
            ),
            "user.id": "ann@example.com",
            "http.client_ip": "203.0.113.9",
        },
    )
    span.status_message = "card 4111 1111 1111 1111 declined"
    outcome = _ingest(engine, deployment, [span])
    assert outcome.redactions == {"email": 2, "ip_address": 1, "credit_card": 1}
    with session_scope(engine) as session:
        stored = session.exec(select(TraceSpan)).one()
        content = session.exec(select(TraceContent)).one()
    assert stored.user_id == "[EMAIL]"
    assert stored.attributes["http.client_ip"] == "[IP_ADDRESS]"
    assert stored.status_message == "card [CREDIT_CARD] declined"
    assert stored.redactions == outcome.redactions
    assert content.input_messages == [{"role": "user", "content": "mail [EMAIL]"}]
    assert "ann@example.com" not in content.text


def test_a_span_is_priced_from_the_project_table_unless_it_sent_its_cost(
    engine: Engine, llm_deployment: Callable[..., Deployment]
) -> None:
    deployment = llm_deployment()
    with session_scope(engine) as session:
        add_price(
            session=session,
            project_id=deployment.project_id,
            spec=PriceCreate(
                provider="openai",
                model_pattern="gpt-4o-mini*",
                input_nano_usd_per_mtok=150_000_000,
                output_nano_usd_per_mtok=600_000_000,
                valid_from=datetime(2020, 1, 1, tzinfo=UTC),
            ),
            created_by="test",
        )
    call = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
    }
    priced = _span("1" * 16, None, 0, **call)
    sent = _span("2" * 16, None, 0, **call, **{"gen_ai.usage.cost": 0.5})
    unknown = _span("3" * 16, None, 0, **{**call, "gen_ai.request.model": "mystery-1"})
    _ingest(engine, deployment, [priced, sent, unknown])
    with session_scope(engine) as session:
        spans = {s.span_id[0]: s for s in session.exec(select(TraceSpan))}
        trace = session.exec(select(Trace)).one()
    assert (spans["1"].cost_nano_usd, spans["1"].cost_source) == (210_000, "computed")
    assert (spans["2"].cost_nano_usd, spans["2"].cost_source) == (500_000_000, "ingested")
    assert (spans["3"].cost_nano_usd, spans["3"].cost_source) == (None, None)
    assert (trace.cost_nano_usd, trace.cost_missing_spans) == (500_210_000, 1)
