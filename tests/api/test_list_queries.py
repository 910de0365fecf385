"""The large lists read a page in a fixed number of statements, however many items it holds.

A per-item query (the N+1 shape) would make a page of 12 cost more statements than a page of 3;
each route is also read on a later page, by its cursor, at the same cost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from governance.actors import Actor
from governance.audit import PendingEntry, append_many
from governance.roles import Role
from lineage import Deployment, ModelVersion, session_scope
from lineage.projects import Project
from lineage.runtime.queue import RuntimeJob
from monitors.models import MonitorCreate, MonitorRun
from monitors.schedules import create_monitor
from tests.conftest import Issued

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def _add(engine: Engine, project: Project, monitor_id: uuid.UUID, start: int, count: int) -> None:
    """Add ``count`` versions (with a deployment each), monitor runs and audit entries."""
    with session_scope(engine) as session:
        for number in range(start, start + count):
            at = T0 + timedelta(hours=number)
            version = ModelVersion(
                project_id=project.id, name=f"m-{number % 2}", version=str(number), external=True
            )
            session.add(version)
            session.flush()
            session.add(
                Deployment(
                    project_id=project.id,
                    name="api",
                    environment="production",
                    model_version_id=version.id,
                    live_from=at,
                    live_until=at + timedelta(hours=1),
                )
            )
            job = RuntimeJob(
                project_id=project.id, kind="monitor_run", payload={}, state="succeeded"
            )
            session.add(job)
            session.flush()
            session.add(
                MonitorRun(
                    project_id=project.id,
                    monitor_id=monitor_id,
                    scheduled_for=at,
                    trigger="schedule",
                    window_start=at - timedelta(hours=1),
                    window_end=at,
                    job_id=job.id,
                    summary={"findings": 0},
                )
            )
        append_many(
            session=session,
            actor=Actor.system().in_project(project.id),
            entries=[PendingEntry("a.b", f"t:{n}") for n in range(start, start + count)],
        )


def test_a_page_costs_the_same_statements_whatever_it_holds(
    client: TestClient,
    engine: Engine,
    make_project: Callable[[str], Project],
    make_principal: Callable[..., Issued],
) -> None:
    acme = make_project("acme")
    reader = make_principal(role=[Role.AUDITOR, Role.DATA_SCIENTIST], project="acme")
    with session_scope(engine) as session:
        monitor = create_monitor(
            session=session,
            project_id=acme.id,
            spec=MonitorCreate.model_validate(
                {"name": "d", "spec": {"kind": "drift"}, "schedule": {"interval_seconds": 3600}}
            ),
            now=T0,
        ).id
    base = "/api/v1/projects/acme"
    routes = {
        "models": (f"{base}/models", {}),
        "versions": (f"{base}/models/m-0/versions", {}),
        "runs": (f"{base}/monitors/{monitor}/runs", {}),
        "deployments": (f"{base}/deployments", {}),
        "audit": ("/api/v1/audit", {"project": "acme"}),
        "audit since": ("/api/v1/audit", {"project": "acme", "since": T0.isoformat()}),
    }

    def costs(limit: int) -> dict[str, tuple[int, int]]:
        """Return each route's statements on its first page and on the page after it."""
        found: dict[str, tuple[int, int]] = {}
        for name, (path, params) in routes.items():
            pages = []
            query: dict[str, str | int] = {**params, "limit": limit}
            for _ in range(2):
                with _statements(engine) as seen:
                    answer = client.get(path, params=query, headers=reader.headers)
                assert answer.status_code == 200, answer.text
                pages.append(len(seen))
                link = answer.links.get("next")
                if len(pages) == 1:
                    assert link is not None, name  # a second page to follow by its cursor
                    query = dict(parse_qsl(urlsplit(link["url"]).query))
            found[name] = (pages[0], pages[1])
        return found

    _add(engine, acme, monitor, 0, 6)
    # The first request of a key and project reads the gate's answer into its cache (two reads
    # more); counted from then on, the statements are the page's own.
    costs(limit=2)
    small = costs(limit=2)
    _add(engine, acme, monitor, 6, 30)
    assert costs(limit=10) == small, small
