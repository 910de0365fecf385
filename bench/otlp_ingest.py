"""Benchmark: span ingest of Warden's ``POST /v1/traces`` against MLflow 3's, on the same spans.

Run ``python -m bench.otlp_ingest`` (defaults: 8,000 spans in requests of 200, three runs per
encoding); ``--spans`` / ``--batch`` / ``--repeat`` run it small.

What is measured: both servers run as one API process each on this machine, on a local SQLite
store — Warden (``warden serve``: a fresh migrated store, one project, one LLM deployment, a
price, a service account's key) and MLflow (``mlflow server --workers 1``, spans sent with the
``x-mlflow-experiment-id`` header). One client sends the same generated traces (4 spans each:
an agent span, two chat spans with GenAI semconv attributes and messages, a tool span) to each
server — one server runs at a time — request after request over one keep-alive connection, as
``application/x-protobuf`` and as OTLP/JSON, the encodings alternating; every run uses fresh
trace ids so nothing is a duplicate, and a warm-up of a few requests precedes it. A figure is
spans stored per second of wall clock (the median of the runs); each request must answer 200,
and the stored spans are counted in both databases afterwards. Warden's figure includes what
MLflow does not do: PII redaction of every text, pricing, trace roll-ups and the audit entry of
each batch.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from bench.processes import free_port, running, wait_ready
from bench.seeding import service_key

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

SPANS_PER_TRACE = 4
_BIN = Path(sys.executable).parent
_QUESTION = (
    "Hello, I ordered a kettle last week (order 88231) and it still has not arrived. "
    "You can reach me at jane.doe@example.com. Where is my parcel and when will it come?"
)
_ANSWER = (
    "I am sorry for the wait. Order 88231 left our depot yesterday and is with the carrier; "
    "it should reach you within two working days. I have sent the tracking link by e-mail."
)


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def _trace_spans(trace_id: bytes, start_ns: int) -> list[dict[str, Any]]:
    """One agent turn: the agent span, a chat call, a tool call, a second chat call."""
    root, chat, tool, chat2 = (secrets.token_bytes(8) for _ in range(4))
    llm = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 412,
        "gen_ai.usage.output_tokens": 57,
        "gen_ai.input.messages": _messages("user", _QUESTION),
        "gen_ai.output.messages": _messages("assistant", _ANSWER),
    }
    return [
        {
            "id": root,
            "parent": b"",
            "name": "invoke_agent support",
            "kind": 1,
            "start": start_ns,
            "end": start_ns + 2_400_000_000,
            "attributes": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"},
        },
        {
            "id": chat,
            "parent": root,
            "name": "chat gpt-4o-mini",
            "kind": 3,
            "start": start_ns + 10_000_000,
            "end": start_ns + 900_000_000,
            "attributes": llm,
        },
        {
            "id": tool,
            "parent": root,
            "name": "execute_tool track_parcel",
            "kind": 1,
            "start": start_ns + 910_000_000,
            "end": start_ns + 1_300_000_000,
            "attributes": {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "track_parcel",
            },
        },
        {
            "id": chat2,
            "parent": root,
            "name": "chat gpt-4o-mini",
            "kind": 3,
            "start": start_ns + 1_310_000_000,
            "end": start_ns + 2_390_000_000,
            "attributes": llm,
        },
    ]


def _any_pb(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, list):
        any_value = AnyValue()
        any_value.array_value.values.extend(_any_pb(v) for v in value)
        return any_value
    return AnyValue(string_value=str(value))


def _any_json(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_json(v) for v in value]}}
    return {"stringValue": str(value)}


_RESOURCE = {"service.name": "support-bot", "warden.project": "bench"}


def _protobuf(spans: list[tuple[bytes, dict[str, Any]]]) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=[KeyValue(key=k, value=_any_pb(v)) for k, v in _RESOURCE.items()]
                ),
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            Span(
                                trace_id=trace_id,
                                span_id=span["id"],
                                parent_span_id=span["parent"],
                                name=span["name"],
                                kind=span["kind"],
                                start_time_unix_nano=span["start"],
                                end_time_unix_nano=span["end"],
                                attributes=[
                                    KeyValue(key=k, value=_any_pb(v))
                                    for k, v in span["attributes"].items()
                                ],
                            )
                            for trace_id, span in spans
                        ]
                    )
                ],
            )
        ]
    )
    encoded: bytes = request.SerializeToString()
    return encoded


def _json(spans: list[tuple[bytes, dict[str, Any]]]) -> bytes:
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": k, "value": _any_json(v)} for k, v in _RESOURCE.items()]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id.hex(),
                                "spanId": span["id"].hex(),
                                **(
                                    {"parentSpanId": span["parent"].hex()} if span["parent"] else {}
                                ),
                                "name": span["name"],
                                "kind": span["kind"],
                                "startTimeUnixNano": str(span["start"]),
                                "endTimeUnixNano": str(span["end"]),
                                "attributes": [
                                    {"key": k, "value": _any_json(v)}
                                    for k, v in span["attributes"].items()
                                ],
                            }
                            for trace_id, span in spans
                        ]
                    }
                ],
            }
        ]
    }
    return json.dumps(document).encode()


def make_bodies(spans: int, batch: int, encoding: str) -> list[bytes]:
    """Return request bodies carrying ``spans`` spans (whole traces), ``batch`` per request."""
    start_ns = time.time_ns() - 3_600_000_000_000
    flat: list[tuple[bytes, dict[str, Any]]] = []
    for index in range(-(-spans // SPANS_PER_TRACE)):
        trace_id = secrets.token_bytes(16)
        flat.extend(
            (trace_id, span) for span in _trace_spans(trace_id, start_ns + index * 1_000_000)
        )
    flat = flat[:spans]
    encode = _protobuf if encoding == "protobuf" else _json
    return [encode(flat[at : at + batch]) for at in range(0, len(flat), batch)]


def _seed_warden(database_url: str) -> str:
    """Migrate a store; add the project, deployment, price and key the bench sends with."""
    from api.migrate import upgrade
    from governance.actors import Actor
    from governance.roles import Role
    from lineage import create_store_engine, session_scope
    from lineage.deployments import DeploymentCreate, record_deployment
    from lineage.model_versions import ModelVersionCreate, register_model_version
    from lineage.projects import create_project
    from monitors.traces.pricing import PriceCreate, add_price

    upgrade(database_url)
    engine = create_store_engine(database_url)
    system = Actor.system()
    try:
        with session_scope(engine) as session:
            project = create_project(session=session, name="bench")
            version = register_model_version(
                session=session,
                project_id=project.id,
                name="support-prompt",
                spec=ModelVersionCreate(
                    artifact_uri="prompts:/support/1", artifact_sha256="0" * 64
                ),
            )
            record_deployment(
                session=session,
                project_id=project.id,
                spec=DeploymentCreate(
                    name="support-bot",
                    environment="production",
                    model_name=version.name,
                    model_version=version.version,
                ),
            )
            add_price(
                session=session,
                project_id=project.id,
                spec=PriceCreate(
                    provider="openai",
                    model_pattern="gpt-4o-mini*",
                    input_nano_usd_per_mtok=150_000_000,
                    output_nano_usd_per_mtok=600_000_000,
                    valid_from=datetime(2020, 1, 1, tzinfo=UTC),
                ),
                created_by="bench",
            )
            key = service_key(
                session=session,
                actor=system,
                project_id=project.id,
                name="bench-exporter",
                role=Role.DATA_SCIENTIST,
            )
            return key
    finally:
        engine.dispose()


def _send(url: str, bodies: list[bytes], headers: dict[str, str]) -> float:
    """Post every body in turn; return the elapsed seconds. Every answer must be 200."""
    with httpx.Client(timeout=300) as client:
        started = time.perf_counter()
        for body in bodies:
            answer = client.post(url, content=body, headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:500]}")
            if b"rejected" in answer.content.lower():
                raise RuntimeError(f"{url} rejected spans: {answer.text[:500]}")
        return time.perf_counter() - started


def _count(path: Path, table: str) -> int | None:
    with closing(sqlite3.connect(path)) as connection:
        try:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
        except sqlite3.Error:
            return None


def run(spans: int, batch: int, repeat: int, folder: Path) -> dict[str, Any]:
    """Start both servers, send the same spans to each, return the figures."""
    warden_db, mlflow_db = folder / "warden.db", folder / "mlflow.db"
    key = _seed_warden(f"sqlite:///{warden_db}")
    warden_port, mlflow_port = free_port(), free_port()
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": f"sqlite:///{warden_db}",
        "WARDEN_DATA_DIR": str(folder / "warden-data"),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1])]),
    }
    warden = [
        sys.executable,
        "-c",
        "from api.cli import main; main()",
        "serve",
        "--port",
        str(warden_port),
    ]
    mlflow = [
        str(_BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{mlflow_db}",
        "--default-artifact-root",
        str(folder / "mlflow-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(mlflow_port),
        "--workers",
        "1",
    ]
    rates: dict[str, list[float]] = {}
    encodings = (("protobuf", "application/x-protobuf"), ("json", "application/json"))
    sent = repeat * len(encodings) * (spans + min(spans, 5 * batch))

    def measure(name: str, url: str, headers: dict[str, str]) -> None:
        for _ in range(repeat):
            for encoding, media in encodings:
                warm = make_bodies(min(spans, 5 * batch), batch, encoding)
                bodies = make_bodies(spans, batch, encoding)
                _send(url, warm, {**headers, "Content-Type": media})
                elapsed = _send(url, bodies, {**headers, "Content-Type": media})
                rates.setdefault(f"{name}_{encoding}", []).append(spans / elapsed)

    # One server at a time, so neither's background work slows the other's figure.
    with running(warden, env, folder / "warden.log"):
        warden_url = f"http://127.0.0.1:{warden_port}"
        wait_ready(f"{warden_url}/healthz", folder / "warden.log")
        measure("warden", f"{warden_url}/v1/traces", {"Authorization": f"Bearer {key}"})
    with running(mlflow, env, folder / "mlflow.log"):
        mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        wait_ready(f"{mlflow_url}/health", folder / "mlflow.log")
        created = httpx.post(
            f"{mlflow_url}/api/2.0/mlflow/experiments/create", json={"name": "bench"}, timeout=60
        )
        created.raise_for_status()
        experiment = created.json()["experiment_id"]
        measure("mlflow", f"{mlflow_url}/v1/traces", {"x-mlflow-experiment-id": experiment})
    figures: dict[str, Any] = {"spans": spans, "batch": batch, "repeat": repeat}
    for label, values in rates.items():
        figures[f"{label}_spans_per_s"] = round(statistics.median(values), 1)
    for encoding in ("protobuf", "json"):
        figures[f"ratio_{encoding}"] = round(
            figures[f"warden_{encoding}_spans_per_s"] / figures[f"mlflow_{encoding}_spans_per_s"],
            2,
        )
    figures["sent_spans_each"] = sent
    figures["warden_stored_spans"] = _count(warden_db, "monitors_trace_span")
    figures["mlflow_stored_spans"] = _count(mlflow_db, "spans")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=8_000, help="spans per timed run")
    parser.add_argument("--batch", type=int, default=200, help="spans per request")
    parser.add_argument("--repeat", type=int, default=3, help="runs per encoding (median)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="warden-otlp-bench-") as tmp:
        figures = run(args.spans, args.batch, args.repeat, Path(tmp))
    for encoding in ("protobuf", "json"):
        print(
            f"{encoding:>8}: Warden {figures[f'warden_{encoding}_spans_per_s']:>9,.0f} spans/s"
            f"   MLflow {figures[f'mlflow_{encoding}_spans_per_s']:>9,.0f} spans/s"
            f"   ratio {figures[f'ratio_{encoding}']:.2f}x"
        )
    print(
        f"stored: Warden {figures['warden_stored_spans']}, MLflow {figures['mlflow_stored_spans']}"
        f" (each was sent {figures['sent_spans_each']})"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
