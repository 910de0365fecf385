"""Done-when tests: ``warden scheduler`` and ``warden worker`` as real processes on a SQLite file.

Two schedulers race for one monitor with a 2-second interval while two workers execute its runs
through a test handler (``tests.api.marker_handlers``: slow on purpose, leaves start/done marks).
One worker is SIGKILLed mid-job and the leading scheduler is SIGKILLed later; every slot must
still run to completion exactly once, and the standby scheduler must take over.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from lineage import create_project, session_scope, utcnow
from lineage.runtime.lease import current_leader
from lineage.runtime.queue import get_job
from monitors.models import Monitor, MonitorCreate, MonitorRunPublic
from monitors.run_jobs import read_runs
from monitors.schedules import create_monitor
from tests.api.processes import Processes, free_port, marks, wait_for

pytestmark = pytest.mark.slow

INTERVAL = 2


@pytest.fixture
def processes(database_url: str, tmp_path: Path) -> Iterator[Processes]:
    started = Processes(
        tmp_path,
        {
            "WARDEN_DATABASE_URL": database_url,
            "WARDEN_DATA_DIR": str(tmp_path / "data"),
            "WARDEN_SCHEDULER_HEARTBEAT_SECONDS": "0.25",
            "WARDEN_SCHEDULER_LEASE_SECONDS": "2",
            "WARDEN_SCHEDULER_SYNC_SECONDS": "1",
            "WARDEN_WORKER_POLL_SECONDS": "0.1",
            "WARDEN_WORKER_HEARTBEAT_SECONDS": "0.25",
            "WARDEN_WORKER_LEASE_SECONDS": "3",
            "WARDEN_WORKER_RETRY_DELAY_SECONDS": "0",
            "WARDEN_TEST_JOB_SECONDS": "1.0",
        },
    )
    try:
        yield started
    finally:
        started.stop_all()


def _runs(engine: Engine) -> list[MonitorRunPublic]:
    with session_scope(engine) as session:
        monitor_ids = session.exec(select(Monitor.id)).all()
        return read_runs(session=session, monitor_ids=monitor_ids, newest_first=False)


def _result(engine: Engine, job_id: uuid.UUID | None) -> dict[str, Any] | None:
    assert job_id is not None
    with session_scope(engine) as session:
        return get_job(session=session, job_id=job_id).result


def _leader_pid(engine: Engine) -> int | None:
    with session_scope(engine) as session:
        holder = current_leader(session=session, name="scheduler")
    return None if holder is None else int(holder.split(":")[1])


def _monitor(engine: Engine, *, interval: int) -> Monitor:
    with session_scope(engine) as session:
        project = create_project(session=session, name="credit")
        body = MonitorCreate.model_validate(
            {
                "name": "drift-every-2s",
                "spec": {"kind": "drift"},
                "schedule": {"interval_seconds": interval},
                "window": "last:10s",
            }
        )
        return create_monitor(session=session, project_id=project.id, spec=body)


def test_slots_run_exactly_once_with_two_schedulers_and_a_killed_worker(
    engine: Engine, processes: Processes, tmp_path: Path
) -> None:
    monitor = _monitor(engine, interval=INTERVAL)
    handlers = json.dumps({"monitor_run": "tests.api.marker_handlers:slow_marker"})
    schedulers = [processes.start("scheduler") for _ in range(2)]
    workers = [
        processes.start("worker", env={"WARDEN_WORKER_HANDLERS": handlers}) for _ in range(2)
    ]
    worker_pids = {w.pid for w in workers}

    # Kill whichever worker is first seen in the middle of a job.
    victim: dict[str, int | str] = {}

    def a_worker_is_mid_job() -> bool:
        seen = marks(tmp_path)
        done = {(run, pid) for event, run, pid, _ in seen if event == "done"}
        for event, run, pid, _ in seen:
            if event == "start" and pid in worker_pids and (run, pid) not in done:
                victim.update(pid=pid, run=run)
                return True
        return False

    wait_for(a_worker_is_mid_job, timeout=240, what="a worker to start a job", logs=processes)
    os.kill(int(victim["pid"]), signal.SIGKILL)
    killed_at = utcnow()

    # Let the survivors advance a few slots, then kill the leading scheduler.
    wait_for(
        lambda: sum(r.scheduled_for > killed_at for r in _runs(engine)) >= 3,
        timeout=120,
        what="three more slots after the worker was killed",
        logs=processes,
    )
    leader = _leader_pid(engine)
    assert leader in {s.pid for s in schedulers}
    os.kill(leader, signal.SIGKILL)
    leader_killed = time.monotonic()
    standby = next(s.pid for s in schedulers if s.pid != leader)
    wait_for(
        lambda: _leader_pid(engine) == standby,
        timeout=15,
        what="the standby scheduler to take the lease",
        logs=processes,
    )
    assert time.monotonic() - leader_killed < 2 + 0.25 + 5  # lease + heartbeat + slack
    takeover_at = utcnow()
    wait_for(
        lambda: sum(r.scheduled_for > takeover_at for r in _runs(engine)) >= 2,
        timeout=120,
        what="the new leader to queue two slots",
        logs=processes,
    )

    for scheduler in schedulers:
        if scheduler.poll() is None:
            scheduler.send_signal(signal.SIGTERM)
            assert scheduler.wait(timeout=15) == 0
    wait_for(
        lambda: all(r.state == "succeeded" for r in _runs(engine)),
        timeout=160,
        what="every queued run to finish",
        logs=processes,
    )

    runs = _runs(engine)
    seen = marks(tmp_path)
    assert len(runs) >= 6
    # Every run finished exactly once; no slot was executed to completion twice.
    done = [run for event, run, _, _ in seen if event == "done"]
    assert sorted(done) == sorted(str(r.id) for r in runs)
    # Slots sit on the monitor's 2-second grid, and a gap is only ever bridged by a catch-up run.
    for previous, current in itertools.pairwise(runs):
        offset = (current.scheduled_for - monitor.anchor_at).total_seconds()
        assert offset % INTERVAL == 0
        if current.scheduled_for - previous.scheduled_for != timedelta(seconds=INTERVAL):
            assert current.trigger == "catch_up", (previous, current)
    # The killed worker's job was retried and completed by the other worker.
    killed_run = next(r for r in runs if str(r.id) == victim["run"])
    assert killed_run.attempts == 2
    finishers = [pid for event, run, pid, _ in seen if event == "done" and run == victim["run"]]
    assert finishers == [next(pid for pid in worker_pids if pid != victim["pid"])]
    assert _result(engine, killed_run.job_id) == {"pid": finishers[0], "attempt": 2}


def test_warden_up_serves_schedules_and_works_in_one_process(
    engine: Engine, processes: Processes
) -> None:
    _monitor(engine, interval=1)
    port = free_port()
    up = processes.start("up", "--port", str(port))

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=240, what="the API to answer", logs=processes)
    wait_for(
        lambda: sum(r.state == "succeeded" for r in _runs(engine)) >= 2,
        timeout=30,
        what="two runs done by the embedded scheduler and worker",
        logs=processes,
    )
    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=20) == 0
    summaries = [r.summary for r in _runs(engine) if r.state == "succeeded"]
    assert all(s is not None and s["computed"] is False for s in summaries)
    assert uuid.UUID(str(_runs(engine)[0].monitor_id))
