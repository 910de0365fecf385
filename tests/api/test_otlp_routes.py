"""``POST /v1/traces``: the stock OpenTelemetry SDK exports to a live Warden; what is refused.

The SDK's OTLP/HTTP protobuf exporter is pointed at uvicorn on 127.0.0.1; the same call sent
as gzipped OTLP/JSON lands in the same trace. Bad spans are rejected alone (partial success);
bodies that are not requests, too large, gzip bombs or of another media type are 4xx and leave
no span, no trace and no ingest audit entry behind.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from api.app import create_app
from api.settings import Settings
from governance.audit import AuditEntry
from governance.roles import Role
from lineage.models import Deployment
from lineage.store import session_scope
from monitors.traces import PriceCreate, Trace, TraceContent, TraceSpan, add_price
from tests.conftest import Issued
from tests.monitors.traces.conftest import make_llm_deployment, payload

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def deployment(engine: Engine, make_project: Callable[[str], Any]) -> Deployment:
    return make_llm_deployment(engine, make_project("acme"))


@pytest.fixture
def writer(make_principal: Callable[..., Issued]) -> Issued:
    return make_principal(role=Role.DATA_SCIENTIST, service=True)


def _counts(engine: Engine) -> tuple[int, int, int, int]:
    with session_scope(engine) as session:
        ingests = session.exec(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "trace.ingest")
        ).one()
        return (
            session.exec(select(func.count()).select_from(TraceSpan)).one(),
            session.exec(select(func.count()).select_from(TraceContent)).one(),
            session.exec(select(func.count()).select_from(Trace)).one(),
            ingests,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def live_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """Serve the app with uvicorn on a free local port."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, tuple | list):
        return {"arrayValue": {"values": [_attribute(v) for v in value]}}
    return {"stringValue": str(value)}


def test_the_stock_sdk_exports_to_warden_and_json_joins_the_same_trace(
    live_url: str, engine: Engine, deployment: Deployment, writer: Issued
) -> None:
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
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-bot", "warden.project": "acme"})
    )
    provider.add_span_processor(
        SimpleSpanProcessor(
            # A generous timeout: the exporter drops a batch it could not send in time.
            OTLPSpanExporter(endpoint=f"{live_url}/v1/traces", headers=writer.headers, timeout=60)
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("support-bot")
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", "openai")
        span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        span.set_attribute("gen_ai.response.model", "gpt-4o-mini-2024-07-18")
        span.set_attribute("gen_ai.usage.input_tokens", 42)
        span.set_attribute("gen_ai.usage.output_tokens", 9)
    provider.shutdown()
    (sent,) = memory.get_finished_spans()
    trace_id = format(sent.context.trace_id, "032x")

    with session_scope(engine) as session:
        stored = session.exec(select(TraceSpan)).one()
    assert stored.trace_id == trace_id
    assert (stored.request_model, stored.response_model) == (
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
    )
    assert (stored.provider, stored.input_tokens, stored.output_tokens) == ("openai", 42, 9)
    assert stored.deployment_id == deployment.id
    assert stored.kind == "client"
    assert (stored.cost_nano_usd, stored.cost_source) == (42 * 150 + 9 * 600, "computed")

    # The same call as OTLP/JSON (hex ids), gzipped, as a child span of the first.
    child = {
        "traceId": trace_id,
        "spanId": "00f067aa0ba902b7",
        "parentSpanId": format(sent.context.span_id, "016x"),
        "name": "chat gpt-4o-mini",
        "kind": "SPAN_KIND_CLIENT",
        "startTimeUnixNano": str(sent.start_time),
        "endTimeUnixNano": str(sent.end_time),
        "attributes": [
            {"key": k, "value": _attribute(v)} for k, v in (sent.attributes or {}).items()
        ],
    }
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "support-bot"}},
                        {"key": "warden.project", "value": {"stringValue": "acme"}},
                    ]
                },
                "scopeSpans": [{"scope": {"name": "curl"}, "spans": [child]}],
            }
        ]
    }
    answer = httpx.post(
        f"{live_url}/v1/traces",
        content=gzip.compress(json.dumps(body).encode()),
        headers={**JSON, "Content-Encoding": "gzip", **writer.headers},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {}
    with session_scope(engine) as session:
        trace = session.exec(select(Trace)).one()
        assert trace.trace_id == trace_id
        assert (trace.span_count, trace.input_tokens, trace.output_tokens) == (2, 84, 18)
        assert trace.root_span_id == format(sent.context.span_id, "016x")
        assert trace.cost_nano_usd == 2 * (42 * 150 + 9 * 600)


def _protobuf(document: dict[str, Any]) -> bytes:
    """Encode an OTLP/JSON fixture as protobuf (ids converted by hand, as a client would)."""
    import base64

    raw = json.loads(json.dumps(document))
    for resource in raw["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    from google.protobuf import json_format

    encoded: bytes = json_format.ParseDict(raw, ExportTraceServiceRequest()).SerializeToString()
    return encoded


def test_one_bad_span_is_rejected_alone(
    client: TestClient, engine: Engine, deployment: Deployment, writer: Issued
) -> None:
    document = payload("semconv")
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "1111111111111111"})
    spans.append({**spans[0], "spanId": "2222222222222222", "endTimeUnixNano": "5"})
    answer = client.post(
        "/v1/traces", content=_protobuf(document), headers={**PROTOBUF, **writer.headers}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert "endTimeUnixNano is before startTimeUnixNano" in response.partial_success.error_message
    assert _counts(engine) == (2, 2, 1, 1)
    with session_scope(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "trace.ingest")).one()
    assert entry.target == f"deployment:{deployment.id}"
    assert entry.project_id == deployment.project_id
    detail = json.loads(entry.detail) if isinstance(entry.detail, str) else entry.detail
    assert detail["after"]["accepted"] == 2
    assert detail["after"]["rejected"] == 1


@pytest.mark.parametrize(
    "dialect", ["semconv", "semconv_legacy", "openinference", "mlflow_langfuse"]
)
def test_every_dialect_lands_in_the_same_columns(
    client: TestClient, engine: Engine, deployment: Deployment, writer: Issued, dialect: str
) -> None:
    answer = client.post("/v1/traces", json=payload(dialect), headers={**JSON, **writer.headers})
    assert answer.status_code == 200, answer.text
    with session_scope(engine) as session:
        span = session.exec(select(TraceSpan)).one()
        content = session.exec(select(TraceContent)).one()
    assert (span.provider, span.request_model, span.response_model) == (
        "openai",
        "gpt-4o-mini",
        "gpt-4o-mini",
    )
    assert (span.input_tokens, span.output_tokens, span.cache_read_tokens) == (42, 9, 16)
    assert span.reasoning_tokens == 3
    assert [m["role"] for m in content.input_messages] == ["system", "user"]
    assert content.output_messages == [
        {"role": "assistant", "content": "It left the depot this morning."}
    ]


def _refused(
    client: TestClient,
    engine: Engine,
    body: bytes,
    headers: dict[str, str],
    status: int,
    detail: str,
) -> None:
    answer = client.post("/v1/traces", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert detail in answer.json()["detail"]
    assert _counts(engine) == (0, 0, 0, 0)


def test_what_is_not_an_otlp_request_is_refused_and_nothing_written(
    client: TestClient, engine: Engine, deployment: Deployment, writer: Issued
) -> None:
    good = json.dumps(payload("semconv")).encode()
    auth = writer.headers
    _refused(client, engine, good, {"Content-Type": "text/plain", **auth}, 415, "is not OTLP")
    _refused(client, engine, good, {**JSON, "Content-Encoding": "br", **auth}, 415, "'br'")
    _refused(client, engine, b"\x0a\xff\xff\xff\xff\x0f", {**PROTOBUF, **auth}, 400, "protobuf")
    _refused(client, engine, b'{"resourceSpans": 1}', {**JSON, **auth}, 400, "must be a list")
    _refused(
        client,
        engine,
        b"not gzip",
        {**JSON, "Content-Encoding": "gzip", **auth},
        400,
        "not valid gzip",
    )


def test_oversized_bodies_and_gzip_bombs_are_413(
    database_url: str, settings: Settings, engine: Engine, deployment: Deployment, writer: Issued
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 4096})
    with TestClient(create_app(small, engine=engine), raise_server_exceptions=False) as client:
        padded = payload("semconv")
        padded["resourceSpans"][0]["resource"]["attributes"].append(
            {"key": "pad", "value": {"stringValue": "x" * 5000}}
        )
        body = json.dumps(padded).encode()
        _refused(client, engine, body, {**JSON, **writer.headers}, 413, "exceeds 4096 bytes")
        bomb = gzip.compress(b" " * 4_000_000, compresslevel=9)
        assert len(bomb) < 4096
        _refused(
            client,
            engine,
            bomb,
            {**JSON, "Content-Encoding": "gzip", **writer.headers},
            413,
            "decompressed body exceeds 4096 bytes",
        )


def test_spans_of_unknown_deployments_or_projects_go_nowhere(
    client: TestClient,
    engine: Engine,
    deployment: Deployment,
    writer: Issued,
    make_principal: Callable[..., Issued],
) -> None:
    body = json.dumps(payload("semconv")).encode()
    answer = client.post(
        "/v1/traces",
        content=body,
        headers={**JSON, "X-Warden-Deployment": "nope", **writer.headers},
    )
    # The header names the deployment only when the resource does not: service.name is
    # support-bot; X-Warden-Deployment wins over service.name.
    assert answer.status_code == 404, answer.text
    assert "no deployment named 'nope'" in answer.json()["detail"]
    answer = client.post(
        "/v1/traces",
        content=body,
        headers={**JSON, "X-Warden-Project": "elsewhere", **writer.headers},
    )
    assert answer.status_code == 404
    viewer = make_principal(role=Role.VIEWER)
    answer = client.post("/v1/traces", content=body, headers={**JSON, **viewer.headers})
    assert answer.status_code == 403
    assert _counts(engine) == (0, 0, 0, 0)
    with session_scope(engine) as session:
        denials = session.exec(select(AuditEntry).where(AuditEntry.action == "access.denied")).all()
    assert {d.target for d in denials} >= {"project:elsewhere"}


def test_a_resource_for_another_deployment_is_rejected_the_rest_stored(
    client: TestClient, engine: Engine, deployment: Deployment, writer: Issued
) -> None:
    document = payload("semconv")
    other = json.loads(json.dumps(document["resourceSpans"][0]))
    other["resource"]["attributes"] = [
        {"key": "service.name", "value": {"stringValue": "unknown-bot"}}
    ]
    other["scopeSpans"][0]["spans"][0]["spanId"] = "3333333333333333"
    document["resourceSpans"].append(other)
    answer = client.post("/v1/traces", json=document, headers={**JSON, **writer.headers})
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "unknown-bot" in answer.json()["partialSuccess"]["errorMessage"]
    assert _counts(engine)[0] == 1
