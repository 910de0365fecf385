"""Execute a pipeline run: steps as subprocesses with captured logs, a time limit and cancellation.

:func:`execute_pipeline_run` is what the worker's ``pipeline_run`` handler calls (see
:func:`handle_pipeline_job`). It claims the run (queued → running), resolves the training data to
files, then starts each step in its own process group with its output captured to
``<data_dir>/pipelines/runs/<run id>/log.txt`` (paths come from ids, never from user strings).
While a step runs, the runner polls for the run's ``cancel_requested`` flag and its deadline;
either stops the whole process group (SIGTERM, then SIGKILL after a grace period).

When every step succeeded and one of them reported a registered version, the run is recorded in
lineage in the same transaction that marks it succeeded: an OpenLineage ``COMPLETE`` event for the
run with its input datasets (data in → run), then the model version with its artifact hash
(run → model version). ``registered_by`` is whoever requested the run: the trainer, whom
separation of duties bars from approving the version's promotion.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance import Actor
from lineage.errors import Conflict, InvalidInput, WardenError
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import Dataset, DatasetVersion, Deployment, ModelVersion
from lineage.openlineage_ingest import ingest_event
from lineage.runtime.handlers import Handler, JobContext
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.inferences import read_window
from retrain.deployers import VerifiedModelLoader
from retrain.evaluation import record_evaluation, resolve_pair, score_pair
from retrain.mlflow_registry import Registry
from retrain.pipelines import (
    EvaluationSpec,
    InferenceQuery,
    Pipeline,
    PipelineRun,
    PipelineRunState,
    claim_run,
    finish_run,
)
from retrain.step import CONTEXT_ENV, StepContext, TrainingInput, read_output

__all__ = [
    "LINEAGE_NAMESPACE",
    "RunnerConfig",
    "execute_pipeline_run",
    "pipeline_handler",
    "record_trained_version",
    "run_directory",
]

LINEAGE_NAMESPACE = "warden"
_PRODUCER = "https://github.com/warden-ml/warden/retrain"
_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_VERSION_FACET_URL = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """Where runs keep their files and which MLflow they log to.

    Attributes:
        data_dir: Warden's artifact store; run directories live below it.
        tracking_uri: The MLflow tracking and registry URI steps log to.
        python: The interpreter entry-point steps run in.
        poll_seconds: How often to check for exit, cancellation and the deadline.
        kill_grace_seconds: How long a stopped step may take to exit before SIGKILL.
    """

    data_dir: Path
    tracking_uri: str
    python: str = sys.executable
    poll_seconds: float = 0.2
    kill_grace_seconds: float = 5.0

    def registry(self) -> Registry:
        """Return the MLflow adapter for this configuration."""
        return Registry(tracking_uri=self.tracking_uri, artifact_root=self.artifact_root)

    @property
    def artifact_root(self) -> Path:
        """Return where Warden-created MLflow experiments keep their artifacts."""
        return self.data_dir / "mlflow-artifacts"


def run_directory(data_dir: Path, run_id: uuid.UUID) -> Path:
    """Return the directory of a run's context, output and log (derived from its id only)."""
    return data_dir / "pipelines" / "runs" / str(run_id)


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
        data_dir=config.data_dir,
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
    return StepContext(
        run_id=str(run.id),
        project_id=str(run.project_id),
        pipeline=pipeline.name,
        model_name=pipeline.model_name,
        experiment=f"warden/{pipeline.model_name}",
        tracking_uri=config.tracking_uri,
        artifact_root=str(config.artifact_root.resolve()),
        work_dir=str(directory.resolve()),
        output_path=str((directory / "output.json").resolve()),
        parameters=dict(run.parameters),
        training_inputs=inputs,
        resources=spec.resources.model_dump(exclude_none=True),
    )


def _lineage_event(
    run: PipelineRun, pipeline: Pipeline, inputs: list[TrainingInput], state: str
) -> bytes:
    event: dict[str, Any] = {
        "eventType": state,
        "eventTime": utcnow().isoformat(),
        "producer": _PRODUCER,
        "schemaURL": _SCHEMA_URL,
        "run": {"runId": str(run.id)},
        "job": {"namespace": LINEAGE_NAMESPACE, "name": f"pipeline/{pipeline.name}"},
        "inputs": [
            {
                "namespace": item.namespace,
                "name": item.name,
                "facets": (
                    {
                        "version": {
                            "_producer": _PRODUCER,
                            "_schemaURL": _VERSION_FACET_URL,
                            "datasetVersion": item.version,
                        }
                    }
                    if item.version
                    else {}
                ),
            }
            for item in inputs
        ],
        "outputs": [],
    }
    return json.dumps(event).encode()


def record_trained_version(
    *,
    session: Session,
    run: PipelineRun,
    pipeline: Pipeline,
    inputs: list[TrainingInput],
    produced: dict[str, Any],
    registry: Registry,
) -> ModelVersion:
    """Record data in → run → model version out in lineage, with the artifact's hash.

    Raises:
        InvalidInput: No step reported a registered ``model_version``.
    """
    version = produced.get("model_version")
    if not version:
        raise InvalidInput(
            "no step reported a model_version; a pipeline run must register one",
            field="steps",
        )
    version = str(version)
    artifact_hash = registry.artifact_hash(run.model_name, version)
    known = {(item.namespace, item.name) for item in inputs}
    reported = [
        TrainingInput(
            name=str(item["name"]),
            uri=str(item["name"]),
            namespace=str(item.get("namespace") or "file"),
            version=str(item["version"]) if item.get("version") else None,
        )
        for item in produced.get("inputs", [])
        if isinstance(item, dict) and item.get("name")
    ]
    read = inputs + [item for item in reported if (item.namespace, item.name) not in known]
    ingest_event(
        session=session,
        project_id=run.project_id,
        body=_lineage_event(run, pipeline, read, "COMPLETE"),
    )
    parameters = {
        str(k): v
        for k, v in {**run.parameters, **produced.get("parameters", {})}.items()
        if isinstance(v, str | int | float | bool)
    }
    model_version = register_model_version(
        session=session,
        project_id=run.project_id,
        name=run.model_name,
        spec=ModelVersionCreate(
            version=version,
            source_run_id=run.id,
            artifact_uri=f"models:/{run.model_name}/{version}",
            artifact_sha256=artifact_hash,
            parameters=parameters,
            metrics={str(k): float(v) for k, v in produced.get("metrics", {}).items()},
            feature_schema=produced.get("feature_schema", {}),
            description=f"trained by pipeline {pipeline.name!r}, run {run.id}",
        ),
        registered_by=run.requested_by,
    )
    run.mlflow_run_id = str(produced.get("mlflow_run_id") or "") or None
    run.model_version = version
    run.model_version_id = model_version.id
    run.metrics = dict(model_version.metrics)
    session.add(run)
    return model_version


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait()


def _cancel_requested(engine: Engine, run_id: uuid.UUID) -> bool:
    with Session(engine) as session:
        flag = session.exec(
            select(PipelineRun.cancel_requested).where(PipelineRun.id == run_id)
        ).first()
    return bool(flag)


@dataclass(frozen=True, slots=True)
class _StepOutcome:
    state: PipelineRunState
    error: str = ""
    exit_code: int | None = None


def _run_steps(
    *, engine: Engine, run_id: uuid.UUID, pipeline: Pipeline, context: StepContext,
    config: RunnerConfig, deadline: float,
) -> _StepOutcome:  # fmt: skip
    directory = Path(context.work_dir)
    context_path = directory / "context.json"
    env = {**os.environ, CONTEXT_ENV: str(context_path), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["DO_NOT_TRACK"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    spec = pipeline.parsed_spec()
    log_path = directory / "log.txt"
    for step in spec.steps:
        argv = [config.python, "-m", "retrain.step", step.entrypoint] if step.entrypoint else []
        argv = argv or list(step.command or [])
        with log_path.open("ab") as log:
            log.write(f"==> step {step.name}: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=directory,
                    env=env,
                    start_new_session=True,
                )
            except OSError as error:
                return _StepOutcome(
                    PipelineRunState.FAILED,
                    f"step {step.name!r} could not start: {error.strerror or error}; "
                    "check its command",
                )
            last_check = 0.0
            while process.poll() is None:
                now = time.monotonic()
                if now >= deadline:
                    _terminate(process, config.kill_grace_seconds)
                    return _StepOutcome(
                        PipelineRunState.FAILED,
                        f"step {step.name!r} exceeded the time limit of "
                        f"{spec.time_limit_seconds} s and was stopped",
                    )
                if now - last_check >= max(config.poll_seconds, 0.5):
                    last_check = now
                    if _cancel_requested(engine, run_id):
                        _terminate(process, config.kill_grace_seconds)
                        return _StepOutcome(
                            PipelineRunState.CANCELLED, f"cancelled during {step.name!r}"
                        )
                time.sleep(config.poll_seconds)
        if process.returncode != 0:
            return _StepOutcome(
                PipelineRunState.FAILED,
                f"step {step.name!r} exited with status {process.returncode}; see the log",
                process.returncode,
            )
    return _StepOutcome(PipelineRunState.SUCCEEDED, exit_code=0)


def _log_tail(directory: Path) -> str:
    path = directory / "log.txt"
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 20_000))
        return handle.read().decode("utf-8", errors="replace")


def _holdout_uri(session: Session, project_id: uuid.UUID, spec: EvaluationSpec) -> str:
    if spec.holdout_uri is not None:
        return spec.holdout_uri
    version = session.get(DatasetVersion, spec.holdout_dataset_version_id)
    if version is None or version.project_id != project_id or not version.uri:
        raise InvalidInput(
            f"held-out dataset version {spec.holdout_dataset_version_id} is not in this project "
            "or has no uri; fix the pipeline's evaluation",
            field="evaluation.holdout_dataset_version_id",
        )
    return version.uri


def _evaluate(
    *, engine: Engine, run: PipelineRun, pipeline: Pipeline, config: RunnerConfig, actor: Actor
) -> None:
    """Score the new version beside the champion when the pipeline asks for it.

    The run has succeeded already: a failed evaluation is written to its log, never undone.
    """
    spec = pipeline.parsed_spec().evaluation
    if spec is None or run.model_version is None:
        return
    loader = VerifiedModelLoader(registry=config.registry(), cache_dir=config.data_dir / "models")
    try:
        # Read and score outside any transaction: on SQLite an open one holds the store's write
        # lock, and loading models and bootstrapping intervals takes seconds.
        with session_scope(engine) as session:
            uri = _holdout_uri(session, run.project_id, spec)
            candidate, champion = resolve_pair(
                session=session,
                project_id=run.project_id,
                model_name=run.model_name,
                version=run.model_version,
            )
        module_name, _, function_name = spec.reader.partition(":")
        reader = getattr(importlib.import_module(module_name), function_name)
        holdout = reader(uri)
        if len(holdout) > spec.max_rows:
            holdout = holdout.sample(n=spec.max_rows, random_state=0)
        performance, fairness = score_pair(
            candidate=candidate,
            champion=champion,
            holdout=holdout,
            target=spec.target,
            sensitive_features=spec.sensitive_features,
            loader=loader,
        )
        with session_scope(engine) as session:
            record_evaluation(
                session=session,
                candidate=candidate,
                champion=champion,
                holdout_name=f"{uri} ({len(holdout)} rows)",
                rows=len(holdout),
                sensitive_features=spec.sensitive_features,
                performance=performance,
                fairness=fairness,
                actor=actor,
            )
        difference = performance.get("difference") or {}
        note = (
            f"evaluated version {run.model_version} on {len(holdout)} held-out rows; "
            f"candidate - champion: {json.dumps(difference, sort_keys=True)}"
        )
    except Exception as error:  # the reader is pipeline code: report whatever it raised
        detail = error.detail if isinstance(error, WardenError) else repr(error)
        note = f"evaluation failed: {detail}"
    directory = run_directory(config.data_dir, run.id)
    with (directory / "log.txt").open("a", encoding="utf-8") as log:
        log.write(f"==> {note}\n")
    with session_scope(engine) as session:
        stored = session.get(PipelineRun, run.id)
        if stored is not None:
            stored.log_tail = _log_tail(directory)
            session.add(stored)
            run.log_tail = stored.log_tail


def execute_pipeline_run(*, engine: Engine, run_id: uuid.UUID, config: RunnerConfig) -> PipelineRun:
    """Run a queued pipeline run to a final state and return it.

    Each state change commits on its own, so the API shows ``running`` while the steps run.
    A run cancelled before it started is returned unchanged.
    """
    with session_scope(engine) as session:
        try:
            run = claim_run(session=session, run_id=run_id)
        except Conflict:
            found = session.get(PipelineRun, run_id)
            assert found is not None
            return found
        pipeline = session.get(Pipeline, run.pipeline_id)
        assert pipeline is not None
        actor = _system_actor(run)
        directory = run_directory(config.data_dir, run.id)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            inputs = _dataset_inputs(session, run, pipeline, config)
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
        ingest_event(
            session=session,
            project_id=run.project_id,
            body=_lineage_event(run, pipeline, inputs, "START"),
        )
        deadline = time.monotonic() + pipeline.parsed_spec().time_limit_seconds

    outcome = _run_steps(
        engine=engine, run_id=run.id, pipeline=pipeline, context=context, config=config,
        deadline=deadline,
    )  # fmt: skip

    tail = _log_tail(directory)
    if outcome.state is PipelineRunState.SUCCEEDED:
        try:
            with session_scope(engine) as session:
                run = session.get(PipelineRun, run_id) or run
                record_trained_version(
                    session=session,
                    run=run,
                    pipeline=pipeline,
                    inputs=inputs,
                    produced=read_output(Path(context.output_path)),
                    registry=config.registry(),
                )
                finish_run(
                    session=session, run=run, state=PipelineRunState.SUCCEEDED, actor=actor,
                    exit_code=0, log_tail=tail,
                )  # fmt: skip
        except (WardenError, ValueError) as error:
            detail = error.detail if isinstance(error, WardenError) else str(error)
            outcome = _StepOutcome(
                PipelineRunState.FAILED, f"recording the result failed: {detail}", 0
            )
        else:
            _evaluate(engine=engine, run=run, pipeline=pipeline, config=config, actor=actor)
            return run

    with session_scope(engine) as session:
        run = session.get(PipelineRun, run_id) or run
        ingest_event(
            session=session,
            project_id=run.project_id,
            body=_lineage_event(
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


def pipeline_handler(config: RunnerConfig) -> Handler:
    """Return the worker handler for ``pipeline_run`` jobs, bound to where runs keep files.

    Register it in the worker's registry: ``registry.register(PIPELINE_RUN,
    pipeline_handler(RunnerConfig(data_dir=…, tracking_uri=settings.resolved_mlflow_uri())))``.
    """

    def handle(context: JobContext) -> dict[str, Any]:
        run_id = uuid.UUID(str(context.payload["run_id"]))
        context.log(f"pipeline run {run_id}: starting")
        run = execute_pipeline_run(engine=context.engine, run_id=run_id, config=config)
        context.log(f"pipeline run {run_id}: {run.state}")
        return {"run_id": str(run.id), "state": run.state, "model_version": run.model_version}

    return handle
