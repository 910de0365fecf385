"""The worker process sends due alert deliveries on its own, beside its claim loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.settings import Settings
from api.worker_process import run_worker
from governance.actors import Actor
from governance.incidents import route_findings
from governance.roles import Role
from lineage import Project, session_scope
from monitors.findings import Finding, Status
from tests.conftest import Issued
from tests.governance.receivers import http_receiver

BASE = "/api/v1/projects/acme"


def test_a_running_worker_delivers_an_opened_incident_without_being_asked(
    client: TestClient, engine: Engine, settings: Settings, make_principal: Callable[..., Issued]
) -> None:
    admin = make_principal(role=Role.ADMIN).headers
    scientist = make_principal(role=Role.DATA_SCIENTIST).headers
    allowed = client.post(f"{BASE}/outbound-allowlist", json={"target": "127.0.0.1"}, headers=admin)
    assert allowed.status_code == 201, allowed.text
    with http_receiver() as receiver:
        channel = client.post(
            f"{BASE}/alert-channels",
            json={"kind": "webhook", "name": "ops", "url": receiver.url + "/hook"},
            headers=scientist,
        ).json()["channel"]
        rule = client.post(
            f"{BASE}/alert-rules",
            json={"name": "drift", "channel_ids": [channel["id"]]},
            headers=scientist,
        )
        assert rule.status_code == 201, rule.text
        with session_scope(engine) as session:
            project = session.exec(select(Project).where(Project.name == "acme")).one()
            route_findings(
                session=session,
                actor=Actor.system(),
                project_id=project.id,
                source_kind="monitor",
                source_id="m-1",
                run_id="run-1",
                findings=[Finding("drift", "drift_share", "dataset", 0.7, 0.5, Status.ALERT)],
            )
        stop = threading.Event()
        worker = threading.Thread(target=run_worker, args=(settings, engine, stop))
        worker.start()
        try:
            deadline = time.monotonic() + 30
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            worker.join(timeout=30)
        assert not worker.is_alive()
        assert len(receiver.requests) == 1
    [delivery] = client.get(f"{BASE}/deliveries", headers=scientist).json()
    assert delivery["state"] == "succeeded"
