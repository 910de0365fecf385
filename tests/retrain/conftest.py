"""Fixtures for the retrain room: a project, its people, real MLflow, and the Adult pipeline."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from api.demo import adult
from api.settings import Settings
from api.worker_process import runner_config as runner_config_for
from governance.actors import Actor
from governance.identity import actor_for
from governance.roles import Role
from lineage.models import ModelVersion
from lineage.projects import Project
from lineage.store import session_scope
from retrain.mlflow_registry import Registry
from retrain.pipelines import (
    Pipeline,
    PipelineRun,
    PipelineRunState,
    PipelineSpec,
    Step,
    claim_run,
    create_pipeline,
    finish_run,
    request_run,
)
from retrain.runner_config import RunnerConfig
from retrain.step import StepContext
from retrain.trained_versions import record_trained_version, register_step_model
from tests.conftest import Issued

ADULT_TRAIN = Path(__file__).resolve().parents[2] / "data" / "adult" / "adult.data.gz"


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project("acme")


@pytest.fixture
def person(make_principal: Callable[..., Issued], project: Project) -> Callable[..., Actor]:
    """Make a person with ``role`` in ``acme``; return their actor scoped to it."""

    def make(role: Role | list[Role]) -> Actor:
        issued = make_principal(role=role, project=project.name)
        return actor_for(issued.principal, project_id=project.id)

    return make


@pytest.fixture
def trainer(person: Callable[..., Actor]) -> Actor:
    return person([Role.DATA_SCIENTIST, Role.APPROVER])


@pytest.fixture
def approver(person: Callable[..., Actor]) -> Actor:
    return person(Role.APPROVER)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Create MLflow's own schema once per session; each test starts from a copy of it."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    Registry(tracking_uri=f"sqlite:///{path}", artifact_root=path.parent).registered_model_names()
    return path


@pytest.fixture
def runner_config(settings: Settings, mlflow_template: Path) -> RunnerConfig:
    uri = settings.resolved_mlflow_uri()
    target = Path(uri.removeprefix("sqlite:///"))
    if uri.startswith("sqlite:///") and not target.exists():
        shutil.copyfile(mlflow_template, target)
    return replace(runner_config_for(settings), poll_seconds=0.05, kill_grace_seconds=2.0)


@pytest.fixture
def registry(runner_config: RunnerConfig) -> Registry:
    return runner_config.registry()


def adult_spec(**overrides: Any) -> PipelineSpec:
    """Return the Adult training pipeline on a few thousand rows (fast, still a real model)."""
    fields: dict[str, Any] = {
        "name": "income-train",
        "model_name": "income",
        "steps": [Step(name="train", entrypoint="api.demo.adult:train")],
        "parameters": {"train_path": str(ADULT_TRAIN), "max_rows": 3000, "max_iter": 30},
        "time_limit_seconds": 300,
    }
    fields.update(overrides)
    return PipelineSpec(**fields)


@pytest.fixture
def make_pipeline(engine: Engine, project: Project, trainer: Actor) -> Callable[..., Pipeline]:
    """Register a pipeline (the Adult one unless overridden) as the trainer."""

    def make(**overrides: Any) -> Pipeline:
        with session_scope(engine) as session:
            return create_pipeline(
                session=session, project_id=project.id, spec=adult_spec(**overrides), actor=trainer
            )

    return make


@pytest.fixture
def step_context(runner_config: RunnerConfig, project: Project, tmp_path: Path) -> StepContext:
    """A context for calling the Adult step in-process (same code the subprocess runs)."""
    work = tmp_path / "step"
    work.mkdir()
    return StepContext(
        run_id=str(uuid.uuid4()),
        project_id=str(project.id),
        pipeline="income-train",
        model_name="income",
        experiment="warden/income",
        work_dir=str(work),
        output_path=str(work / "output.json"),
        parameters={"train_path": str(ADULT_TRAIN), "max_rows": 3000, "max_iter": 30},
    )


@pytest.fixture
def train_version(
    engine: Engine,
    make_pipeline: Callable[..., Pipeline],
    trainer: Actor,
    runner_config: RunnerConfig,
    step_context: StepContext,
) -> Callable[..., ModelVersion]:
    """Train and register an Adult version through a pipeline run, with the step in-process.

    The runner's sandbox is tested in ``test_runner.py``; here the same entry point runs in
    this process to keep tests quick, and the model is registered and the run recorded exactly
    as the runner does it.
    """
    pipelines: list[Pipeline] = []

    def train(**parameters: Any) -> ModelVersion:
        if not pipelines:
            pipelines.append(
                make_pipeline(parameters={**step_context.parameters, "random_state": 0})
            )
        pipeline = pipelines[0]
        with session_scope(engine) as session:
            run = request_run(
                session=session, pipeline=pipeline, actor=trainer, parameters=parameters
            ).run
        with session_scope(engine) as session:
            claim_run(session=session, run_id=run.id)
        out = Path(step_context.work_dir) / str(run.id)
        out.mkdir()
        context = replace(
            step_context,
            run_id=str(run.id),
            work_dir=str(out),
            output_path=str(out / "output.json"),
            parameters={**step_context.parameters, **run.parameters},
        )
        produced = register_step_model(
            registry=runner_config.registry(),
            run_id=str(run.id),
            pipeline=pipeline.name,
            model_name=pipeline.model_name,
            out_dir=out,
            produced=adult.train(context),
        )
        with session_scope(engine) as session:
            claimed = session.get(PipelineRun, run.id)
            assert claimed is not None
            version = record_trained_version(
                session=session,
                run=claimed,
                pipeline=pipeline,
                inputs=[],
                produced=produced,
                registry=runner_config.registry(),
            )
            finish_run(
                session=session,
                run=claimed,
                state=PipelineRunState.SUCCEEDED,
                actor=Actor.system(),
            )
        return version

    return train
