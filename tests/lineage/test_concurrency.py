"""Two requests writing the same lineage at once: no 500, no broken invariant.

Only PostgreSQL lets both transactions run at once (SQLite serialises writers), so this runs
when ``TEST_DATABASE_URL`` is set, as in CI.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from lineage import (
    Conflict,
    Dataset,
    DeploymentCreate,
    LineageEvent,
    LineageIngestResult,
    ModelVersionCreate,
    ingest_event,
    live_deployments,
    record_deployment,
    register_model_version,
    session_scope,
)
from tests.conftest import POSTGRES_URL
from tests.lineage.events import dataset, encode, run_event

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)"),
]


def test_a_concurrent_writer_of_the_same_dataset_retries_and_succeeds(
    engine: Engine, project_id: uuid.UUID
) -> None:
    shared = [dataset("file", "/shared.csv")]
    first = encode(run_event(event_type="START", run_id=uuid.uuid4(), job="a", inputs=shared))
    second = encode(run_event(event_type="START", run_id=uuid.uuid4(), job="b", inputs=shared))
    results: list[LineageIngestResult | BaseException] = []

    def write_second() -> None:
        try:
            with session_scope(engine) as session:
                results.append(ingest_event(session=session, project_id=project_id, body=second))
        except BaseException as error:
            results.append(error)

    with session_scope(engine) as session:
        ingest_event(session=session, project_id=project_id, body=first)
        thread = threading.Thread(target=write_second)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive(), "the second writer should wait on the first's uncommitted row"
    thread.join(timeout=30)

    assert len(results) == 1
    assert isinstance(results[0], LineageIngestResult), results[0]
    with session_scope(engine) as session:
        assert len(session.exec(select(Dataset)).all()) == 1
        assert len(session.exec(select(LineageEvent)).all()) == 2


def _in_thread(
    engine: Engine, action: Callable[..., object]
) -> tuple[threading.Thread, list[object]]:
    results: list[object] = []

    def run() -> None:
        try:
            with session_scope(engine) as session:
                results.append(action(session))
        except BaseException as error:
            results.append(error)

    return threading.Thread(target=run), results


def test_two_deployments_racing_for_a_slot_leave_one_live(
    engine: Engine, project_id: uuid.UUID
) -> None:
    spec = ModelVersionCreate(artifact_uri="m", artifact_sha256=hashlib.sha256(b"m").hexdigest())
    at = datetime(2026, 11, 1, tzinfo=UTC)

    def deploy(version: str, minutes: int) -> Callable[..., object]:
        create = DeploymentCreate(
            name="api",
            environment="prod",
            model_name="m",
            model_version=version,
        )
        return lambda session: record_deployment(
            session=session, project_id=project_id, spec=create, at=at + timedelta(minutes=minutes)
        )

    with session_scope(engine) as session:
        for _ in range(3):
            register_model_version(session=session, project_id=project_id, name="m", spec=spec)
        deploy("1", 0)(session)
    thread, results = _in_thread(engine, deploy("3", 2))
    with session_scope(engine) as session:
        deploy("2", 1)(session)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive(), "the second deployer should wait on the first's row lock"
    thread.join(timeout=30)

    assert len(results) == 1
    assert isinstance(results[0], Conflict), results[0]
    with session_scope(engine) as session:
        live = live_deployments(
            session=session, project_id=project_id, as_of=at + timedelta(hours=1)
        )
    assert len(live) == 1
