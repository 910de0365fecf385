from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from governance.actors import Actor
from governance.audit import AuditEntry
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.model_versions import FeatureType, ModelVersionCreate, register_model_version
from lineage.models import DatasetVersion, Edge, EdgeKind, ModelVersion, Run
from lineage.projects import Project
from lineage.store import session_scope
from monitors.inferences import InferenceRecord, LabelRecord, log_inferences, log_labels
from retrain.evaluation import Evaluation
from retrain.mlflow_registry import Registry
from retrain.pipelines import (
    EvaluationSpec,
    InferenceQuery,
    Pipeline,
    PipelineRun,
    PipelineRunState,
    Step,
    TrainingData,
    cancel_run,
    request_run,
)
from retrain.runner import RunnerConfig, execute_pipeline_run, run_directory
from tests.retrain.conftest import ADULT_TRAIN

SLEEP = [sys.executable, "-c", "import time; print('sleeping', flush=True); time.sleep(60)"]


def _queue(engine: Engine, pipeline: Pipeline, actor: Actor) -> PipelineRun:
    with session_scope(engine) as session:
        return request_run(session=session, pipeline=pipeline, actor=actor, reason="test").run


@pytest.mark.slow
def test_a_run_trains_registers_and_records_lineage(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
    registry: Registry,
) -> None:
    holdout = ADULT_TRAIN.with_name("adult.test.gz")
    evaluation = EvaluationSpec(
        holdout_uri=str(holdout), target="income", sensitive_features=["sex"], max_rows=1000
    )
    pipeline = make_pipeline(evaluation=evaluation)
    queued = _queue(engine, pipeline, trainer)

    run = execute_pipeline_run(engine=engine, run_id=queued.id, config=runner_config)

    assert run.state == PipelineRunState.SUCCEEDED, run.error + run.log_tail
    assert run.model_version == "1"
    assert run.metrics["accuracy"] > 0.8
    assert "registered income version 1" in run.log_tail
    assert run.active_model is None
    # MLflow: a run with params, metrics and the training data as an input dataset.
    mlflow_run = registry.run(str(run.mlflow_run_id))
    assert mlflow_run.params["max_rows"] == "3000"
    assert mlflow_run.metrics["roc_auc"] > 0.8
    assert [(i.name, i.context) for i in mlflow_run.inputs] == [("adult.data.gz", "training")]
    assert registry.model_version("income", "1").run_id == run.mlflow_run_id
    # Lineage: data in → run → model version out, with the artifact hash.
    with session_scope(engine) as session:
        version = session.exec(select(ModelVersion).where(ModelVersion.name == "income")).one()
        lineage_run = session.exec(select(Run).where(Run.run_id == run.id)).one()
        edges = session.exec(select(Edge)).all()
        actions = session.exec(select(AuditEntry.action)).all()
    assert version.id == run.model_version_id
    assert version.artifact_sha256 == registry.artifact_hash("income", "1")
    assert version.registered_by == trainer.principal_id
    assert version.feature_schema["age"] == "float"
    assert lineage_run.state == "COMPLETE"
    kinds = {(e.kind, e.target_id) for e in edges}
    assert (EdgeKind.RUN_MODEL, version.id) in kinds
    assert (EdgeKind.RUN_INPUT, lineage_run.id) in kinds
    assert "pipeline_run.succeeded" in actions
    # The new version was scored on the held-out rows (no champion yet: the candidate alone).
    assert "evaluated version 1 on 1000 held-out rows" in run.log_tail
    with session_scope(engine) as session:
        scored = session.exec(select(Evaluation)).one()
    assert scored.candidate_version_id == version.id
    assert scored.champion_version_id is None
    assert scored.performance["candidate"]["accuracy"] > 0.8
    assert "sex=Female" in scored.fairness["candidate"]["sex"]["selection_rate"]


def test_a_running_run_can_be_cancelled(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
    project: Project,
) -> None:
    pipeline = make_pipeline(steps=[Step(name="sleep", command=SLEEP)], parameters={})
    queued = _queue(engine, pipeline, trainer)
    finished: list[PipelineRun] = []
    thread = threading.Thread(
        target=lambda: finished.append(
            execute_pipeline_run(engine=engine, run_id=queued.id, config=runner_config)
        )
    )
    started = time.monotonic()
    thread.start()
    log = run_directory(runner_config.data_dir, queued.id) / "log.txt"
    while not (log.exists() and "sleeping" in log.read_text()):
        assert time.monotonic() - started < 30, "the step never started"
        time.sleep(0.05)
    with session_scope(engine) as session:
        running = session.get(PipelineRun, queued.id)
        assert running is not None
        assert running.state == PipelineRunState.RUNNING
        cancel_run(session=session, project_id=project.id, run_id=queued.id, actor=trainer)
    thread.join(timeout=30)

    assert finished[0].state == PipelineRunState.CANCELLED
    assert "cancelled during 'sleep'" in finished[0].error
    assert time.monotonic() - started < 30
    with session_scope(engine) as session:
        lineage_run = session.exec(select(Run).where(Run.run_id == queued.id)).one()
        again = request_run(session=session, pipeline=pipeline, actor=trainer)
    assert lineage_run.state == "ABORT"
    assert again.created


def test_a_step_over_its_time_limit_is_stopped_and_fails(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
) -> None:
    pipeline = make_pipeline(
        steps=[Step(name="sleep", command=SLEEP)], parameters={}, time_limit_seconds=1
    )
    queued = _queue(engine, pipeline, trainer)
    started = time.monotonic()
    run = execute_pipeline_run(engine=engine, run_id=queued.id, config=runner_config)
    assert run.state == PipelineRunState.FAILED
    assert "exceeded the time limit of 1 s" in run.error
    assert time.monotonic() - started < 15


def test_a_failing_step_fails_the_run_with_its_log(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
) -> None:
    crash = [sys.executable, "-c", "import sys; print('no data here'); sys.exit(3)"]
    pipeline = make_pipeline(steps=[Step(name="prepare", command=crash)], parameters={})
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, pipeline, trainer).id, config=runner_config
    )
    assert run.state == PipelineRunState.FAILED
    assert run.exit_code == 3
    assert "step 'prepare' exited with status 3" in run.error
    assert "no data here" in run.log_tail


def test_steps_that_register_nothing_fail_the_run(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
) -> None:
    pipeline = make_pipeline(
        steps=[Step(name="noop", command=[sys.executable, "-c", "pass"])], parameters={}
    )
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, pipeline, trainer).id, config=runner_config
    )
    assert run.state == PipelineRunState.FAILED
    assert "no step reported a model_version" in run.error
    assert run.active_model is None


def test_a_command_that_does_not_exist_fails_the_run(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
) -> None:
    missing = [str(runner_config.data_dir / "no-such-program")]
    pipeline = make_pipeline(steps=[Step(name="ghost", command=missing)], parameters={})
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, pipeline, trainer).id, config=runner_config
    )
    assert run.state == PipelineRunState.FAILED
    assert "step 'ghost' could not start" in run.error
    assert run.active_model is None


def test_a_run_can_train_on_the_labelled_inferences_of_a_deployment(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
    project: Project,
) -> None:
    with session_scope(engine) as session:
        register_model_version(
            session=session,
            project_id=project.id,
            name="income",
            spec=ModelVersionCreate(
                version="1",
                artifact_uri="models:/income/1",
                artifact_sha256="0" * 64,
                feature_schema={"age": FeatureType.FLOAT, "sex": FeatureType.CATEGORY},
            ),
        )
        deployment = record_deployment(
            session=session,
            project_id=project.id,
            spec=DeploymentCreate(
                name="income-api", environment="production", model_name="income", model_version="1"
            ),
        )
        log_inferences(
            session=session,
            data_dir=runner_config.data_dir,
            deployment=deployment,
            records=[
                InferenceRecord(
                    request_id=f"r{i}", features={"age": 30 + i, "sex": "Male"}, prediction=1
                )
                for i in range(4)
            ],
        )
        log_labels(
            session=session,
            data_dir=runner_config.data_dir,
            deployment=deployment,
            labels=[LabelRecord(request_id="r0", label=1), LabelRecord(request_id="r1", label=0)],
        )
    inspect = (
        "import json, os; import pandas as pd; "
        "c = json.load(open(os.environ['WARDEN_STEP_CONTEXT'])); "
        "f = pd.read_parquet(c['training_inputs'][0]['uri']); "
        "print('rows', len(f), sorted(f.columns), sorted(f['income']))"
    )
    pipeline = make_pipeline(
        steps=[Step(name="inspect", command=[sys.executable, "-c", inspect])],
        parameters={},
        training_data=TrainingData(
            inferences=InferenceQuery(deployment="income-api", label_column="income")
        ),
    )
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, pipeline, trainer).id, config=runner_config
    )
    assert "rows 2 ['age', 'income', 'sex'] [0.0, 1.0]" in run.log_tail, run.log_tail
    with session_scope(engine) as session:
        versions = session.exec(select(DatasetVersion)).all()
    assert [v.version.startswith("batches-") for v in versions] == [True]

    empty = make_pipeline(
        name="from-nowhere",
        model_name="other",
        parameters={},
        training_data=TrainingData(inferences=InferenceQuery(deployment="nowhere")),
    )
    failed = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, empty, trainer).id, config=runner_config
    )
    assert failed.state == PipelineRunState.FAILED
    assert "'nowhere' (production) never served" in failed.error
