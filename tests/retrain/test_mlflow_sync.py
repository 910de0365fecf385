from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.demo import adult
from governance.actors import Actor
from lineage.models import DatasetVersion, Edge, EdgeKind, LineageEvent, ModelVersion, Run
from lineage.projects import Project
from lineage.store import session_scope
from retrain.mlflow_registry import Registry
from retrain.mlflow_sync import SyncReport, sync_mlflow
from retrain.step import StepContext
from retrain.trained_versions import register_step_model
from tests.lineage.openlineage_spec import assert_spec_event


def _sync(engine: Engine, project: Project, registry: Registry) -> SyncReport:
    with session_scope(engine) as session:
        return sync_mlflow(
            session=session, project_id=project.id, registry=registry, actor=Actor.system()
        )


@pytest.mark.slow
def test_sync_imports_versions_with_their_runs_and_inputs_once(
    engine: Engine, project: Project, registry: Registry, step_context: StepContext
) -> None:
    # Trained outside Warden's pipelines, straight into MLflow.
    produced = register_step_model(
        registry=registry,
        run_id="outside",
        pipeline="notebook",
        model_name="income",
        out_dir=Path(step_context.work_dir),
        produced=adult.train(step_context),
    )

    first = _sync(engine, project, registry)
    second = _sync(engine, project, registry)

    assert first.imported == ["income/1"]
    assert first.refused == {}
    assert second.imported == []
    assert second.skipped == ["income/1"]
    with session_scope(engine) as session:
        version = session.exec(select(ModelVersion)).one()
        run = session.exec(select(Run)).one()
        datasets = session.exec(select(DatasetVersion)).all()
        edges = {(e.kind, e.source_id, e.target_id) for e in session.exec(select(Edge)).all()}
        events = [json.loads(e.body) for e in session.exec(select(LineageEvent)).all()]
    assert len(events) == 1
    assert_spec_event(events[0])
    assert version.artifact_sha256 == registry.artifact_hash("income", "1")
    # The schema follows the model: MLflow's signature, inferred from the input example.
    assert set(version.feature_schema) == set(adult.FEATURES)
    assert version.feature_schema["age"] in {"integer", "float"}
    assert version.feature_schema["workclass"] == "category"
    assert len(version.output_schema) <= 1
    assert version.metrics["roc_auc"] == pytest.approx(produced["metrics"]["roc_auc"])
    assert run.run_id == uuid.UUID(hex=produced["mlflow_run_id"])
    assert (EdgeKind.RUN_MODEL, run.id, version.id) in edges
    assert [d.version for d in datasets] == [produced["inputs"][0]["version"]]
    assert (EdgeKind.RUN_INPUT, datasets[0].id, run.id) in edges
