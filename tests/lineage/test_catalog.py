from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy.engine import Engine

from lineage import (
    ModelVersionCreate,
    NotFound,
    get_run,
    ingest_event,
    list_dataset_versions,
    list_datasets,
    list_jobs,
    list_runs,
    register_model_version,
    session_scope,
)
from tests.lineage.events import dataset, encode, run_event


@pytest.fixture
def runs(engine: Engine, project_id: uuid.UUID) -> list[uuid.UUID]:
    """Run ``featurize`` twice (raw → features) and ``train`` once (features → a model)."""
    ids = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
    raw, features = dataset("file", "/raw.csv"), dataset("file", "/features.parquet")
    with session_scope(engine) as session:
        for minutes, run_id in enumerate(ids[:2]):
            event = run_event(
                event_type="COMPLETE",
                run_id=run_id,
                job="featurize",
                inputs=[raw],
                outputs=[features],
                minutes=minutes,
            )
            ingest_event(session=session, project_id=project_id, body=encode(event))
        event = run_event(event_type="COMPLETE", run_id=ids[2], job="train", inputs=[features])
        ingest_event(session=session, project_id=project_id, body=encode(event))
        register_model_version(
            session=session,
            project_id=project_id,
            name="income",
            spec=ModelVersionCreate(
                source_run_id=ids[2],
                artifact_uri="m",
                artifact_sha256=hashlib.sha256(b"m").hexdigest(),
            ),
        )
    return ids


def test_datasets_and_jobs_list_with_their_latest(
    engine: Engine, project_id: uuid.UUID, runs: list[uuid.UUID]
) -> None:
    with session_scope(engine) as session:
        datasets = list_datasets(session=session, project_id=project_id)
        jobs = list_jobs(session=session, project_id=project_id)
        versions = list_dataset_versions(
            session=session, project_id=project_id, namespace="file", name="/features.parquet"
        )
        featurize_runs = list_runs(session=session, project_id=project_id, job_id=jobs[0].job.id)
    assert [(d.dataset.name, d.versions) for d in datasets] == [
        ("/features.parquet", 2),
        ("/raw.csv", 1),
    ]
    assert datasets[0].latest == versions[0]
    assert [(j.job.name, j.runs) for j in jobs] == [("featurize", 2), ("train", 1)]
    assert jobs[0].latest_run is not None
    assert jobs[0].latest_run.run_id == runs[1]
    assert [r.run_id for r in featurize_runs] == [runs[1], runs[0]]


def test_a_run_shows_what_it_read_wrote_and_trained(
    engine: Engine, project_id: uuid.UUID, runs: list[uuid.UUID]
) -> None:
    with session_scope(engine) as session:
        featurize = get_run(session=session, project_id=project_id, run_id=runs[1])
        train = get_run(session=session, project_id=project_id, run_id=runs[2])
    assert [d.name for d, _ in featurize.inputs] == ["/raw.csv"]
    assert [d.name for d, _ in featurize.outputs] == ["/features.parquet"]
    assert featurize.model_versions == []
    assert [v.id for _, v in train.inputs] == [v.id for _, v in featurize.outputs]
    assert [m.name for m in train.model_versions] == ["income"]


def test_unknown_runs_and_datasets_are_not_found(engine: Engine, project_id: uuid.UUID) -> None:
    with session_scope(engine) as session:
        with pytest.raises(NotFound, match="no run"):
            get_run(session=session, project_id=project_id, run_id=uuid.uuid4())
        with pytest.raises(NotFound, match="no dataset"):
            list_dataset_versions(session=session, project_id=project_id, namespace="a", name="b")
