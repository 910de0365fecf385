import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from lineage import session_scope
from lineage.models import DatasetVersion, LineageEvent
from lineage.openlineage_events import PRODUCER, DatasetRef, dataset_event, emit, run_event
from tests.lineage.openlineage_spec import assert_spec_event

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _full_run_event() -> dict[str, Any]:
    return run_event(
        event_type="COMPLETE",
        event_time=AT,
        run_id=uuid.uuid4(),
        job_namespace="warden",
        job_name="pipeline/income-train",
        inputs=[
            DatasetRef(namespace="file", name="data/adult/adult.data", version="v1"),
            DatasetRef(
                namespace="warden",
                name="references/abc",
                uri="references/p/abc.parquet",
                fields=(("age", "integer"), ("sex", "string")),
            ),
        ],
        outputs=[DatasetRef(namespace="warden", name="out", version="2", row_count=42)],
        run_facets={"monitor": {"kind": "drift", "rows": 3}},
    )


def test_run_events_match_the_spec_classes_of_openlineage_python() -> None:
    event = _full_run_event()
    assert_spec_event(event)
    assert event["run"]["facets"]["warden_monitor"]["kind"] == "drift"


def test_dataset_events_match_the_spec_classes_of_openlineage_python() -> None:
    event = dataset_event(
        event_time=AT,
        dataset=DatasetRef(namespace="warden", name="references/abc", version="abc", uri="x"),
    )
    assert_spec_event(event)


def test_the_spec_check_refuses_a_wrong_schema_url() -> None:
    event = _full_run_event()
    event["schemaURL"] = "https://openlineage.io/spec/1-0-0/OpenLineage.json#/definitions/RunEvent"
    with pytest.raises(AssertionError):
        assert_spec_event(event)


def test_a_naive_event_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        run_event(
            event_type="START",
            event_time=datetime(2026, 1, 1),
            run_id=uuid.uuid4(),
            job_namespace="warden",
            job_name="x",
        )


def test_emit_records_the_event_and_derives_its_versions(
    engine: Engine, project_id: uuid.UUID
) -> None:
    event = _full_run_event()
    with session_scope(engine) as session:
        first = emit(session=session, project_id=project_id, event=event)
        again = emit(session=session, project_id=project_id, event=event)
    assert first.created
    assert not again.created
    with session_scope(engine) as session:
        stored = session.exec(select(LineageEvent)).one()
        versions = {v.version for v in session.exec(select(DatasetVersion)).all()}
    assert PRODUCER in stored.body
    assert {"v1", "2"} <= versions
