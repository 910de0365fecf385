"""Two requests writing the same new lineage at once: the second reuses the first's rows.

Only PostgreSQL lets both transactions run at once (SQLite serialises writers), so this runs
when ``TEST_DATABASE_URL`` is set, as in CI.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from lineage import Dataset, IngestResult, LineageEvent, ingest_event, session_scope
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
    results: list[IngestResult | BaseException] = []

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
    assert isinstance(results[0], IngestResult), results[0]
    with session_scope(engine) as session:
        assert len(session.exec(select(Dataset)).all()) == 1
        assert len(session.exec(select(LineageEvent)).all()) == 2
