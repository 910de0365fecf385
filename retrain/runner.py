"""Execute a pipeline run: sandboxed steps with captured logs, a time limit and cancellation.

:func:`execute_pipeline_run` is what the worker's ``pipeline_run`` handler calls (see
:func:`pipeline_handler`). It claims the run (queued → running), resolves the training data to
files, then starts each step through the configured :class:`~retrain.sandbox.StepExecutor`
(bubblewrap by default): the step sees its inputs read-only, its output folder
``<data_dir>/staging/pipelines/<run id>/out`` read-write, a scrubbed environment and no network
unless the operator allows it for the project — never the keys, the database, MLflow's store or
another project's data. Files named by the pipeline (dataset version URIs, absolute paths in
parameters, the held-out data) are exposed only if they lie under the operator's
``readable_roots``; anything else fails the run, naming the field. Output is captured to
``<run dir>/log.txt`` (paths come from ids, never from user strings); when the run ends, its
files go to the artifact store and the folder is removed (:mod:`retrain.run_files`). While a
step runs, the runner polls for the run's ``cancel_requested`` flag and its deadline; either
stops the step's process group (SIGTERM, then SIGKILL after a grace period), and the sandbox
dies with the worker.

When every step succeeded and one of them saved a model, the worker (not the step) logs it to
MLflow with the step's parameters, metrics and inputs and registers a version; the run is then
recorded in lineage in the same transaction that marks it succeeded: an OpenLineage ``COMPLETE``
event for the run with its input datasets (data in → run), then the model version with its
artifact hash (run → model version). ``registered_by`` is whoever requested the run: the
trainer, whom separation of duties bars from approving the version's promotion.

A run whose worker died (the job's lease expired) is failed with the reason by the next attempt
of its job, which never trains again.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance import Actor
from lineage.errors import Conflict, InvalidInput, WardenError
from lineage.models import Dataset, DatasetVersion, Deployment
from lineage.openlineage_events import emit
from lineage.projects import Project
from lineage.runtime.handlers import Handler, JobContext
from lineage.runtime.queue import RuntimeJob
from lineage.store import session_scope
from monitors.inferences import read_window
from retrain.pipelines import (
    InferenceQuery,
    Pipeline,
    PipelineRun,
    PipelineRunState,
    claim_run,
    finish_run,
)
from retrain.run_evaluation import evaluate_candidate
from retrain.run_files import publish_run_files
from retrain.runner_config import RunnerConfig, readable_file, run_directory
from retrain.sandbox import SandboxSpec
from retrain.step import StepContext, TrainingInput, read_output
from retrain.supervision import SandboxGrant, StepOutcome, log_tail, sandbox_env, supervise
from retrain.trained_versions import (
    LINEAGE_NAMESPACE,
    pipeline_run_event,
    record_trained_version,
    register_step_model,
)

if TYPE_CHECKING:
    pass

__all__ = ["LINEAGE_NAMESPACE", "execute_pipeline_run", "pipeline_handler"]


def _system_actor(run: PipelineRun) -> Actor:
    return Actor.system(request_id=f"pipeline_run:{run.id}").in_project(run.project_id)


def _dataset_inputs(
    session: Session, run: PipelineRun, pipeline: Pipeline, config: RunnerConfig
) -> list[TrainingInput]:
    spec = pipeline.parsed_spec()
    inputs: list[TrainingInput] = []
    for version_id in spec.training_data.dataset_version_ids:
        version = session.get(DatasetVersion, version_id)
        if version is None or version.project_id != run.project_id:
            raise InvalidInput(
                f"dataset version {version_id} is not in this project; fix the pipeline",
                field="training_data.dataset_version_ids",
            )
        if not version.uri:
            raise InvalidInput(
                f"dataset version {version_id} has no uri to read; record where it lives",
                field="training_data.dataset_version_ids",
            )
        dataset = session.get(Dataset, version.dataset_id)
        assert dataset is not None
        inputs.append(
            TrainingInput(
                name=dataset.name,
                uri=version.uri,
                namespace=dataset.namespace,
                version=version.version,
            )
        )
    if spec.training_data.inferences is not None:
        inputs.append(_labelled_inferences(session, run, spec.training_data.inferences, config))
    return inputs


def _labelled_inferences(
    session: Session, run: PipelineRun, query: InferenceQuery, config: RunnerConfig
) -> TrainingInput:
    """Export the inferences logged for a deployment slot (labels joined) to a Parquet file.

    The file keeps the model's input columns and the label (renamed to ``query.label_column``),
    in the run's directory; its lineage version is a digest of the inference batches read.

    Raises:
        InvalidInput: The slot never served, or the window holds no (labelled) inference.
    """
    latest = session.exec(
        select(Deployment)
        .where(
            Deployment.project_id == run.project_id,
            Deployment.name == query.deployment,
            Deployment.environment == query.environment,
        )
        .order_by(sa.desc(col(Deployment.live_from)))
    ).first()
    if latest is None:
        raise InvalidInput(
            f"deployment {query.deployment!r} ({query.environment}) never served in this "
            "project; fix the pipeline's training_data.inferences",
            field="training_data.inferences.deployment",
        )
    window, batches = read_window(
        session=session,
        store=config.artifacts(),
        deployment=latest,
        start=query.since,
        end=query.until,
    )
    if query.labelled_only and len(window):
        window = window[window["label"].notna()]
    if not len(window):
        raise InvalidInput(
            f"no {'labelled ' if query.labelled_only else ''}inferences of {query.deployment!r} "
            "in the window; widen it or wait for labels",
            field="training_data.inferences",
        )
    dropped = ["request_id", "time", "prediction", "score", "probabilities"]
    frame = window.drop(columns=[c for c in dropped if c in window.columns])
    frame = frame.rename(columns={"label": query.label_column})
    path = run_directory(config.data_dir, run.id) / "inferences.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    digest = hashlib.sha256("\n".join(sorted(map(str, batches))).encode()).hexdigest()
    return TrainingInput(
        name=f"inferences/{query.deployment}/{query.environment}",
        uri=str(path.resolve()),
        namespace=LINEAGE_NAMESPACE,
        version=f"batches-{digest[:16]}",
    )


def _context(
    run: PipelineRun, pipeline: Pipeline, inputs: list[TrainingInput], config: RunnerConfig
) -> StepContext:
    directory = run_directory(config.data_dir, run.id)
    spec = pipeline.parsed_spec()
    out = (directory / "out").resolve()
    return StepContext(
        run_id=str(run.id),
        project_id=str(run.project_id),
        pipeline=pipeline.name,
        model_name=pipeline.model_name,
        experiment=f"warden/{pipeline.model_name}",
        work_dir=str(out),
        output_path=str(out / "output.json"),
        parameters=dict(run.parameters),
        training_inputs=inputs,
        resources=spec.resources.model_dump(exclude_none=True),
    )


def _visible_inputs(
    config: RunnerConfig, run: PipelineRun, inputs: list[TrainingInput]
) -> list[Path]:
    """Return the host paths a run's steps read: its inputs and absolute paths in parameters.

    Raises:
        InvalidInput: One of them is not under a readable root (or is guarded).
    """
    own = run_directory(config.data_dir, run.id).resolve()
    paths: list[Path] = []
    for index, item in enumerate(inputs):
        local = Path(item.uri.removeprefix("file://"))
        if local.is_absolute() and local.resolve().is_relative_to(own):
            paths.append(local.resolve())  # exported by this run (inferences)
            continue
        found = readable_file(config, item.uri, field=f"training_data.dataset_version_ids.{index}")
        if found is not None:
            paths.append(found)
    for name, value in sorted(run.parameters.items()):
        if isinstance(value, str) and (value.startswith("/") or value.startswith("file://")):
            found = readable_file(config, value, field=f"parameters.{name}")
            if found is not None:
                paths.append(found)
    return paths


def _network(session: Session, config: RunnerConfig, project_id: uuid.UUID) -> bool:
    if not config.network_projects:
        return False
    project = session.get(Project, project_id)
    names = {str(project_id), project.name if project is not None else ""}
    return bool(names & config.network_projects)


def _run_steps(
    *, engine: Engine, run_id: uuid.UUID, pipeline: Pipeline, context: StepContext,
    config: RunnerConfig, deadline: float, sandbox: SandboxGrant,
) -> StepOutcome:  # fmt: skip
    out = Path(context.work_dir)
    directory = out.parent
    context_path = directory / "context.json"
    spec = pipeline.parsed_spec()
    for step in spec.steps:
        argv = [config.python, "-m", "retrain.step", step.entrypoint] if step.entrypoint else []
        argv = argv or list(step.command or [])
        outcome = supervise(
            engine=engine, run_id=run_id, label=f"step {step.name!r}", argv=argv,
            spec=SandboxSpec(
                argv=argv, env=sandbox_env(config, context_path), cwd=out,
                read_only=(context_path, *sandbox.read_only), writable=(out,),
                hidden=sandbox.hidden, network=sandbox.network,
            ),
            log_path=directory / "log.txt", config=config, deadline=deadline,
            time_limit=spec.time_limit_seconds,
        )  # fmt: skip
        if outcome.state is not PipelineRunState.SUCCEEDED:
            return outcome
    return StepOutcome(PipelineRunState.SUCCEEDED, exit_code=0)


def _fail(
    engine: Engine, run_id: uuid.UUID, pipeline: Pipeline, inputs: list[TrainingInput],
    outcome: StepOutcome, actor: Actor, tail: str,
) -> PipelineRun:  # fmt: skip
    with session_scope(engine) as session:
        run = session.get(PipelineRun, run_id)
        assert run is not None
        emit(
            session=session,
            project_id=run.project_id,
            event=pipeline_run_event(
                run,
                pipeline,
                inputs,
                "ABORT" if outcome.state is PipelineRunState.CANCELLED else "FAIL",
            ),
        )
        finish_run(
            session=session, run=run, state=outcome.state, actor=actor, error=outcome.error,
            exit_code=outcome.exit_code, log_tail=tail,
        )  # fmt: skip
        return run


def _fail_orphan(session: Session, run: PipelineRun, reason: str) -> PipelineRun:
    """Fail a run left ``running`` by a worker that died; its step died with that worker."""
    finish_run(
        session=session,
        run=run,
        state=PipelineRunState.FAILED,
        actor=_system_actor(run),
        error=f"the worker running it was lost ({reason}); its steps were stopped with it. "
        "Start a new run",
        log_tail=run.log_tail,
    )
    return run


def execute_pipeline_run(
    *, engine: Engine, run_id: uuid.UUID, config: RunnerConfig, lost_worker: str | None = None
) -> PipelineRun:
    """Run a queued pipeline run to a final state and return it.

    Each state change commits on its own, so the API shows ``running`` while the steps run.
    A run cancelled before it started is returned unchanged. A run found ``running`` was left
    by a worker that died (``lost_worker`` says how, when known): it is failed with that
    reason and never trained again. Whatever the outcome, the run's working folder then goes
    to the artifact store (all of it if the run succeeded, else its log) and is removed; if the
    store fails, the folder stays and a later attempt of the job publishes it.
    """
    try:
        finished = _execute(engine=engine, run_id=run_id, config=config, lost_worker=lost_worker)
    except BaseException:
        with contextlib.suppress(WardenError, OSError):  # the run's own error is the one to see
            _publish(config, run_id, whole=False)
        raise
    _publish(config, run_id, whole=finished.run_state is PipelineRunState.SUCCEEDED)
    return finished


def _publish(config: RunnerConfig, run_id: uuid.UUID, *, whole: bool) -> None:
    publish_run_files(
        store=config.artifacts(),
        directory=run_directory(config.data_dir, run_id),
        run_id=run_id,
        whole=whole,
        max_bytes=config.max_model_bytes,
    )


def _execute(
    *, engine: Engine, run_id: uuid.UUID, config: RunnerConfig, lost_worker: str | None
) -> PipelineRun:
    with session_scope(engine) as session:
        try:
            run = claim_run(session=session, run_id=run_id)
        except Conflict:
            found = session.get(PipelineRun, run_id)
            assert found is not None
            if found.run_state is PipelineRunState.RUNNING:
                return _fail_orphan(session, found, lost_worker or "its job was started again")
            return found
        pipeline = session.get(Pipeline, run.pipeline_id)
        assert pipeline is not None
        actor = _system_actor(run)
        directory = run_directory(config.data_dir, run.id)
        (directory / "out").mkdir(parents=True, exist_ok=True)
        try:
            inputs = _dataset_inputs(session, run, pipeline, config)
            sandbox = SandboxGrant(
                read_only=(*config.code_paths, *_visible_inputs(config, run, inputs)),
                network=_network(session, config, run.project_id),
                hidden=(config.data_dir.resolve(),),
            )
        except WardenError as error:
            finish_run(
                session=session,
                run=run,
                state=PipelineRunState.FAILED,
                actor=actor,
                error=error.detail,
            )
            return run
        context = _context(run, pipeline, inputs, config)
        context.write(directory / "context.json")
        emit(
            session=session,
            project_id=run.project_id,
            event=pipeline_run_event(run, pipeline, inputs, "START"),
        )
        deadline = time.monotonic() + pipeline.parsed_spec().time_limit_seconds

    outcome = _run_steps(
        engine=engine, run_id=run.id, pipeline=pipeline, context=context, config=config,
        deadline=deadline, sandbox=sandbox,
    )  # fmt: skip

    if outcome.state is PipelineRunState.SUCCEEDED:
        try:
            # Outside any transaction: logging the model to MLflow takes seconds.
            produced = register_step_model(
                registry=config.registry(),
                run_id=str(run.id),
                pipeline=pipeline.name,
                model_name=run.model_name,
                out_dir=Path(context.work_dir),
                produced=read_output(Path(context.output_path)),
                max_model_bytes=config.max_model_bytes,
            )
            with (directory / "log.txt").open("a", encoding="utf-8") as log:
                log.write(
                    f"==> registered {run.model_name} version {produced['model_version']} "
                    f"(MLflow run {produced['mlflow_run_id']})\n"
                )
            with session_scope(engine) as session:
                run = session.get(PipelineRun, run_id) or run
                record_trained_version(
                    session=session,
                    run=run,
                    pipeline=pipeline,
                    inputs=inputs,
                    produced=produced,
                    registry=config.registry(),
                )
                finish_run(
                    session=session, run=run, state=PipelineRunState.SUCCEEDED, actor=actor,
                    exit_code=0, log_tail=log_tail(directory),
                )  # fmt: skip
        except (WardenError, ValueError) as error:
            detail = error.detail if isinstance(error, WardenError) else str(error)
            outcome = StepOutcome(
                PipelineRunState.FAILED, f"recording the result failed: {detail}", 0
            )
        else:
            evaluate_candidate(
                engine=engine, run=run, pipeline=pipeline, config=config, actor=actor,
                sandbox=sandbox,
            )  # fmt: skip
            return run

    return _fail(engine, run_id, pipeline, inputs, outcome, actor, log_tail(directory))


def _lost_worker(engine: Engine, job_id: uuid.UUID) -> str | None:
    """Return why this job's earlier attempt ended, if it did (the worker stopped)."""
    with Session(engine) as session:
        job = session.get(RuntimeJob, job_id)
    if job is None or job.attempts <= 1:
        return None
    lines = [line for line in job.logs.splitlines() if "stopped heart-beating" in line]
    return lines[-1].split(" ", 1)[-1] if lines else f"attempt {job.attempts - 1} never finished"


def pipeline_handler(config: RunnerConfig) -> Handler:
    """Return the worker handler for ``pipeline_run`` jobs, bound to where runs keep files.

    Register it in the worker's registry: ``registry.register(PIPELINE_RUN,
    pipeline_handler(RunnerConfig(data_dir=…, tracking_uri=settings.resolved_mlflow_uri())))``.
    A second attempt of a job (its first worker died) fails the run with the reason instead of
    training again.
    """

    def handle(context: JobContext) -> dict[str, Any]:
        run_id = uuid.UUID(str(context.payload["run_id"]))
        context.log(f"pipeline run {run_id}: starting")
        run = execute_pipeline_run(
            engine=context.engine,
            run_id=run_id,
            config=config,
            lost_worker=_lost_worker(context.engine, context.job_id),
        )
        context.log(f"pipeline run {run_id}: {run.state}")
        return {"run_id": str(run.id), "state": run.state, "model_version": run.model_version}

    return handle
