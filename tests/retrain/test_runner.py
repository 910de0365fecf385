from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.settings import Settings
from governance.actors import Actor
from governance.audit import AuditEntry
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.model_versions import FeatureType, ModelVersionCreate, register_model_version
from lineage.models import DatasetVersion, Edge, EdgeKind, LineageEvent, ModelVersion, Run
from lineage.projects import Project
from lineage.storage import LocalStore
from lineage.store import session_scope
from monitors.inferences import InferenceRecord, LabelRecord, log_inferences, log_labels
from retrain import supervision
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
from retrain.runner import execute_pipeline_run
from retrain.runner_config import RunnerConfig, run_directory
from tests.lineage.openlineage_spec import assert_spec_event
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
        holdout_uri=str(holdout),
        reader="api.demo.adult:read_adult",
        target="income",
        sensitive_features=["sex"],
        max_rows=1000,
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
        events = [json.loads(e.body) for e in session.exec(select(LineageEvent)).all()]
    assert sorted(e["eventType"] for e in events) == ["COMPLETE", "START"]
    for event in events:
        assert_spec_event(event)
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


def test_a_running_run_shares_its_live_log_and_can_be_cancelled(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervision, "LOG_SHARE_SECONDS", 0.1)
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

    def shared_tail() -> str:  # what an API replica on another machine shows of the live log
        with session_scope(engine) as session:
            running = session.get(PipelineRun, queued.id)
            assert running is not None
            assert running.state == PipelineRunState.RUNNING
            return running.log_tail

    while "sleeping" not in shared_tail():
        assert time.monotonic() - started < 30, "the live log never reached the run's row"
        time.sleep(0.05)
    with session_scope(engine) as session:
        cancel_run(session=session, project_id=project.id, run_id=queued.id, actor=trainer)
    thread.join(timeout=30)

    assert finished[0].state == PipelineRunState.CANCELLED
    assert "cancelled during step 'sleep'" in finished[0].error
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
    assert "no step saved a model" in run.error
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
            store=LocalStore(runner_config.data_dir),
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
            store=LocalStore(runner_config.data_dir),
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


def _processes_with(token: str) -> list[int]:
    """Return the host pids whose command line carries ``token`` (bwrap and the step)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and token.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait(condition: Callable[[], bool], *, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen; worker log:\n" + (
            log.read_text(errors="replace") if log.exists() else ""
        )
        time.sleep(0.1)


@pytest.mark.slow
def test_a_step_dies_with_its_killed_worker_and_the_run_fails_with_the_reason(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    settings: Settings,
    tmp_path: Path,
) -> None:
    token = f"warden-step-{uuid.uuid4().hex}"
    sleep = [sys.executable, "-c", "import time; print('sleeping', flush=True); time.sleep(600)"]
    pipeline = make_pipeline(steps=[Step(name="sleep", command=[*sleep, token])], parameters={})
    queued = _queue(engine, pipeline, trainer)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "WARDEN_DATABASE_URL": settings.resolved_database_url(),
        "WARDEN_DATA_DIR": str(settings.data_dir),
        "WARDEN_MLFLOW_TRACKING_URI": settings.resolved_mlflow_uri(),
        "WARDEN_WORKER_POLL_SECONDS": "0.1",
        "WARDEN_WORKER_HEARTBEAT_SECONDS": "0.25",
        "WARDEN_WORKER_LEASE_SECONDS": "2",
        "WARDEN_WORKER_RETRY_DELAY_SECONDS": "0",
    }
    warden = str(Path(sys.executable).with_name("warden"))
    step_log = run_directory(settings.data_dir, queued.id) / "log.txt"
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    with logs[0].open("wb") as out:
        first = subprocess.Popen([warden, "worker"], env=env, stdout=out, stderr=out)
    try:
        _wait(
            lambda: step_log.exists() and "sleeping" in step_log.read_text(),
            seconds=60, what="the step starting", log=logs[0],
        )  # fmt: skip
        _wait(lambda: bool(_processes_with(token)), seconds=10, what="a step process", log=step_log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # The step (and its sandbox) die with the worker instead of running on unsupervised.
        _wait(lambda: not _processes_with(token), seconds=10, what="the step dying", log=logs[0])
    finally:
        first.kill()

    # Another worker takes the job over once its lease expired, and fails the run with why.
    with logs[1].open("wb") as out:
        second = subprocess.Popen([warden, "worker"], env=env, stdout=out, stderr=out)
    try:

        def failed() -> bool:
            with session_scope(engine) as session:
                run = session.get(PipelineRun, queued.id)
                return run is not None and run.state == PipelineRunState.FAILED

        _wait(failed, seconds=60, what="the run failing", log=logs[1])
    finally:
        second.terminate()
        second.wait(timeout=30)
    with session_scope(engine) as session:
        run = session.get(PipelineRun, queued.id)
        assert run is not None
        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.target == f"pipeline_run:{run.id}")
        ).all()
    assert "the worker running it was lost" in run.error
    assert "stopped heart-beating during attempt 1" in run.error
    assert run.active_model is None
    assert "pipeline_run.failed" in actions
    assert not _processes_with(token)
