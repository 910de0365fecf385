"""Evaluation datasets over HTTP: versions from JSON, JSONL, CSV and traces; frozen stays frozen."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from governance.audit import AuditEntry
from governance.roles import Role
from lineage.projects import Project
from lineage.store import session_scope
from retrain.eval_datasets import EvalRecord, freeze_version, get_dataset, get_version
from tests.conftest import Issued
from tests.monitors.traces.conftest import make_llm_deployment, otlp_span, store_spans

BASE = "/api/v1/projects/acme/evaluation/datasets"


@pytest.fixture
def author(make_principal: Callable[..., Issued]) -> dict[str, str]:
    return make_principal(role=Role.DATA_SCIENTIST, name="dana").headers


def _records(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.exec(select(func.count()).select_from(EvalRecord)).one())


def test_versions_from_json_jsonl_and_csv_are_numbered_and_audited(
    client: TestClient, author: dict[str, str], engine: Engine
) -> None:
    created = client.post(BASE, json={"name": "faq", "description": "support FAQ"}, headers=author)
    assert created.status_code == 201, created.text
    first = client.post(
        f"{BASE}/faq/versions",
        json={
            "records": [
                {
                    "inputs": {"question": "What is the capital of France?"},
                    "expected_response": "Paris",
                    "facts": ["Paris"],
                }
            ]
        },
        headers=author,
    )
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1
    jsonl = "\n".join(
        json.dumps({"inputs": {"question": q}, "expected_response": a})
        for q, a in [("2 + 2?", "4"), ("Largest ocean?", "Pacific")]
    )
    second = client.post(
        f"{BASE}/faq/versions/upload",
        files={"file": ("more.jsonl", jsonl.encode(), "application/x-ndjson")},
        data={"base_version": "1"},
        headers=author,
    )
    assert second.status_code == 201, second.text
    assert (second.json()["version"], second.json()["record_count"]) == (2, 3)
    csv_text = 'question,tone,expected_response,facts\n"Hi?",warm,Hello,"[""Hello""]"\n'
    third = client.post(
        f"{BASE}/faq/versions/upload",
        files={"file": ("faq.csv", csv_text.encode(), "text/csv")},
        headers=author,
    )
    assert third.status_code == 201, third.text
    read = client.get(f"{BASE}/faq/versions/3", headers=author).json()
    assert read["records"] == [
        {
            "position": 0,
            "inputs": {"question": "Hi?", "tone": "warm"},
            "expected_response": "Hello",
            "facts": ["Hello"],
            "guidelines": [],
            "context": None,
            "source_trace_id": None,
        }
    ]
    listed = client.get(f"{BASE}/faq", headers=author).json()
    assert [v["version"] for v in listed["versions"]] == [3, 2, 1]
    with session_scope(engine) as session:
        actions = session.exec(
            select(AuditEntry.action).where(col(AuditEntry.action).startswith("eval_dataset."))
        ).all()
    assert actions == ["eval_dataset.create"] + ["eval_dataset.version"] * 3


def test_a_frozen_version_refuses_records(
    client: TestClient,
    author: dict[str, str],
    engine: Engine,
    make_project: Callable[[str], Project],
) -> None:
    client.post(BASE, json={"name": "faq"}, headers=author)
    client.post(f"{BASE}/faq/versions", json={"records": [{"inputs": {"q": "a"}}]}, headers=author)
    more = client.post(
        f"{BASE}/faq/versions/1/records", json={"records": [{"inputs": {"q": "b"}}]}, headers=author
    )
    assert more.status_code == 200, more.text
    assert more.json()["record_count"] == 2
    with session_scope(engine) as session:
        dataset = get_dataset(session=session, project_id=make_project("acme").id, name="faq")
        frozen = freeze_version(
            session=session, version=get_version(session=session, dataset=dataset, version=1)
        )
        digest = frozen.content_sha256
    refused = client.post(
        f"{BASE}/faq/versions/1/records", json={"records": [{"inputs": {"q": "c"}}]}, headers=author
    )
    assert refused.status_code == 409
    assert "frozen" in refused.json()["detail"]
    assert refused.json()["field"] == "version"
    assert _records(engine) == 2
    read = client.get(f"{BASE}/faq/versions/1", headers=author).json()
    assert read["content_sha256"] == digest
    assert len(digest or "") == 64


@pytest.mark.parametrize(
    ("name", "content", "field"),
    [
        ("x.jsonl", b'{"inputs": {"q": 1}}\nnot json\n', "file.line 2"),
        ("x.jsonl", b'{"inputs": {"q": 1}, "extra": true}\n', "line 1.extra"),
        ("x.csv", b"question,facts\nhi,[1]\n", "row 2.facts"),
        ("x.txt", b"hello", "file"),
        ("x.jsonl", b"\xff\xfe", "file"),
        ("x.jsonl", b"\n\n", "file"),
    ],
)
def test_a_bad_upload_is_a_422_naming_the_line_and_stores_nothing(
    client: TestClient,
    author: dict[str, str],
    engine: Engine,
    name: str,
    content: bytes,
    field: str,
) -> None:
    client.post(BASE, json={"name": "faq"}, headers=author)
    answer = client.post(
        f"{BASE}/faq/versions/upload", files={"file": (name, content)}, headers=author
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    assert _records(engine) == 0
    assert client.get(f"{BASE}/faq", headers=author).json()["versions"] == []


def test_records_copied_from_traces_are_redacted_again(
    client: TestClient,
    author: dict[str, str],
    engine: Engine,
    make_project: Callable[[str], Project],
) -> None:
    deployment = make_llm_deployment(engine, make_project("acme"))
    messages = [{"role": "user", "content": "My card is 4111 1111 1111 1111, is it blocked?"}]
    answer = [{"role": "assistant", "content": "Yes, write to help@example.com."}]
    store_spans(
        engine,
        deployment,
        [
            otlp_span(
                "a",
                "1",
                None,
                0,
                40,
                **{
                    "gen_ai.operation.name": "chat",
                    "gen_ai.input.messages": json.dumps(messages),
                    "gen_ai.output.messages": json.dumps(answer),
                },
            )
        ],
    )
    client.post(BASE, json={"name": "from-prod"}, headers=author)
    created = client.post(
        f"{BASE}/from-prod/versions/from-traces", json={"trace_ids": ["a" * 32]}, headers=author
    )
    assert created.status_code == 201, created.text
    (record,) = client.get(f"{BASE}/from-prod/versions/1", headers=author).json()["records"]
    assert record["inputs"] == {"input": "My card is [CREDIT_CARD], is it blocked?"}
    assert record["expected_response"] == "Yes, write to [EMAIL]."
    assert record["source_trace_id"] == "a" * 32
    missing = client.post(
        f"{BASE}/from-prod/versions/from-traces", json={"trace_ids": ["b" * 32]}, headers=author
    )
    assert missing.status_code == 404


def test_a_viewer_reads_but_cannot_write(
    client: TestClient, author: dict[str, str], make_principal: Callable[..., Issued]
) -> None:
    viewer = make_principal(role=Role.VIEWER, name="vic").headers
    client.post(BASE, json={"name": "faq"}, headers=author)
    assert client.get(BASE, headers=viewer).status_code == 200
    assert client.post(BASE, json={"name": "other"}, headers=viewer).status_code == 403


@pytest.mark.parametrize("version", [0, 2**31])
def test_a_version_number_outside_sql_integer_is_a_422_naming_it(
    client: TestClient, author: dict[str, str], engine: Engine, version: int
) -> None:
    # PostgreSQL's INTEGER is 32-bit: 2**31 reached the driver and overflowed (a 500) there.
    client.post(BASE, json={"name": "faq"}, headers=author)
    answer = client.post(
        f"{BASE}/faq/versions/{version}/records",
        json={"records": [{"inputs": {"question": "hi"}}]},
        headers=author,
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in answer.json()["errors"]] == ["version"], answer.text
    assert _records(engine) == 0
    read = client.get(f"{BASE}/faq/versions/{version}", headers=author)
    assert read.status_code == 422, read.text
