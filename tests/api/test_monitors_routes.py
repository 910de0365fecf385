from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from governance.roles import Role
from lineage import session_scope
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.projects import Project
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore
from monitors.run_jobs import register_monitor_handlers
from monitors.schedules import active_monitors
from tests.conftest import Issued

Make = Callable[..., Issued]
BASE = "/api/v1/projects/acme"
BODY: dict[str, Any] = {
    "name": "drift-hourly",
    "spec": {"kind": "drift", "columns": ["age", "hours-per-week"]},
    "schedule": {"interval_seconds": 3600},
    "window": "last:24h",
}


@pytest.fixture
def scientist(make_principal: Make) -> Issued:
    return make_principal(role=Role.DATA_SCIENTIST, project="acme")


@pytest.fixture
def viewer(make_principal: Make) -> Issued:
    return make_principal(role=Role.VIEWER, project="acme")


def _audit_actions(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        rows = session.execute(sa.text("SELECT action FROM governance_audit_entry ORDER BY seq"))
        return [row[0] for row in rows]


def _count(engine: Engine, table: str) -> int:
    with session_scope(engine) as session:
        query = sa.select(sa.func.count()).select_from(sa.table(table))
        return int(session.execute(query).scalar_one())


def test_create_list_change_pause_resume_are_audited(
    client: TestClient, engine: Engine, scientist: Issued
) -> None:
    created = client.post(f"{BASE}/monitors", json=BODY, headers=scientist.headers)
    assert created.status_code == 201, created.text
    monitor = created.json()
    assert monitor["kind"] == "drift"
    assert monitor["schedule"] == {"interval_seconds": 3600, "cron": None, "timezone": "UTC"}
    assert monitor["spec"]["columns"] == ["age", "hours-per-week"]
    url = f"{BASE}/monitors/{monitor['id']}"

    changed = client.patch(
        url,
        json={"schedule": {"cron": "0 6 * * *", "timezone": "Europe/Berlin"}},
        headers=scientist.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["schedule"]["cron"] == "0 6 * * *"
    assert client.post(f"{url}/pause", headers=scientist.headers).json()["paused"] is True
    assert client.post(f"{url}/resume", headers=scientist.headers).json()["paused"] is False

    listed = client.get(f"{BASE}/monitors", headers=scientist.headers).json()
    assert [m["name"] for m in listed] == ["drift-hourly"]
    assert _audit_actions(engine)[-4:] == [
        "monitor.create",
        "monitor.change",
        "monitor.pause",
        "monitor.resume",
    ]


def test_a_viewer_reads_but_cannot_write_or_run(
    client: TestClient, engine: Engine, scientist: Issued, viewer: Issued
) -> None:
    monitor = client.post(f"{BASE}/monitors", json=BODY, headers=scientist.headers).json()
    assert client.get(f"{BASE}/monitors", headers=viewer.headers).status_code == 200
    denied = client.post(f"{BASE}/monitors", json=BODY | {"name": "x"}, headers=viewer.headers)
    assert denied.status_code == 403
    assert "monitor:write" in denied.json()["detail"]
    run = client.post(f"{BASE}/monitors/{monitor['id']}/runs", headers=viewer.headers)
    assert run.status_code == 403
    assert "monitor:run" in run.json()["detail"]
    assert client.get(f"{BASE}/monitors").status_code == 401
    assert _count(engine, "monitors_monitor_run") == 0


def test_a_manual_run_is_queued_with_202_and_watchable_until_done(
    client: TestClient, engine: Engine, scientist: Issued, tmp_path: Path
) -> None:
    monitor = client.post(f"{BASE}/monitors", json=BODY, headers=scientist.headers).json()
    queued = client.post(f"{BASE}/monitors/{monitor['id']}/runs", headers=scientist.headers)
    assert queued.status_code == 202, queued.text
    run = queued.json()
    assert (run["state"], run["trigger"], run["progress"]) == ("queued", "manual", 0.0)
    assert queued.headers["location"] == f"{BASE}/monitor-runs/{run['id']}"
    assert "monitor.run" in _audit_actions(engine)

    assert Worker(
        engine=engine,
        registry=register_monitor_handlers(HandlerRegistry(), store=LocalStore(tmp_path)),
    ).run_once()
    done = client.get(f"{BASE}/monitor-runs/{run['id']}", headers=scientist.headers).json()
    assert (done["state"], done["progress"], done["attempts"]) == ("succeeded", 1.0, 1)
    assert done["summary"]["kind"] == "drift"
    assert done["summary"]["computed"] is False  # no inferences logged: nothing to judge
    logs = client.get(f"{BASE}/monitor-runs/{run['id']}/logs", headers=scientist.headers)
    assert "succeeded" in logs.text
    runs = client.get(f"{BASE}/monitors/{monitor['id']}/runs", headers=scientist.headers).json()
    assert [r["id"] for r in runs] == [run["id"]]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"window": "yesterday"}, "window", "last:<duration>"),
        ({"schedule": {"interval_seconds": 60, "cron": "* * * * *"}}, "schedule", "exactly one"),
        ({"schedule": {"cron": "0 6 * * *", "timezone": "Mars/Base"}}, "schedule.timezone", "IANA"),
        ({"spec": {"kind": "astrology"}}, "spec.kind", "drift"),
        ({"id": "00000000-0000-0000-0000-000000000000"}, "id", "not accepted"),
        ({"name": "Bad Name"}, "name", "pattern"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    client: TestClient,
    engine: Engine,
    scientist: Issued,
    change: dict[str, Any],
    field: str,
    message: str,
) -> None:
    response = client.post(f"{BASE}/monitors", json=BODY | change, headers=scientist.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field
    assert message in problem["detail"]
    assert _count(engine, "monitors_monitor") == 0


def test_unknown_deployment_and_duplicate_names_are_refused(
    client: TestClient, engine: Engine, scientist: Issued
) -> None:
    body = BODY | {"deployment_id": "00000000-0000-0000-0000-000000000001"}
    missing = client.post(f"{BASE}/monitors", json=body, headers=scientist.headers)
    assert missing.status_code == 422
    assert missing.json()["field"] == "deployment_id"
    assert client.post(f"{BASE}/monitors", json=BODY, headers=scientist.headers).status_code == 201
    again = client.post(f"{BASE}/monitors", json=BODY, headers=scientist.headers)
    assert again.status_code == 409
    assert "exists in this project" in again.json()["detail"]
    assert _count(engine, "monitors_monitor") == 1


def test_monitors_of_other_projects_stay_invisible(
    client: TestClient, scientist: Issued, make_principal: Make
) -> None:
    monitor = client.post(f"{BASE}/monitors", json=BODY, headers=scientist.headers).json()
    outsider = make_principal(role=Role.DATA_SCIENTIST, project="other")
    other = "/api/v1/projects/other"
    assert (
        client.get(f"{other}/monitors/{monitor['id']}", headers=outsider.headers).status_code == 404
    )
    run = client.post(f"{other}/monitors/{monitor['id']}/runs", headers=outsider.headers)
    assert run.status_code == 404
    assert client.get(f"{BASE}/monitors", headers=outsider.headers).status_code == 404


def test_an_empty_change_is_refused(client: TestClient, scientist: Issued) -> None:
    monitor = client.post(f"{BASE}/monitors", json=BODY, headers=scientist.headers).json()
    empty = client.patch(f"{BASE}/monitors/{monitor['id']}", json={}, headers=scientist.headers)
    assert empty.status_code == 422
    assert "nothing to change" in empty.json()["detail"]


def test_a_monitor_watches_a_deployment_of_its_project(
    client: TestClient,
    engine: Engine,
    scientist: Issued,
    make_project: Callable[[str], Project],
) -> None:
    project_id = make_project("acme").id
    digest = hashlib.sha256(b"model").hexdigest()
    with session_scope(engine) as session:
        register_model_version(
            session=session,
            project_id=project_id,
            name="income",
            spec=ModelVersionCreate(artifact_uri="x", artifact_sha256=digest),
        )
        deployment = record_deployment(
            session=session,
            project_id=project_id,
            spec=DeploymentCreate(
                name="api", environment="prod", model_name="income", model_version="1"
            ),
        )
    body = BODY | {"deployment_id": str(deployment.id)}
    created = client.post(f"{BASE}/monitors", json=body, headers=scientist.headers)
    assert created.status_code == 201, created.text
    assert created.json()["deployment_id"] == str(deployment.id)

    # By name, as `…/predict` addresses it: the deployment live in the slot `?environment=`.
    named = BODY | {"name": "by-name", "deployment_id": "api"}
    in_prod = client.post(
        f"{BASE}/monitors", params={"environment": "prod"}, json=named, headers=scientist.headers
    )
    assert in_prod.status_code == 201, in_prod.text
    assert in_prod.json()["deployment_id"] == str(deployment.id)
    before = _count(engine, "monitors_monitor")
    nowhere = client.post(  # nothing is live under `api` in production (the default)
        f"{BASE}/monitors", json=named | {"name": "nowhere"}, headers=scientist.headers
    )
    assert nowhere.status_code == 422
    assert nowhere.json()["field"] == "deployment_id"
    assert "nothing is live under deployment 'api' in 'production'" in nowhere.json()["detail"]
    assert _count(engine, "monitors_monitor") == before


def test_a_monitor_without_a_schedule_runs_only_on_request(
    client: TestClient, engine: Engine, scientist: Issued
) -> None:
    body = {k: v for k, v in BODY.items() if k != "schedule"} | {"name": "on-request"}
    created = client.post(f"{BASE}/monitors", json=body, headers=scientist.headers)
    assert created.status_code == 201, created.text
    monitor = created.json()
    assert monitor["schedule"] is None
    with session_scope(engine) as session:
        assert active_monitors(session=session) == []
    queued = client.post(f"{BASE}/monitors/{monitor['id']}/runs", headers=scientist.headers)
    assert queued.status_code == 202, queued.text
    assert queued.json()["message"].startswith("waiting for a worker")
    url = f"{BASE}/monitors/{monitor['id']}"
    scheduled = client.patch(
        url, json={"schedule": {"interval_seconds": 60}}, headers=scientist.headers
    )
    assert scheduled.json()["schedule"]["interval_seconds"] == 60
    with session_scope(engine) as session:
        assert [m.name for m in active_monitors(session=session)] == ["on-request"]
    unscheduled = client.patch(url, json={"schedule": None}, headers=scientist.headers)
    assert unscheduled.status_code == 200, unscheduled.text
    assert unscheduled.json()["schedule"] is None
    with session_scope(engine) as session:
        assert active_monitors(session=session) == []
