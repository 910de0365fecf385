"""PII never reaches the store: a span with an e-mail, a phone and a card, byte-searched after."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from api.settings import Settings
from governance.roles import Role
from lineage.store import session_scope
from monitors.traces import TraceContent, TraceSpan
from tests.conftest import Issued
from tests.monitors.traces.conftest import make_llm_deployment, payload

MAIL = "jane.roe@example.org"
PHONE = "+44 20 7946 0958"
CARD = "4539 1488 0343 6467"  # Luhn-valid
NOT_A_CARD = "4539148803436468"  # 16 digits, fails Luhn: kept
RAW = [MAIL, PHONE, CARD, CARD.replace(" ", ""), "7946 0958", "jane.roe"]


def _with_pii(document: dict[str, Any]) -> dict[str, Any]:
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    question = f"I am {MAIL}, call me on {PHONE}; my card is {CARD} and my order {NOT_A_CARD}."
    messages = [{"role": "user", "parts": [{"type": "text", "content": question}]}]
    for attribute in span["attributes"]:
        if attribute["key"] == "gen_ai.input.messages":
            attribute["value"] = {"stringValue": json.dumps(messages)}
    span["attributes"].append({"key": "app.customer_email", "value": {"stringValue": MAIL}})
    span["attributes"].append({"key": "user.id", "value": {"stringValue": MAIL}})
    digits = CARD.replace(" ", "")
    span["attributes"].append({"key": "app.card", "value": {"intValue": digits}})
    span["attributes"].append({"key": "app.order", "value": {"intValue": NOT_A_CARD}})
    span["status"] = {"code": 2, "message": f"card {CARD} declined"}
    return document


def _every_row_as_text(engine: Engine) -> str:
    """Return every row of every table of a PostgreSQL store, each cast to text."""
    with engine.connect() as connection:
        tables = sa.inspect(connection).get_table_names()
        return "\n".join(
            str(value)
            for table in tables
            for value in connection.execute(
                sa.text(f'SELECT t::text FROM "{table}" t')  # noqa: S608 - names from our schema
            ).scalars()
        )


def _files(settings: Settings, engine: Engine) -> list[Path]:
    if engine.dialect.name == "postgresql":
        return [p for p in Path(settings.data_dir).rglob("*") if p.is_file()]
    engine.dispose()
    database = Path(str(make_url(str(settings.database_url)).database))
    found = [p for p in database.parent.glob(database.name + "*") if p.is_file()]
    found += [p for p in Path(settings.data_dir).rglob("*") if p.is_file()]
    return found


@pytest.mark.parametrize("mode", ["token", "hash"])
def test_pii_in_a_span_never_reaches_the_database_file_nor_the_data_directory(
    mode: str,
    client: TestClient,
    engine: Engine,
    settings: Settings,
    make_project: Callable[[str], Any],
    make_principal: Callable[..., Issued],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    make_llm_deployment(engine, make_project("acme"))
    writer = make_principal(role=Role.DATA_SCIENTIST, service=True)
    admin = make_principal(role=Role.ADMIN, name="ada")
    if mode == "hash":
        rules = client.put(
            "/api/v1/projects/acme/llm/redaction", json={"mode": "hash"}, headers=admin.headers
        )
        assert rules.status_code == 200, rules.text
    answer = client.post(
        "/v1/traces",
        content=json.dumps(_with_pii(payload("semconv"))),
        headers={"Content-Type": "application/json", **writer.headers},
    )
    assert answer.status_code == 200, answer.text
    with session_scope(engine) as session:
        span = session.exec(select(TraceSpan)).one()
        content = session.exec(select(TraceContent)).one()
        assert span.redactions == {"email": 3, "phone": 1, "credit_card": 3}
        assert span.attributes["app.order"] == int(NOT_A_CARD)  # not a card: kept as sent
        stored = json.dumps(content.input_messages)
        assert NOT_A_CARD in stored
        token = "[EMAIL:" if mode == "hash" else "[EMAIL]"
        assert token in stored
        assert span.user_id is not None
        assert span.user_id.startswith(token)
    for raw in RAW:
        assert raw not in caplog.text
    if engine.dialect.name == "postgresql":  # no database file here: read every row as text
        rows = _every_row_as_text(engine)
        assert "[EMAIL" in rows
        for raw in RAW:
            assert raw not in rows, f"{raw!r} found in a PostgreSQL row"
    files = _files(settings, engine)
    assert engine.dialect.name == "postgresql" or any(path.suffix == ".db" for path in files)
    for path in files:
        data = path.read_bytes()
        for raw in RAW:
            assert raw.encode() not in data, f"{raw!r} found in {path.name}"
            assert raw.encode("utf-16-le") not in data, f"{raw!r} (UTF-16) found in {path.name}"
