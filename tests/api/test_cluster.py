"""Done-when test of issue 20: a loopback cluster on PostgreSQL.

Two API replicas (``warden serve``), two schedulers and two workers run as separate processes on
127.0.0.1 against one PostgreSQL database, one data directory (its ``keys/``) and one S3 bucket
(moto's server). Requests alternate between the replicas; both take writes, some at the same
time; a dashboard session opened on one replica works and ends on the other. Four monitors fire
every second while one worker is SIGKILLed mid-job and, later, the leading scheduler: every slot
still runs to completion exactly once, the killed job is finished by the other worker, and the
audit chain verifies with exactly the entries the test caused.

Monitor runs go through ``tests.api.marker_handlers`` (what is checked is the queue and the
schedule, not monitor statistics); the report render is the real handler, writing to the bucket.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.settings import Settings
from api.store import attach_audit_signer
from governance.actors import Actor
from governance.audit import AuditEntry
from governance.identity import create_person
from governance.roles import Role, grant_role
from lineage import session_scope, utcnow
from lineage.runtime.lease import current_leader
from monitors.models import Monitor, MonitorRunPublic
from monitors.run_jobs import read_runs
from tests.api.processes import Processes, free_port, marks, wait_for
from tests.conftest import POSTGRES_URL, Issued, bearer
from tests.s3 import ACCESS_KEY, SECRET_KEY, create_bucket, moto_server

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)"),
]

BUCKET = "warden-cluster"
PASSWORD = "a long enough password"
MONITORS = 4  # each fires every second: 20+ slots within a few seconds
PAUSED = 10  # monitors created at the same time through both replicas (concurrent audit writes)
EVERY = 4  # a signed audit checkpoint every 4 entries, so both replicas write some
# Leases in seconds (heartbeats every 0.25 s): short, yet long enough that a busy runner never
# lets a live worker's lease lapse (its job would then legitimately run twice).
SCHEDULER_LEASE = 2
WORKER_LEASE = 3
TIMEOUT = 60  # bound of each wait: generous for a busy runner, free on a quiet one


class Replicas:
    """One HTTP client (one cookie jar) whose requests alternate between the API replicas."""

    def __init__(self, ports: list[int], key: str) -> None:
        self.urls = [f"http://127.0.0.1:{port}" for port in ports]
        self.http = httpx.Client(timeout=30)
        self.key = key
        self.turn = itertools.cycle(range(len(ports)))
        self.served: Counter[int] = Counter()

    def request(
        self, method: str, path: str, *, replica: int | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send to ``replica``, or to the next replica in turn; API paths carry the key."""
        index = next(self.turn) if replica is None else replica
        if path.startswith("/api/"):
            kwargs["headers"] = {**bearer(self.key), **kwargs.get("headers", {})}
        self.served[index] += 1
        return self.http.request(method, self.urls[index] + path, **kwargs)

    def close(self) -> None:
        """Close the connections, so the replicas stop without waiting on them."""
        self.http.close()

    def healthy(self) -> bool:
        """Return whether every replica answers ``/healthz``."""
        try:
            return all(self.http.get(f"{url}/healthz").status_code == 200 for url in self.urls)
        except httpx.HTTPError:
            return False


@pytest.fixture
def bucket() -> Iterator[str]:
    """Yield the endpoint of a moto S3 server holding the (empty) bucket."""
    with moto_server() as endpoint:
        create_bucket(endpoint, BUCKET)
        yield endpoint


@pytest.fixture
def cluster_env(database_url: str, tmp_path: Path, bucket: str) -> dict[str, str]:
    """Return the environment every process of the cluster shares."""
    return {
        "WARDEN_DATABASE_URL": database_url,
        "WARDEN_DATA_DIR": str(tmp_path / "data"),
        "WARDEN_ARTIFACT_URL": f"s3://{BUCKET}/artifacts",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": bucket,
        "WARDEN_AUDIT_CHECKPOINT_EVERY": str(EVERY),
        "WARDEN_SCHEDULER_HEARTBEAT_SECONDS": "0.25",
        "WARDEN_SCHEDULER_LEASE_SECONDS": str(SCHEDULER_LEASE),
        "WARDEN_SCHEDULER_SYNC_SECONDS": "1",
        "WARDEN_WORKER_POLL_SECONDS": "0.1",
        "WARDEN_WORKER_HEARTBEAT_SECONDS": "0.25",
        "WARDEN_WORKER_LEASE_SECONDS": str(WORKER_LEASE),
        "WARDEN_WORKER_RETRY_DELAY_SECONDS": "0",
        "WARDEN_WORKER_HANDLERS": json.dumps(
            {"monitor_run": "tests.api.marker_handlers:slow_marker"}
        ),
    }


@pytest.fixture
def processes(tmp_path: Path, cluster_env: dict[str, str]) -> Iterator[Processes]:
    started = Processes(tmp_path, cluster_env)
    try:
        yield started
    finally:
        started.stop_all()


def _runs(engine: Engine) -> list[MonitorRunPublic]:
    with session_scope(engine) as session:
        monitor_ids = session.exec(select(Monitor.id)).all()
        return read_runs(session=session, monitor_ids=monitor_ids, newest_first=False)


def _leader_pid(engine: Engine) -> int | None:
    with session_scope(engine) as session:
        holder = current_leader(session=session, name="scheduler")
    return None if holder is None else int(holder.split(":")[1])


def _audit_actions(engine: Engine) -> Counter[str]:
    with session_scope(engine) as session:
        return Counter(session.exec(select(AuditEntry.action)).all())


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def _monitor(name: str, *, paused: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "spec": {"kind": "drift"},
        "schedule": {"interval_seconds": 1},
        "window": "last:10s",
        "paused": paused,
    }


def test_a_loopback_cluster_on_postgresql(
    engine: Engine,
    make_principal: Any,
    make_project: Any,
    processes: Processes,
    cluster_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    data_dir = Path(cluster_env["WARDEN_DATA_DIR"])
    # Entries written here are checkpointed on the cluster's schedule, with the cluster's key.
    attach_audit_signer(engine, Settings(data_dir=data_dir, audit_checkpoint_every=EVERY))
    project = make_project("credit")
    admin: Issued = make_principal(admin=True, name="ops")
    with session_scope(engine) as session:
        dana = create_person(session=session, actor=Actor.system(), name="dana", password=PASSWORD)
        grant_role(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            principal_id=dana.id,
            role=Role.DATA_SCIENTIST,
        )
    before = _audit_actions(engine)

    ports = [free_port(), free_port()]
    for port in ports:
        processes.start("serve", "--port", str(port))
    schedulers = [processes.start("scheduler") for _ in range(2)]
    # The victim's jobs hang until it is killed; the survivor's take 0.1 s.
    victim = processes.start("worker", env={"WARDEN_TEST_JOB_SECONDS": "60"})
    survivor = processes.start("worker", env={"WARDEN_TEST_JOB_SECONDS": "0.1"})
    api = Replicas(ports, admin.key)
    request.addfinalizer(api.close)
    wait_for(api.healthy, timeout=240, what="both API replicas", logs=processes)

    # Writes through both replicas: the scheduled monitors in turn, then paused ones all at once.
    monitors = "/api/v1/projects/credit/monitors"
    for number in range(MONITORS):
        created = api.request("POST", monitors, json=_monitor(f"every-second-{number}"))
        assert created.status_code == 201, created.text
    with ThreadPoolExecutor(max_workers=PAUSED) as pool:
        statuses = list(
            pool.map(
                lambda n: (
                    api.request(
                        "POST", monitors, replica=n % 2, json=_monitor(f"paused-{n}", paused=True)
                    ).status_code
                ),
                range(PAUSED),
            )
        )
    assert statuses == [201] * PAUSED
    # Both replicas list the same monitors; the schedulers keep moving `scheduled_through` and
    # `updated_at` of the scheduled ones between the two reads, so those are left out.
    listed = [
        {
            m["id"]: (m["name"], m["paused"], m["spec"])
            for m in api.request("GET", monitors, replica=index).json()
        }
        for index in range(len(ports))
    ]
    assert listed[0] == listed[1]
    assert len(listed[0]) == MONITORS + PAUSED

    # A dashboard session opened on one replica works on the other and ends there for both.
    form = api.request("GET", "/login", replica=0)
    signed_in = api.request(
        "POST",
        "/login",
        replica=0,
        data={"username": "dana", "password": PASSWORD, "csrf_token": _csrf(form.text)},
    )
    assert signed_in.status_code == 303, signed_in.text
    page = api.request("GET", "/p/credit", replica=1, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "Signed in as <strong>dana</strong>" in page.text
    out = api.request("POST", "/logout", replica=1, data={"csrf_token": _csrf(page.text)})
    assert out.status_code == 303
    assert api.request("GET", "/p/credit", replica=0).status_code == 401

    # A report queued on one replica: a worker renders it into the bucket (checked at the end).
    render = api.request(
        "POST",
        "/api/v1/projects/credit/reports/renders",
        replica=1,
        json={
            "report": "project",
            "format": "html",
            "since": (utcnow() - timedelta(days=1)).isoformat(),
            "until": (utcnow() + timedelta(minutes=1)).isoformat(),
        },
    )
    assert render.status_code == 202, render.text
    job = render.json()

    # Kill the victim worker in the middle of its first job.
    def victim_mid_job() -> bool:
        return any(event == "start" and pid == victim.pid for event, _, pid, _ in marks(tmp_path))

    wait_for(victim_mid_job, timeout=TIMEOUT, what="the victim worker to start", logs=processes)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_run = next(run for _, run, pid, _ in marks(tmp_path) if pid == victim.pid)

    # Kill the leading scheduler once a dozen slots are queued; the standby takes over.
    wait_for(lambda: len(_runs(engine)) >= 12, timeout=TIMEOUT, what="12 slots", logs=processes)
    leader = _leader_pid(engine)
    assert leader in {s.pid for s in schedulers}
    os.kill(leader, signal.SIGKILL)
    leader_killed = time.monotonic()
    standby = next(s for s in schedulers if s.pid != leader)
    wait_for(
        lambda: _leader_pid(engine) == standby.pid,
        timeout=TIMEOUT,
        what="the standby scheduler to take the lease",
        logs=processes,
    )
    assert (
        time.monotonic() - leader_killed < SCHEDULER_LEASE + 0.25 + 5
    )  # lease + heartbeat + slack
    takeover = utcnow()
    wait_for(
        lambda: (
            len(_runs(engine)) >= 24
            and sum(r.scheduled_for > takeover for r in _runs(engine)) >= MONITORS
        ),
        timeout=TIMEOUT,
        what="24 slots, a round of them after the takeover",
        logs=processes,
    )
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(timeout=15) == 0
    wait_for(
        lambda: all(r.state == "succeeded" for r in _runs(engine)),
        timeout=TIMEOUT,
        what="every queued run to finish",
        logs=processes,
    )

    # Every slot ran to completion exactly once, on its monitor's grid, no slot lost: a gap is
    # only ever bridged by a catch-up run.
    runs = _runs(engine)
    seen = marks(tmp_path)
    done = [run for event, run, _, _ in seen if event == "done"]
    assert sorted(done) == sorted(str(r.id) for r in runs)
    by_monitor: dict[Any, list[MonitorRunPublic]] = {}
    for run in runs:
        by_monitor.setdefault(run.monitor_id, []).append(run)
    assert len(by_monitor) == MONITORS
    for slots in by_monitor.values():
        slots.sort(key=lambda r: r.scheduled_for)
        for previous, current in itertools.pairwise(slots):
            gap = current.scheduled_for - previous.scheduled_for
            assert gap >= timedelta(seconds=1)
            assert gap.total_seconds() % 1 == 0
            if gap != timedelta(seconds=1):
                assert current.trigger == "catch_up", (previous, current)
    # The victim's job was not lost: the survivor finished it on the second attempt.
    retried = next(r for r in runs if str(r.id) == killed_run)
    assert retried.attempts == 2
    assert [pid for event, run, pid, _ in seen if event == "done" and run == killed_run] == [
        survivor.pid
    ]

    # The report was rendered into the bucket, not the data directory; the other replica serves it.
    def rendered() -> bool:
        state = api.request("GET", f"/api/v1/projects/credit/reports/renders/{job['id']}")
        return bool(state.json()["state"] == "succeeded")

    wait_for(rendered, timeout=TIMEOUT, what="the report render", logs=processes)
    body = api.request("GET", job["file_url"], replica=0)
    assert body.status_code == 200
    assert "credit" in body.text
    assert not (data_dir / "reports").exists()
    stored = boto3.client(
        "s3",
        endpoint_url=cluster_env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ).list_objects_v2(Bucket=BUCKET)
    assert [o["Key"] for o in stored["Contents"]] == [
        f"artifacts/reports/{project.id}/renders/{job['id']}.html"
    ]

    # Both replicas verify one intact chain holding exactly the entries this test caused.
    caused = Counter(
        {
            "monitor.create": MONITORS + PAUSED,
            "auth.signin": 1,
            "auth.signout": 1,
            "report.generate": 1,
        }
    )
    assert _audit_actions(engine) - before == caused
    expected = sum(before.values()) + sum(caused.values())
    for replica in range(2):
        report = api.request("GET", "/api/v1/audit/verify", replica=replica).json()
        assert report["intact"], report
        assert report["entries"] == expected
        assert report["first_broken_seq"] is None
        assert report["checkpoints"] >= expected // EVERY
        assert report["checkpoints_verified"] == report["checkpoints"]
    assert min(api.served.values()) >= 10
