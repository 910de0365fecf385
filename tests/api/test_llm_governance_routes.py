"""Prices and redaction rules over HTTP: admin-only changes, audited; the preview stores nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from governance.audit import AuditEntry
from governance.roles import Role
from lineage import session_scope
from monitors.traces.controls import RedactionSettings
from tests.conftest import Issued

BASE = "/api/v1/projects/acme/llm"
CARD = "4111 1111 1111 1111"
MAIL = "jane.roe@example.org"


@pytest.fixture
def admin(make_principal: Callable[..., Issued]) -> dict[str, str]:
    return make_principal(role=Role.ADMIN, name="ada").headers


@pytest.fixture
def viewer(make_principal: Callable[..., Issued]) -> dict[str, str]:
    return make_principal(role=Role.VIEWER, name="vic").headers


_SETUP = ("principal.", "role.", "api_key.", "project.")


def audit(engine: Engine) -> list[AuditEntry]:
    """Return the audit entries after the fixtures' own (principals, roles, keys)."""
    with session_scope(engine) as session:
        rows = [
            row
            for row in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
            if not row.action.startswith(_SETUP)
        ]
        for row in rows:
            session.expunge(row)
        return list(rows)


def _price(**changes: Any) -> dict[str, Any]:
    return {
        "provider": "openai",
        "model_pattern": "gpt-4o*",
        "input_nano_usd_per_mtok": 2_500_000_000,
        "output_nano_usd_per_mtok": 10_000_000_000,
        "valid_from": "2026-01-01T00:00:00Z",
    } | changes


def test_an_admin_adds_and_closes_prices_and_each_change_is_audited(
    client: TestClient, admin: dict[str, str], viewer: dict[str, str], engine: Engine
) -> None:
    first = client.post(f"{BASE}/prices", json=_price(), headers=admin)
    assert first.status_code == 201, first.text
    second = client.post(
        f"{BASE}/prices",
        json=_price(input_nano_usd_per_mtok=2_000_000_000, valid_from="2026-02-01T00:00:00Z"),
        headers=admin,
    )
    assert second.status_code == 201, second.text
    listed = client.get(f"{BASE}/prices", headers=viewer).json()
    assert [(p["valid_from"][:10], p["valid_to"] and p["valid_to"][:10]) for p in listed] == [
        ("2026-01-01", "2026-02-01"),
        ("2026-02-01", None),
    ]
    valid_then = client.get(f"{BASE}/prices?at=2026-01-15T00:00:00Z", headers=viewer).json()
    assert [p["id"] for p in valid_then] == [first.json()["id"]]
    closed = client.post(
        f"{BASE}/prices/{second.json()['id']}/close",
        json={"valid_to": "2026-03-01T00:00:00Z"},
        headers=admin,
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["valid_to"].startswith("2026-03-01")
    entries = [e for e in audit(engine) if e.action.startswith("price.")]
    assert [e.action for e in entries] == ["price.create", "price.create", "price.close"]
    assert entries[1].detail_object()["closed"] == first.json()["id"]
    assert entries[0].actor_name == "ada"


def test_a_viewer_cannot_change_prices_or_rules_and_the_denial_is_audited(
    client: TestClient, viewer: dict[str, str], engine: Engine
) -> None:
    assert client.post(f"{BASE}/prices", json=_price(), headers=viewer).status_code == 403
    assert client.put(f"{BASE}/redaction", json={"mode": "hash"}, headers=viewer).status_code == 403
    preview = client.post(f"{BASE}/redaction/preview", json={"text": MAIL}, headers=viewer)
    assert preview.status_code == 403
    assert client.get(f"{BASE}/prices", headers=viewer).json() == []
    assert [e.outcome for e in audit(engine)] == ["denied", "denied", "denied"]


def test_bad_prices_are_problems_naming_the_field(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(
        f"{BASE}/prices", json=_price(output_nano_usd_per_mtok=-5), headers=admin
    )
    assert response.status_code == 422
    assert response.json()["field"] == "output_nano_usd_per_mtok"
    assert client.post(f"{BASE}/prices", json=_price(), headers=admin).status_code == 201
    overlap = client.post(
        f"{BASE}/prices", json=_price(valid_from="2025-12-01T00:00:00Z"), headers=admin
    )
    assert overlap.status_code == 409
    assert overlap.json()["field"] == "valid_from"


def test_preview_redacts_with_the_project_rules_and_stores_nothing(
    client: TestClient, admin: dict[str, str], engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    text = f"reach {MAIL} or pay with {CARD}; EMP-123456"
    response = client.post(f"{BASE}/redaction/preview", json={"text": text}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "text": "reach [EMAIL] or pay with [CREDIT_CARD]; EMP-123456",
        "counts": {"email": 1, "credit_card": 1},
    }
    rules = {
        "mode": "hash",
        "disabled": ["credit_card"],
        "patterns": [{"name": "employee_id", "pattern": r"EMP-\d{6}"}],
    }
    changed = client.put(f"{BASE}/redaction", json=rules, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["disabled"] == ["credit_card"]
    response = client.post(f"{BASE}/redaction/preview", json={"text": text}, headers=admin)
    redacted = response.json()["text"]
    assert redacted.startswith("reach [EMAIL:")
    assert f"or pay with {CARD}; [EMPLOYEE_ID:" in redacted
    assert "EMP-123456" not in redacted
    assert response.json()["counts"] == {"email": 1, "employee_id": 1}
    assert MAIL not in caplog.text
    assert CARD not in caplog.text
    with session_scope(engine) as session:
        row = session.exec(select(RedactionSettings)).one()
        assert row.sealed_key is not None
        assert "hash_key" not in row.sealed_key  # sealed, not in clear
    entries = [e for e in audit(engine) if e.outcome == "success"]
    assert [e.action for e in entries] == ["redaction.change"]
    assert entries[0].detail_object()["after"]["mode"] == "hash"
    assert "key" not in entries[0].detail


def test_hashes_are_stable_for_a_project_across_rule_changes(
    client: TestClient, admin: dict[str, str]
) -> None:
    client.put(f"{BASE}/redaction", json={"mode": "hash"}, headers=admin)
    first = client.post(f"{BASE}/redaction/preview", json={"text": MAIL}, headers=admin).json()
    client.put(f"{BASE}/redaction", json={"mode": "token"}, headers=admin)
    client.put(f"{BASE}/redaction", json={"mode": "hash"}, headers=admin)
    again = client.post(f"{BASE}/redaction/preview", json={"text": MAIL}, headers=admin).json()
    assert first == again


def test_bad_rules_are_refused_naming_the_pattern_and_change_nothing(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    secretish = "(sk-live-abc"
    response = client.put(
        f"{BASE}/redaction",
        json={
            "patterns": [{"name": "ok", "pattern": "abc"}, {"name": "bad", "pattern": secretish}]
        },
        headers=admin,
    )
    assert response.status_code == 422
    assert response.json()["field"] == "patterns.1.pattern"
    assert secretish not in response.text
    unknown = client.put(f"{BASE}/redaction", json={"disabled": ["postcode"]}, headers=admin)
    assert unknown.status_code == 422
    assert unknown.json()["field"].startswith("disabled")
    assert client.get(f"{BASE}/redaction", headers=admin).json()["updated_at"] is None
    assert [e.action for e in audit(engine)] == []


def test_an_oversized_preview_is_refused_without_echoing_it(
    client: TestClient, admin: dict[str, str]
) -> None:
    text = MAIL + " " + "x" * 100_001
    response = client.post(f"{BASE}/redaction/preview", json={"text": text}, headers=admin)
    assert response.status_code in {413, 422}
    assert MAIL not in response.text
