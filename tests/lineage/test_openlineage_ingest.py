from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from lineage import (
    Dataset,
    DatasetVersion,
    Edge,
    EdgeKind,
    InvalidInput,
    Job,
    LineageEvent,
    Run,
    RunState,
    create_project,
    ingest_event,
    session_scope,
)
from tests.lineage.counts import row_counts
from tests.lineage.events import PRODUCER, T0, dataset, encode, run_event


def _ingest(engine: Engine, project_id: uuid.UUID, body: bytes) -> bool:
    with session_scope(engine) as session:
        return ingest_event(session=session, project_id=project_id, body=body).created


def test_a_run_event_stores_the_raw_event_unchanged(engine: Engine, project_id: uuid.UUID) -> None:
    body = b'{"eventType":"START",  "eventTime":"2026-11-01T09:00:00+00:00", "run":{"runId":"'
    body += str(uuid.uuid4()).encode()
    body += b'"},"job":{"namespace":"ns","name":"j"},"producer":"p","schemaURL":"s","x-extra":[1]}'
    assert _ingest(engine, project_id, body)
    with session_scope(engine) as session:
        stored = session.exec(select(LineageEvent)).one()
    assert stored.body == body.decode()
    assert stored.event_kind == "run"
    assert stored.event_time == T0


def test_a_run_derives_job_run_datasets_versions_and_edges(
    engine: Engine, project_id: uuid.UUID
) -> None:
    run_id = uuid.uuid4()
    schema = {"fields": [{"name": "age", "type": "integer"}]}
    start = run_event(
        event_type="START",
        run_id=run_id,
        job="featurize",
        inputs=[dataset("files", "raw.csv", version="sha256:abc", schema=schema)],
        outputs=[dataset("files", "features.parquet")],
    )
    complete = run_event(
        event_type="COMPLETE", run_id=run_id, job="featurize", minutes=5, outputs=[]
    )
    complete["outputs"] = [
        {
            **dataset("files", "features.parquet", dataSource={"name": "f", "uri": "file:///f"}),
            "outputFacets": {"outputStatistics": {"rowCount": 32561}},
        }
    ]
    assert _ingest(engine, project_id, encode(start))
    assert _ingest(engine, project_id, encode(complete))

    with session_scope(engine) as session:
        job = session.exec(select(Job)).one()
        run = session.exec(select(Run)).one()
        datasets = {d.name: d for d in session.exec(select(Dataset))}
        versions = {d.dataset_id: d for d in session.exec(select(DatasetVersion))}
        edges = {(e.kind, e.source_id, e.target_id) for e in session.exec(select(Edge))}
    assert (job.namespace, job.name) == ("pipelines", "featurize")
    assert run.run_id == run_id
    assert run.state == RunState.COMPLETE
    assert run.started_at == T0
    assert run.ended_at is not None
    assert (run.ended_at - T0).total_seconds() == 300
    raw = versions[datasets["raw.csv"].id]
    features = versions[datasets["features.parquet"].id]
    assert raw.version == "sha256:abc"
    assert raw.schema_fields == [{"name": "age", "type": "integer"}]
    assert features.row_count == 32561
    assert features.uri == "file:///f"
    assert len(features.version) == 64
    assert edges == {
        (EdgeKind.JOB_INPUT, datasets["raw.csv"].id, job.id),
        (EdgeKind.JOB_OUTPUT, job.id, datasets["features.parquet"].id),
        (EdgeKind.RUN_INPUT, raw.id, run.id),
        (EdgeKind.RUN_OUTPUT, run.id, features.id),
    }


def test_replaying_an_event_changes_nothing(engine: Engine, project_id: uuid.UUID) -> None:
    event = run_event(
        event_type="START",
        run_id=uuid.uuid4(),
        job="train",
        inputs=[dataset("files", "features.parquet")],
        outputs=[dataset("files", "model")],
    )
    assert _ingest(engine, project_id, encode(event))
    before = row_counts(engine)
    reordered = json.dumps(dict(reversed(list(event.items()))), indent=2).encode()
    assert not _ingest(engine, project_id, encode(event))
    assert not _ingest(engine, project_id, reordered)
    assert row_counts(engine) == before


def test_the_same_event_lands_separately_in_each_project(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        other = create_project(session=session, name="other").id
    event = encode(run_event(event_type="START", run_id=uuid.uuid4(), job="j"))
    assert _ingest(engine, project_id, event)
    assert _ingest(engine, other, event)
    with session_scope(engine) as session:
        assert {r.project_id for r in session.exec(select(Run))} == {project_id, other}


def test_a_late_start_does_not_undo_a_completed_run(engine: Engine, project_id: uuid.UUID) -> None:
    run_id = uuid.uuid4()
    _ingest(
        engine,
        project_id,
        encode(run_event(event_type="COMPLETE", run_id=run_id, job="j", minutes=9)),
    )
    _ingest(engine, project_id, encode(run_event(event_type="START", run_id=run_id, job="j")))
    with session_scope(engine) as session:
        run = session.exec(select(Run)).one()
    assert run.state == RunState.COMPLETE
    assert run.started_at == T0


def test_each_run_writes_a_new_version_and_readers_get_the_latest(
    engine: Engine, project_id: uuid.UUID
) -> None:
    first, second, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    out = [dataset("files", "features.parquet")]
    _ingest(
        engine,
        project_id,
        encode(run_event(event_type="COMPLETE", run_id=first, job="f", outputs=out)),
    )
    _ingest(
        engine,
        project_id,
        encode(run_event(event_type="COMPLETE", run_id=second, job="f", outputs=out, minutes=1)),
    )
    _ingest(
        engine,
        project_id,
        encode(run_event(event_type="START", run_id=reader, job="t", inputs=out, minutes=2)),
    )
    with session_scope(engine) as session:
        versions = list(session.exec(select(DatasetVersion).order_by(DatasetVersion.created_at)))  # type: ignore[arg-type]
        reader_run = session.exec(select(Run).where(Run.run_id == reader)).one()
        consumed = session.exec(
            select(Edge.source_id).where(
                Edge.kind == EdgeKind.RUN_INPUT, Edge.target_id == reader_run.id
            )
        ).all()
    assert len(versions) == 2
    assert consumed == [versions[1].id]

    # The reader's completion names the same input: it still consumed the version it started on.
    _ingest(
        engine,
        project_id,
        encode(run_event(event_type="COMPLETE", run_id=reader, job="t", inputs=out, minutes=3)),
    )
    with session_scope(engine) as session:
        assert len(session.exec(select(Edge).where(Edge.kind == EdgeKind.RUN_INPUT)).all()) == 1


def test_a_job_event_links_the_job_to_its_datasets_without_a_run(
    engine: Engine, project_id: uuid.UUID
) -> None:
    event = {
        "eventTime": T0.isoformat(),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "ns", "name": "nightly"},
        "inputs": [dataset("db", "public.raw")],
        "outputs": [dataset("db", "public.clean")],
    }
    assert _ingest(engine, project_id, encode(event))
    with session_scope(engine) as session:
        kinds = sorted(e.kind for e in session.exec(select(Edge)))
        assert session.exec(select(Run)).all() == []
        assert session.exec(select(LineageEvent)).one().event_kind == "job"
    assert kinds == [EdgeKind.JOB_INPUT, EdgeKind.JOB_OUTPUT]


def test_a_dataset_event_records_the_dataset_and_its_declared_version(
    engine: Engine, project_id: uuid.UUID
) -> None:
    event = {
        "eventTime": T0.isoformat(),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset("db", "public.raw", version="v7", schema={"fields": [{"name": "x"}]}),
    }
    assert _ingest(engine, project_id, encode(event))
    with session_scope(engine) as session:
        version = session.exec(select(DatasetVersion)).one()
        ds = session.exec(select(Dataset)).one()
    assert (ds.namespace, ds.name, version.version) == ("db", "public.raw", "v7")
    assert ds.facets["schema"] == {"fields": [{"name": "x"}]}


def _good() -> dict[str, object]:
    return run_event(event_type="START", run_id=uuid.uuid4(), job="j", outputs=[dataset("a", "b")])


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b"[1, 2]", "body", "JSON object"),
        (b"\xff\xfe", "body", "not UTF-8"),
        (
            encode({"eventTime": T0.isoformat(), "producer": "p", "schemaURL": "s"}),
            "run",
            "RunEvent",
        ),
        (encode({**_good(), "run": {"facets": {}}}), "run.runId", "required"),
        (encode({**_good(), "run": {"runId": "nope"}}), "run.runId", "UUID"),
        (encode({**_good(), "eventType": "FINISHED"}), "eventType", "START"),
        (encode({**_good(), "eventTime": "2026-11-01T09:00:00"}), "eventTime", "timezone"),
        (encode({k: v for k, v in _good().items() if k != "producer"}), "producer", "required"),
        (encode({**_good(), "job": {"namespace": "n"}}), "job.name", "required"),
        (encode({**_good(), "outputs": [{"name": "x"}]}), "outputs.0.namespace", "required"),
        (
            encode(
                {
                    **_good(),
                    "inputs": [
                        {
                            "namespace": "a",
                            "name": "b",
                            "facets": {"version": {"datasetVersion": 3}},
                        }
                    ],
                }
            ),
            "inputs.0.facets.version.datasetVersion",
            "string",
        ),
    ],
)
def test_a_malformed_event_is_refused_naming_the_field_and_nothing_is_stored(
    engine: Engine, project_id: uuid.UUID, body: bytes, field: str, message: str
) -> None:
    before = row_counts(engine)
    with pytest.raises(InvalidInput, match=message) as caught:
        _ingest(engine, project_id, body)
    assert caught.value.field == field
    assert row_counts(engine) == before


def test_a_run_reported_under_another_job_is_refused_and_rolled_back(
    engine: Engine, project_id: uuid.UUID
) -> None:
    run_id = uuid.uuid4()
    _ingest(engine, project_id, encode(run_event(event_type="START", run_id=run_id, job="a")))
    before = row_counts(engine)
    moved = run_event(event_type="COMPLETE", run_id=run_id, job="b", outputs=[dataset("x", "y")])
    with pytest.raises(InvalidInput, match="another job") as caught:
        _ingest(engine, project_id, encode(moved))
    assert caught.value.field == "run.runId"
    assert row_counts(engine) == before
