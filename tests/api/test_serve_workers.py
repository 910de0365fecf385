"""``warden serve --workers 2``: two API processes on one port, each answering and writing.

Each process is frozen in turn (SIGSTOP) while requests on fresh connections go to the port, so
the other must have accepted and answered them: an audited write through each, one chain.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from governance.audit import AuditEntry
from governance.audit_verify import verify_store
from governance.roles import Role
from lineage import session_scope
from tests.api.processes import Processes, free_port, wait_for
from tests.conftest import Issued

pytestmark = pytest.mark.slow  # two API processes start: a few seconds


def _api_processes(parent: int) -> list[int]:
    """The pids of the processes uvicorn spawned to serve (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def test_two_api_processes_share_the_port_and_each_answers(
    make_principal: Callable[..., Issued], engine: Engine, database_url: str, tmp_path: Path
) -> None:
    admin = make_principal(role=Role.ADMIN, project="acme").headers
    port = free_port()
    env = {"WARDEN_DATABASE_URL": database_url, "WARDEN_DATA_DIR": str(tmp_path / "data")}
    processes = Processes(tmp_path, env)
    server = processes.start("serve", "--workers", "2", "--port", str(port))
    log = processes.started[0][1]
    try:
        wait_for(
            lambda: log.read_text().count("Application startup complete.") == 2,
            timeout=120,
            what="both API processes to start",
            logs=processes,
        )
        children = _api_processes(server.pid)
        assert len(children) == 2, processes.logs()
        if len(os.sched_getaffinity(0)) >= 2:  # each on a core of its own (api/cpu_slots.py)
            cores = [os.sched_getaffinity(child) for child in children]
            assert all(len(held) == 1 for held in cores), cores
            assert cores[0] != cores[1]
        for number, frozen in enumerate(children):
            os.kill(frozen, signal.SIGSTOP)
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                    assert http.get("/readyz").status_code == 200
                    made = http.post(
                        "/api/v1/projects/acme/budgets",
                        json={"name": f"b{number}", "period": "daily", "limit_usd": 5.0},
                        headers=admin,
                    )
                    assert made.status_code == 201, made.text
            finally:
                os.kill(frozen, signal.SIGCONT)
        assert _api_processes(server.pid) == children  # neither was replaced meanwhile
    finally:
        processes.stop_all()
    assert server.returncode == 0, processes.logs()

    with session_scope(engine, read_only=True) as session:
        actions = session.exec(select(AuditEntry.action).order_by(col(AuditEntry.seq))).all()
    assert [action for action in actions if action.startswith("budget.")] == ["budget.create"] * 2
    report = verify_store(engine=engine, public_key=None)
    assert report.intact, report.problem
