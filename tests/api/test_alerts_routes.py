from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from api.settings import Settings
from api.worker_process import send_due_deliveries
from governance.actors import Actor, PrincipalKind
from governance.audit import AuditEntry
from governance.channels import Channel
from governance.incidents import route_findings
from governance.roles import Role
from lineage import Project, session_scope
from monitors.findings import Finding, Status
from tests.conftest import Issued
from tests.governance.receivers import http_receiver

BASE = "/api/v1/projects/acme"
WORKER = Actor(principal_id=None, name="svc-worker", kind=PrincipalKind.SERVICE)


@pytest.fixture
def admin(make_principal: Callable[..., Issued]) -> dict[str, str]:
    return make_principal(role=Role.ADMIN, name="ada").headers


@pytest.fixture
def scientist(make_principal: Callable[..., Issued]) -> dict[str, str]:
    return make_principal(role=Role.DATA_SCIENTIST, name="sam").headers


@pytest.fixture
def viewer(make_principal: Callable[..., Issued]) -> dict[str, str]:
    return make_principal(role=Role.VIEWER, name="vic").headers


def audit_actions(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return list(session.exec(select(AuditEntry.action).order_by(col(AuditEntry.seq))).all())


def changes(engine: Engine) -> list[str]:
    """Return the audited actions that changed something (denials excluded)."""
    with session_scope(engine) as session:
        query = select(AuditEntry.action).where(AuditEntry.outcome != "denied")
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())


def stored_state(client: TestClient, reader: dict[str, str]) -> dict[str, Any]:
    """Return what the project's alerting holds, as a reader sees it."""
    return {
        path: client.get(BASE + path, headers=reader).json()
        for path in (
            "/alert-channels",
            "/alert-rules",
            "/incidents?state=all",
            "/outbound-allowlist",
        )
    }


def count_channels(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.exec(select(func.count()).select_from(Channel)).one())


def allow_loopback(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        f"{BASE}/outbound-allowlist",
        json={"target": "127.0.0.1", "note": "test receiver"},
        headers=admin,
    )
    assert response.status_code == 201, response.text


def fire(engine: Engine, run_id: str, status: Status = Status.ALERT) -> None:
    with session_scope(engine) as session:
        project = session.exec(select(Project).where(Project.name == "acme")).one()
        finding = Finding("drift", "drift_share", "dataset", 0.7, 0.5, status)
        route_findings(
            session=session,
            actor=WORKER,
            project_id=project.id,
            source_kind="monitor",
            source_id="m-1",
            run_id=run_id,
            findings=[finding],
        )


def setup_webhook(
    client: TestClient, admin: dict[str, str], scientist: dict[str, str], url: str
) -> dict[str, Any]:
    allow_loopback(client, admin)
    created = client.post(
        f"{BASE}/alert-channels",
        json={"kind": "webhook", "name": "ops", "url": url},
        headers=scientist,
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    rule = client.post(
        f"{BASE}/alert-rules",
        json={"name": "drift", "monitor_kinds": ["drift"], "channel_ids": [body["channel"]["id"]]},
        headers=scientist,
    )
    assert rule.status_code == 201, rule.text
    return body


def test_channel_rule_incident_delivery_round_trip(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    admin: dict[str, str],
    scientist: dict[str, str],
    viewer: dict[str, str],
) -> None:
    with http_receiver() as receiver:
        created = setup_webhook(client, admin, scientist, receiver.url + "/hook")
        secret = created["signing_secret"]
        assert secret.startswith("whsec_")
        channel_id = created["channel"]["id"]

        listed = client.get(f"{BASE}/alert-channels", headers=viewer).json()
        assert [c["name"] for c in listed] == ["ops"]
        assert secret not in json.dumps(listed)
        assert (
            "signing_secret"
            not in client.get(f"{BASE}/alert-channels/{channel_id}", headers=viewer).json()
        )

        for run in ("r1", "r2", "r3"):
            fire(engine, run)
        assert send_due_deliveries(settings, engine) == 1
        assert len(receiver.requests) == 1

        [incident] = client.get(f"{BASE}/incidents", headers=viewer).json()
        assert (incident["state"], incident["count"], incident["rule_name"]) == ("open", 3, "drift")

        [delivery] = client.get(f"{BASE}/deliveries", headers=viewer).json()
        assert (delivery["state"], delivery["event_type"]) == (
            "succeeded",
            "io.warden.incident.opened",
        )
        detail = client.get(f"{BASE}/deliveries/{delivery['id']}", headers=viewer).json()
        assert [a["outcome"] for a in detail["attempt_log"]] == ["succeeded"]

        resent = client.post(f"{BASE}/deliveries/{delivery['id']}/resend", headers=scientist)
        assert resent.status_code == 202, resent.text
        assert resent.json()["resent_from"] == delivery["id"]
        assert send_due_deliveries(settings, engine) == 1
        assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery["event_id"]] * 2

    acked = client.post(
        f"{BASE}/incidents/{incident['id']}/ack", json={"note": "on it"}, headers=scientist
    )
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == ("acknowledged", "sam")
    again = client.post(f"{BASE}/incidents/{incident['id']}/ack", headers=scientist)
    assert again.status_code == 409
    assert audit_actions(engine)[-6:] == [
        "outbound_allow.add",
        "alert_channel.create",
        "alert_rule.create",
        "incident.open",
        "delivery.resend",
        "incident.acknowledge",
    ]


def test_viewers_read_but_cannot_change_or_acknowledge(
    client: TestClient,
    engine: Engine,
    admin: dict[str, str],
    scientist: dict[str, str],
    viewer: dict[str, str],
) -> None:
    setup_webhook(client, admin, scientist, "http://127.0.0.1:9/hook")
    fire(engine, "r1")
    [incident] = client.get(f"{BASE}/incidents", headers=viewer).json()
    before, actions = stored_state(client, viewer), changes(engine)
    for method, path, body in [
        ("post", "/alert-channels", {"kind": "webhook", "name": "x", "url": "http://10.0.0.1/"}),
        ("post", f"/incidents/{incident['id']}/ack", None),
        ("post", f"/incidents/{incident['id']}/resolve", None),
        ("post", "/outbound-allowlist", {"target": "10.0.0.0/8"}),
    ]:
        response = client.request(method, BASE + path, json=body, headers=viewer)
        assert response.status_code == 403, (path, response.text)
    response = client.post(
        f"{BASE}/outbound-allowlist", json={"target": "10.0.0.0/8"}, headers=scientist
    )
    assert response.status_code == 403, "only project admins switch the guard off"
    assert stored_state(client, viewer) == before
    assert changes(engine) == actions


def test_a_refused_destination_is_a_422_naming_the_field_and_stores_nothing(
    client: TestClient, engine: Engine, scientist: dict[str, str]
) -> None:
    before = audit_actions(engine)
    for spec, field, words in [
        ({"kind": "webhook", "name": "a", "url": "http://127.0.0.1:8000/"}, "url", "loopback"),
        ({"kind": "slack", "name": "b", "url": "http://169.254.169.254/x"}, "url", "metadata"),
        (
            {
                "kind": "email",
                "name": "c",
                "smtp_host": "127.0.0.1",
                "sender": "w@example.org",
                "recipients": ["o@example.org"],
            },
            "smtp_host",
            "allow-list",
        ),
    ]:
        response = client.post(f"{BASE}/alert-channels", json=spec, headers=scientist)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["field"] == field
        assert words in problem["detail"]
    assert count_channels(engine) == 0
    assert audit_actions(engine) == before


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (
            {"kind": "webhook", "name": "a", "url": "http://10.0.0.1/", "id": "x"},
            "id",
            "not accepted",
        ),
        ({"kind": "pager", "name": "a"}, "kind", "'kind'"),
        (
            {"kind": "email", "name": "a", "smtp_host": "10.0.0.1", "sender": "nope"},
            "sender",
            "pattern",
        ),
    ],
)
def test_malformed_channels_are_refused(
    client: TestClient,
    engine: Engine,
    scientist: dict[str, str],
    spec: dict[str, Any],
    field: str,
    words: str,
) -> None:
    response = client.post(f"{BASE}/alert-channels", json=spec, headers=scientist)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert count_channels(engine) == 0


def test_rules_reject_channels_of_other_projects(
    client: TestClient,
    make_principal: Callable[..., Issued],
    admin: dict[str, str],
    scientist: dict[str, str],
) -> None:
    other = make_principal(role=Role.DATA_SCIENTIST, project="other", name="olga").headers
    created = client.post(
        "/api/v1/projects/other/alert-channels",
        json={"kind": "webhook", "name": "theirs", "url": "http://10.0.0.9/"},
        headers=other,
    )
    assert created.status_code == 201, created.text
    theirs = created.json()["channel"]["id"]
    response = client.post(
        f"{BASE}/alert-rules", json={"name": "r", "channel_ids": [theirs]}, headers=scientist
    )
    assert response.status_code == 422
    assert response.json()["field"] == "channel_ids"
    assert client.get(f"{BASE}/alert-rules", headers=scientist).json() == []
    assert client.get(f"{BASE}/alert-channels/{theirs}", headers=scientist).status_code == 404


def test_rules_and_channels_change_and_delete(
    client: TestClient, engine: Engine, admin: dict[str, str], scientist: dict[str, str]
) -> None:
    created = client.post(
        f"{BASE}/alert-channels",
        json={"kind": "slack", "name": "team", "url": "https://10.0.0.7/services/T/B/SECRET"},
        headers=scientist,
    ).json()
    assert created["signing_secret"] is None
    assert "SECRET" not in json.dumps(created)
    channel_id = created["channel"]["id"]
    rule = client.post(
        f"{BASE}/alert-rules", json={"name": "r", "channel_ids": [channel_id]}, headers=scientist
    ).json()
    changed = client.patch(
        f"{BASE}/alert-rules/{rule['id']}",
        json={"min_status": "warn", "metrics": ["accuracy"]},
        headers=scientist,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["min_status"], changed.json()["metrics"]) == ("warn", ["accuracy"])
    in_use = client.delete(f"{BASE}/alert-channels/{channel_id}", headers=scientist)
    assert in_use.status_code == 409
    assert "used by alert rules" in in_use.json()["detail"]
    assert client.get(f"{BASE}/alert-channels/{channel_id}", headers=scientist).status_code == 200
    assert client.delete(f"{BASE}/alert-rules/{rule['id']}", headers=scientist).status_code == 204
    off = client.patch(
        f"{BASE}/alert-channels/{channel_id}", json={"enabled": False}, headers=scientist
    )
    assert off.json()["enabled"] is False
    assert (
        client.delete(f"{BASE}/alert-channels/{channel_id}", headers=scientist).status_code == 204
    )
    assert client.get(f"{BASE}/alert-rules", headers=scientist).json() == []
    actions = audit_actions(engine)
    assert actions[-3:] == ["alert_rule.delete", "alert_channel.update", "alert_channel.delete"]


def test_a_test_message_reaches_the_receiver(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    admin: dict[str, str],
    scientist: dict[str, str],
) -> None:
    with http_receiver() as receiver:
        created = setup_webhook(client, admin, scientist, receiver.url)
        channel_id = created["channel"]["id"]
        queued = client.post(f"{BASE}/alert-channels/{channel_id}/test", headers=scientist)
        assert queued.status_code == 202, queued.text
        send_due_deliveries(settings, engine)
        [request] = receiver.requests
    assert json.loads(request.body)["type"] == "io.warden.test"


def test_resolving_by_hand_needs_incident_ack(
    client: TestClient,
    engine: Engine,
    admin: dict[str, str],
    scientist: dict[str, str],
) -> None:
    setup_webhook(client, admin, scientist, "http://127.0.0.1:9/hook")
    fire(engine, "r1")
    [incident] = client.get(f"{BASE}/incidents", headers=scientist).json()
    response = client.post(
        f"{BASE}/incidents/{incident['id']}/resolve", json={"note": "false alarm"}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "resolved"
    assert client.get(f"{BASE}/incidents?state=open", headers=scientist).json() == []
    missing = client.post(f"{BASE}/incidents/{uuid.uuid4()}/ack", headers=scientist)
    assert missing.status_code == 404


def test_the_allow_list_is_listed_and_removed(
    client: TestClient, engine: Engine, admin: dict[str, str], viewer: dict[str, str]
) -> None:
    allow_loopback(client, admin)
    [entry] = client.get(f"{BASE}/outbound-allowlist", headers=viewer).json()
    assert (entry["target"], entry["created_by"]) == ("127.0.0.1/32", "ada")
    bad = client.post(f"{BASE}/outbound-allowlist", json={"target": "::/0"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["field"] == "target"
    gone = client.delete(f"{BASE}/outbound-allowlist/{entry['id']}", headers=admin)
    assert gone.status_code == 204
    assert client.get(f"{BASE}/outbound-allowlist", headers=viewer).json() == []
    assert audit_actions(engine)[-2:] == ["outbound_allow.add", "outbound_allow.remove"]
