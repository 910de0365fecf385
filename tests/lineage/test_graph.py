from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from lineage import (
    DeploymentCreate,
    InvalidInput,
    NotFound,
    dataset_impact,
    dataset_impact_all_versions,
    get_dataset_version,
    get_model_version,
    get_model_version_by_id,
    ingest_event,
    lineage_graph,
    model_provenance,
    record_deployment,
    session_scope,
)
from lineage.edges import link
from lineage.models import EdgeKind, Run
from tests.lineage.events import DB, dataset, encode, run_event, train_generation

T = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def two_generations(engine: Engine, project_id: uuid.UUID) -> None:
    """Train model 1 on raw v1 and model 2 on raw v2; deploy 1 at T and 2 at T + 1 day."""
    with session_scope(engine) as session:
        for generation in ("1", "2"):
            version = train_generation(
                session, project_id, f"v{generation}", minutes=10 * int(generation)
            )
            record_deployment(
                session=session,
                project_id=project_id,
                spec=DeploymentCreate(
                    name="api",
                    environment="prod",
                    model_name="income",
                    model_version=version,
                ),
                at=T + timedelta(days=int(generation) - 1),
            )


@pytest.mark.usefixtures("two_generations")
def test_provenance_holds_exactly_the_runs_and_data_that_made_the_version(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        first = get_model_version(
            session=session, project_id=project_id, name="income", version="1"
        )
        found = model_provenance(session=session, project_id=project_id, model_version_id=first.id)
        jobs = [found.jobs[r.job_id].name for r in found.runs]
        data = [(found.datasets[v.dataset_id].name, v.version) for v in found.dataset_versions]
    assert jobs == ["featurize", "train"]
    assert data[0] == ("public.adult", "v1")
    assert [name for name, _ in data] == ["public.adult", "/features.parquet"]


@pytest.mark.usefixtures("two_generations")
def test_a_judging_run_is_listed_apart_from_what_made_the_version_and_what_the_data_fed(
    engine: Engine, project_id: uuid.UUID
) -> None:
    """An evaluation run reads raw v2 and judges model 1: provenance and impact name it apart."""
    judge = uuid.uuid4()
    with session_scope(engine) as session:
        raw = dataset(DB, "public.adult", version="v2")
        event = run_event(event_type="COMPLETE", run_id=judge, job="evaluate", inputs=[raw])
        ingest_event(session=session, project_id=project_id, body=encode(event))
        first = get_model_version(
            session=session, project_id=project_id, name="income", version="1"
        )
        run = session.exec(select(Run).where(Run.run_id == judge)).one()
        link(
            session=session,
            project_id=project_id,
            kind=EdgeKind.RUN_EVALUATES,
            source_id=run.id,
            target_id=first.id,
        )
        session.flush()
        made = model_provenance(session=session, project_id=project_id, model_version_id=first.id)
        v2 = get_dataset_version(
            session=session, project_id=project_id, namespace=DB, name="public.adult", version="v2"
        )
        fed = dataset_impact(session=session, project_id=project_id, dataset_version_id=v2.id)
        v1 = get_dataset_version(
            session=session, project_id=project_id, namespace=DB, name="public.adult", version="v1"
        )
        unjudged = dataset_impact(session=session, project_id=project_id, dataset_version_id=v1.id)
    assert [made.jobs[r.job_id].name for r in made.evaluations] == ["evaluate"]
    assert [v.version for v in made.evaluation_dataset_versions] == ["v2"]
    assert [made.jobs[r.job_id].name for r in made.runs] == ["featurize", "train"]
    assert "v2" not in [v.version for v in made.dataset_versions]  # judging is not making
    assert [(m.name, m.version) for m in fed.judged] == [("income", "1")]
    assert [(m.name, m.version) for m in fed.model_versions] == [("income", "2")]
    assert "evaluate" in [fed.jobs[r.job_id].name for r in fed.runs]
    assert unjudged.judged == []


@pytest.mark.usefixtures("two_generations")
def test_impact_follows_one_version_and_reads_deployments_as_of(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        v1 = get_dataset_version(
            session=session, project_id=project_id, namespace=DB, name="public.adult", version="v1"
        )
        now = dataset_impact(session=session, project_id=project_id, dataset_version_id=v1.id)
        then = dataset_impact(
            session=session,
            project_id=project_id,
            dataset_version_id=v1.id,
            as_of=T + timedelta(hours=1),
        )
        latest = get_dataset_version(
            session=session, project_id=project_id, namespace=DB, name="public.adult"
        )
    assert [m.version for m in now.model_versions] == ["1"]
    assert now.deployments == []  # version 2 replaced it
    assert [d.live_from for d in then.deployments] == [T]
    assert [now.jobs[r.job_id].name for r in now.runs] == ["featurize", "train"]
    assert len(now.dataset_versions) == 1
    assert latest.version == "v2"


@pytest.mark.usefixtures("two_generations")
def test_the_marquez_graph_spans_namespaces_with_colons_and_respects_depth(
    engine: Engine, project_id: uuid.UUID
) -> None:
    start = f"dataset:{DB}:public.adult"
    with session_scope(engine) as session:
        near = lineage_graph(session=session, project_id=project_id, node_id=start, depth=1)
        far = lineage_graph(session=session, project_id=project_id, node_id=start, depth=20)
    assert {n["id"] for n in near["graph"]} == {start, "job:pipelines:featurize"}
    nodes = {n["id"]: n for n in far["graph"]}
    assert set(nodes) == {
        start,
        "job:pipelines:featurize",
        "dataset:file:/features.parquet",
        "job:pipelines:train",
        "model:income:1",
        "model:income:2",
        "deployment:prod:api",
    }
    assert nodes[start]["data"] == {
        "id": start,
        "type": "DATASET",
        "namespace": DB,
        "name": "public.adult",
    }
    assert nodes["deployment:prod:api"]["inEdges"] == [
        {"origin": "model:income:1", "destination": "deployment:prod:api"},
        {"origin": "model:income:2", "destination": "deployment:prod:api"},
    ]
    assert nodes["deployment:prod:api"]["data"]["liveModel"] == "model:income:2"


def test_graph_inputs_are_checked(engine: Engine, project_id: uuid.UUID) -> None:
    with session_scope(engine) as session:
        with pytest.raises(InvalidInput, match="depth") as caught:
            lineage_graph(session=session, project_id=project_id, node_id="job:a:b", depth=101)
        assert caught.value.field == "depth"
        with pytest.raises(InvalidInput, match="nodeId"):
            lineage_graph(session=session, project_id=project_id, node_id="column:a:b")
        with pytest.raises(NotFound, match="no node"):
            lineage_graph(session=session, project_id=project_id, node_id="job:a:b")
        with pytest.raises(NotFound, match="no dataset"):
            get_dataset_version(session=session, project_id=project_id, namespace="a", name="b")
        with pytest.raises(NotFound, match="no dataset version"):
            dataset_impact(session=session, project_id=project_id, dataset_version_id=uuid.uuid4())


@pytest.mark.usefixtures("two_generations")
def test_impact_of_a_dataset_without_a_version_covers_every_version(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        found = dataset_impact_all_versions(
            session=session, project_id=project_id, namespace=DB, name="public.adult"
        )
        then = dataset_impact_all_versions(
            session=session,
            project_id=project_id,
            namespace=DB,
            name="public.adult",
            as_of=T + timedelta(hours=1),
        )
        served = {
            d.id: get_model_version_by_id(
                session=session, project_id=project_id, model_version_id=d.model_version_id
            ).version
            for d in [*found.deployments, *then.deployments]
        }
    assert [v.version for v in found.covered] == ["v1", "v2"]
    assert found.dataset_version.version == "v2"
    assert [m.version for m in found.model_versions] == ["1", "2"]
    assert [served[d.id] for d in found.deployments] == ["2"]  # v2's model serves now
    assert [served[d.id] for d in then.deployments] == ["1"]  # v1's model served then
