"""Budgets over HTTP: created, read with their spend, changed and deleted; each change audited."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from governance.actors import Actor
from governance.audit import AuditEntry
from governance.budgets import Budget, BudgetUpdate, update_budget
from governance.roles import Role
from lineage import session_scope
from tests.conftest import Issued

BASE = "/api/v1/projects/acme/budgets"
BODY = {
    "name": "bot-monthly",
    "scope": {"deployment": "support-bot"},
    "period": "monthly",
    "limit_usd": 250.0,
    "warn_at": [0.9, 0.5],
}


@pytest.fixture
def admin(make_principal: Callable[..., Issued]) -> dict[str, str]:
    return make_principal(role=Role.ADMIN, name="ada").headers


@pytest.fixture
def viewer(make_principal: Callable[..., Issued]) -> dict[str, str]:
    return make_principal(role=Role.VIEWER, name="vic").headers


def _actions(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        return [row.action for row in rows if row.action.startswith("budget.")]


def test_a_budget_is_created_read_changed_and_deleted_with_audit(
    client: TestClient, admin: dict[str, str], viewer: dict[str, str], engine: Engine
) -> None:
    made = client.post(BASE, json=BODY, headers=admin)
    assert made.status_code == 201, made.text
    budget = made.json()
    assert budget["warn_at"] == [0.5, 0.9]
    assert budget["spend_usd"] == 0.0
    assert budget["over_budget"] is False
    assert budget["window_start"].endswith("01T00:00:00Z")
    listed = client.get(BASE, headers=viewer)
    assert [b["name"] for b in listed.json()] == ["bot-monthly"]
    assert client.post(BASE, json=BODY, headers=viewer).status_code == 403
    again = client.post(BASE, json=BODY, headers=admin)
    assert again.status_code == 409
    changed = client.patch(f"{BASE}/{budget['id']}", json={"limit_usd": 100}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["limit_usd"] == 100.0
    assert client.delete(f"{BASE}/{budget['id']}", headers=admin).status_code == 204
    assert client.get(f"{BASE}/{budget['id']}", headers=viewer).status_code == 404
    assert _actions(engine) == ["budget.create", "budget.update", "budget.delete"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"warn_at": [1.5]}, "warn_at"),
        ({"limit_usd": 0}, "limit_usd"),
        ({"period": "hourly"}, "period"),
        ({"scope": {"deployment": "a", "prompt": "b"}}, "scope"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_budget_is_a_422_naming_the_field_and_stores_nothing(
    client: TestClient,
    admin: dict[str, str],
    engine: Engine,
    change: dict[str, object],
    field: str,
) -> None:
    answer = client.post(BASE, json=BODY | change, headers=admin)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text
    with session_scope(engine) as session:
        assert session.exec(select(Budget)).first() is None
    assert _actions(engine) == []


def test_an_empty_change_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    budget = client.post(BASE, json=BODY, headers=admin).json()
    answer = client.patch(f"{BASE}/{budget['id']}", json={}, headers=admin)
    assert answer.status_code == 422
    assert "nothing to change" in answer.text


def test_a_change_is_stored_audited_with_before_and_after_and_seen_by_a_session_holding_it(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    budget = client.post(BASE, json=BODY, headers=admin).json()
    with session_scope(engine) as holder:
        held = holder.get(Budget, uuid.UUID(budget["id"]))
        assert held is not None
        assert held.limit_nano_usd == 250 * 10**9
        patched = update_budget(
            session=holder,
            project_id=held.project_id,
            budget_id=held.id,
            changes=BudgetUpdate(limit_usd=80, warn_at=[0.7]),
            actor=Actor.system(),
        )
        assert held.limit_nano_usd == 80 * 10**9  # the held copy was expired, not left stale
        assert patched is not held
        assert patched.warn_at == [0.7]
    changed = client.patch(f"{BASE}/{budget['id']}", json={"warn_at": [0.25]}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["limit_usd"], changed.json()["warn_at"]) == (80.0, [0.25])
    assert changed.json()["updated_at"] > budget["updated_at"]
    read = client.get(f"{BASE}/{budget['id']}", headers=admin).json()
    assert (read["limit_usd"], read["warn_at"]) == (80.0, [0.25])
    with session_scope(engine) as session:
        entries = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "budget.update")
            .order_by(col(AuditEntry.seq))
        ).all()
        details = [json.loads(entry.detail) for entry in entries]
    assert [
        (d["before"]["limit_usd"], d["after"]["limit_usd"], d["after"]["warn_at"]) for d in details
    ] == [
        (250.0, 80.0, [0.7]),
        (80.0, 80.0, [0.25]),
    ]


def test_a_budget_of_another_project_cannot_be_changed_through_this_one(
    client: TestClient, make_principal: Callable[..., Issued], engine: Engine
) -> None:
    theirs = make_principal(role=Role.ADMIN, project="globex").headers
    ours = make_principal(role=Role.ADMIN, project="acme").headers
    made = client.post("/api/v1/projects/globex/budgets", json=BODY, headers=theirs).json()
    answer = client.patch(f"{BASE}/{made['id']}", json={"limit_usd": 1}, headers=ours)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    with session_scope(engine) as session:
        stored = session.get(Budget, uuid.UUID(made["id"]))
        assert stored is not None
        assert stored.limit_nano_usd == 250 * 10**9
    assert _actions(engine) == ["budget.create"]
