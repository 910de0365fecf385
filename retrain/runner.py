"""Execute a pipeline run: sandboxed steps with captured logs, a time limit and cancellation.

:func:`execute_pipeline_run` is what the worker's ``pipeline_run`` handler calls (see
:func:`pipeline_handler`). It claims the run (queued → running), resolves the training data to
files, then starts each step through the configured :class:`~retrain.sandbox.StepExecutor`
(bubblewrap by default): the step sees its inputs read-only, its output folder
``<data_dir>/pipelines/runs/<run id>/out`` read-write, a scrubbed environment and no network
unless the operator allows it for the project — never the keys, the database, MLflow's store or
another project's data. Files named by the pipeline (dataset version URIs, absolute paths in
parameters, the held-out data) are exposed only if they lie under the operator's
``readable_roots``; anything else fails the run, naming the field. Output is captured to
``<run dir>/log.txt`` (paths come from ids, never from user strings). While a step runs, the
runner polls for the run's ``cancel_requested`` flag and its deadline; either stops the step's
process group (SIGTERM, then SIGKILL after a grace period), and the sandbox dies with the worker.

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

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance import Actor
from lineage.errors import Conflict, InvalidInput, Unavailable, WardenError
from lineage.models import Dataset, DatasetVersion, Deployment
from lineage.openlineage_events import emit
from lineage.projects import Project
from lineage.runtime.handlers import Handler, JobContext
from lineage.runtime.queue import RuntimeJob
from lineage.store import session_scope
from monitors.inferences import read_window
from retrain.evaluation import record_evaluation, resolve_pair, score_predictions
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
from retrain.promotion import mark_challenger
from retrain.sandbox import BubblewrapExecutor, SandboxSpec, StepExecutor, source_root
from retrain.step import CONTEXT_ENV, StepContext, TrainingInput, read_output
from retrain.trained_versions import (
    LINEAGE_NAMESPACE,
    pipeline_run_event,
    record_trained_version,
    register_step_model,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LINEAGE_NAMESPACE",
    "RunnerConfig",
    "execute_pipeline_run",
    "pipeline_handler",
    "run_directory",
]


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """Where runs keep their files, which MLflow the worker logs to, and how code is isolated.

    Attributes:
        data_dir: Warden's artifact store; run directories live below it. Steps never see it.
        tracking_uri: The MLflow tracking and registry URI the worker registers versions in.
        python: The interpreter entry-point steps run in.
        poll_seconds: How often to check for exit, cancellation and the deadline.
        kill_grace_seconds: How long a stopped step may take to exit before SIGKILL.
        executor: Starts project code in a sandbox (bubblewrap unless configured otherwise).
        readable_roots: Host folders whose files pipelines may name as inputs (dataset version
            URIs, absolute paths in parameters, held-out data); exposed read-only. None may be,
            or contain, the data directory or a protected path.
        protected: Further paths no step may see even under a readable root (the database
            file, key files kept outside the data directory).
        network_projects: Project ids or names whose steps may use the network (default none).
        code_paths: Folders of project code (packages a deployment installs for its steps and
            readers) put on the sandbox's ``PYTHONPATH``, read-only.
        max_model_bytes: The largest model folder a step may hand over.
    """

    data_dir: Path
    tracking_uri: str
    python: str = sys.executable
    poll_seconds: float = 0.2
    kill_grace_seconds: float = 5.0
    executor: StepExecutor = field(default_factory=BubblewrapExecutor)
    readable_roots: tuple[Path, ...] = ()
    protected: tuple[Path, ...] = ()
    network_projects: frozenset[str] = frozenset()
    code_paths: tuple[Path, ...] = ()
    max_model_bytes: int = 2 * 1024**3

    def __post_init__(self) -> None:
        for root in (*self.readable_roots, *self.code_paths):
            resolved = root.resolve()
            if any(_overlaps(resolved, guarded) for guarded in self.guarded_paths()):
                raise InvalidInput(
                    f"sandbox read root {root} is, contains or lies in Warden's data directory "
                    "or a protected path; name the folders holding training data only",
                    field="sandbox_read_roots",
                )

    def guarded_paths(self) -> list[Path]:
        """Return what no step may see: the data dir's keys, stores, runs, and ``protected``."""
        data = self.data_dir.resolve()
        guarded = [data / "keys", data / "pipelines", data / "models", data / "mlflow-artifacts"]
        guarded += [path.resolve() for path in self.protected]
        if self.tracking_uri.startswith("sqlite:///"):
            guarded.append(Path(self.tracking_uri.removeprefix("sqlite:///")).resolve())
        guarded += [p.resolve() for p in data.glob("*.db*")] if data.is_dir() else []
        return guarded

    def registry(self) -> Registry:
        """Return the MLflow adapter for this configuration."""
        return Registry(tracking_uri=self.tracking_uri, artifact_root=self.artifact_root)

    @property
    def artifact_root(self) -> Path:
        """Return where Warden-created MLflow experiments keep their artifacts."""
        return self.data_dir / "mlflow-artifacts"


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def run_directory(data_dir: Path, run_id: uuid.UUID) -> Path:
    """Return the directory of a run's context, output and log (derived from its id only)."""
    return data_dir / "pipelines" / "runs" / str(run_id)


def _readable(config: RunnerConfig, uri: str, *, field: str) -> Path | None:
    """Return the host file a pipeline names, if a step may read it; ``None`` for a URL.

    Raises:
        InvalidInput: A local path outside every readable root, or a guarded one.
    """
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme and scheme != "file":
        return None  # read over the network by the step, if the project may use it
    raw = Path(uri.removeprefix("file://"))
    path = (raw if raw.is_absolute() else config.data_dir / raw).resolve()
    roots = [root.resolve() for root in config.readable_roots]
    allowed = path.exists() and any(path.is_relative_to(root) for root in roots)
    if not allowed or any(_overlaps(path, guarded) for guarded in config.guarded_paths()):
        raise InvalidInput(
            f"{field}: {uri!r} is not a file pipelines may read: steps see only files under the "
            "operator's sandbox read roots (WARDEN_SANDBOX_READ_ROOTS), never Warden's data "
            "directory; register the data there or upload it as a dataset",
            field=field,
        )
    return path


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
        found = _readable(config, item.uri, field=f"training_data.dataset_version_ids.{index}")
        if found is not None:
            paths.append(found)
    for name, value in sorted(run.parameters.items()):
        if isinstance(value, str) and (value.startswith("/") or value.startswith("file://")):
            found = _readable(config, value, field=f"parameters.{name}")
            if found is not None:
                paths.append(found)
    return paths


def _network(session: Session, config: RunnerConfig, project_id: uuid.UUID) -> bool:
    if not config.network_projects:
        return False
    project = session.get(Project, project_id)
    names = {str(project_id), project.name if project is not None else ""}
    return bool(names & config.network_projects)


def _sandbox_env(config: RunnerConfig, context_path: Path | None = None) -> dict[str, str]:
    """The whole environment of project code: built from nothing, no WARDEN_* settings."""
    env = {
        "PATH": f"{Path(config.python).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",  # noqa: S108 - the sandbox's own private tmpfs
        "TMPDIR": "/tmp",  # noqa: S108
        "LANG": "C.UTF-8",
        "PYTHONPATH": ":".join([*map(str, config.code_paths), str(source_root())]),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }
    if context_path is not None:
        env[CONTEXT_ENV] = str(context_path)
    return env


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


@dataclass(frozen=True, slots=True)
class _Sandbox:
    """What every piece of one run's code may see (see :class:`~retrain.sandbox.SandboxSpec`)."""

    read_only: tuple[Path, ...]
    network: bool
    hidden: tuple[Path, ...]


def _supervise(
    *, engine: Engine, run_id: uuid.UUID, label: str, argv: list[str], spec: SandboxSpec,
    log_path: Path, config: RunnerConfig, deadline: float, time_limit: int,
) -> _StepOutcome:  # fmt: skip
    """Start one piece of project code in the sandbox and wait for it, the deadline or a cancel."""
    with log_path.open("ab") as log:
        log.write(f"==> {label}: {' '.join(argv)} (sandbox: {config.executor.name})\n".encode())
        log.flush()
        if shutil.which(argv[0], path=spec.env["PATH"]) is None:
            return _StepOutcome(
                PipelineRunState.FAILED,
                f"{label} could not start: no program {argv[0]!r} in the sandbox; check its "
                "command",
            )
        try:
            process = config.executor.start(spec, log=log)
        except (OSError, Unavailable) as error:
            detail = error.detail if isinstance(error, Unavailable) else error.strerror or error
            return _StepOutcome(PipelineRunState.FAILED, f"{label} could not start: {detail}")
        last_check = 0.0
        while process.poll() is None:
            now = time.monotonic()
            if now >= deadline:
                _terminate(process, config.kill_grace_seconds)
                return _StepOutcome(
                    PipelineRunState.FAILED,
                    f"{label} exceeded the time limit of {time_limit} s and was stopped",
                )
            if now - last_check >= max(config.poll_seconds, 0.5):
                last_check = now
                if _cancel_requested(engine, run_id):
                    _terminate(process, config.kill_grace_seconds)
                    return _StepOutcome(PipelineRunState.CANCELLED, f"cancelled during {label}")
            time.sleep(config.poll_seconds)
    if process.returncode != 0:
        return _StepOutcome(
            PipelineRunState.FAILED,
            f"{label} exited with status {process.returncode}; see the log",
            process.returncode,
        )
    return _StepOutcome(PipelineRunState.SUCCEEDED, exit_code=0)


def _run_steps(
    *, engine: Engine, run_id: uuid.UUID, pipeline: Pipeline, context: StepContext,
    config: RunnerConfig, deadline: float, sandbox: _Sandbox,
) -> _StepOutcome:  # fmt: skip
    out = Path(context.work_dir)
    directory = out.parent
    context_path = directory / "context.json"
    spec = pipeline.parsed_spec()
    for step in spec.steps:
        argv = [config.python, "-m", "retrain.step", step.entrypoint] if step.entrypoint else []
        argv = argv or list(step.command or [])
        outcome = _supervise(
            engine=engine, run_id=run_id, label=f"step {step.name!r}", argv=argv,
            spec=SandboxSpec(
                argv=argv, env=_sandbox_env(config, context_path), cwd=out,
                read_only=(context_path, *sandbox.read_only), writable=(out,),
                hidden=sandbox.hidden, network=sandbox.network,
            ),
            log_path=directory / "log.txt", config=config, deadline=deadline,
            time_limit=spec.time_limit_seconds,
        )  # fmt: skip
        if outcome.state is not PipelineRunState.SUCCEEDED:
            return outcome
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


_MAX_SCORED_BYTES = 512 * 1024**2


def _read_scored(path: Path, max_rows: int) -> pd.DataFrame:
    """Read the Parquet file the sandbox wrote: no link, bounded size and rows (footer first).

    Raises:
        InvalidInput: The file is missing, a link, too large or holds too many rows.
    """
    import pyarrow.parquet as pq

    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise InvalidInput(
            f"the sandbox left no readable scored rows ({error.strerror})", field="evaluation"
        ) from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_SCORED_BYTES:
            raise InvalidInput(
                "the sandbox's scored rows are not a bounded regular file", field="evaluation"
            )
        parquet = pq.ParquetFile(handle)
        if parquet.metadata.num_rows > max_rows or parquet.metadata.num_columns > 64:
            raise InvalidInput(
                f"the sandbox returned {parquet.metadata.num_rows} rows and "
                f"{parquet.metadata.num_columns} columns; at most {max_rows} rows are scored",
                field="evaluation",
            )
        frame: pd.DataFrame = parquet.read().to_pandas()
        return frame


def _evaluate(
    *, engine: Engine, run: PipelineRun, pipeline: Pipeline, config: RunnerConfig, actor: Actor,
    sandbox: _Sandbox,
) -> None:  # fmt: skip
    """Score the new version beside the champion when the pipeline asks for it.

    The pipeline's reader and both models' files are project code: they run in the sandbox,
    which writes the held-out labels, sensitive columns and predictions to Parquet in its
    output folder; the worker reads that file back (footer first) and computes the metrics.
    The run has succeeded already: a failed evaluation is written to its log, never undone.
    """
    spec = pipeline.parsed_spec().evaluation
    if spec is None or run.model_version is None:
        return
    directory = run_directory(config.data_dir, run.id)
    scratch = (directory / "evaluation").resolve()
    models = scratch / "models"
    out = scratch / "out"
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
        holdout = _readable(config, uri, field="evaluation.holdout_uri")
        registry = config.registry()
        out.mkdir(parents=True, exist_ok=True)
        request: dict[str, Any] = {
            "reader": spec.reader, "uri": uri, "max_rows": spec.max_rows, "target": spec.target,
            "sensitive_features": list(spec.sensitive_features), "models": {},
            "output": str(out / "scored.parquet"),
        }  # fmt: skip
        for role, version in (("candidate", candidate), ("champion", champion)):
            if version is None:
                continue
            path = registry.download_verified(
                version.name, version.version, expected_hash=version.artifact_sha256,
                directory=models / role,
            )  # fmt: skip
            request["models"][role] = {"path": str(path), "feature_schema": version.feature_schema}
        request_path = scratch / "request.json"
        request_path.write_text(json.dumps(request, default=str), encoding="utf-8")
        argv = [config.python, "-m", "retrain.step", "--score", str(request_path)]
        timeout = pipeline.parsed_spec().time_limit_seconds
        outcome = _supervise(
            engine=engine, run_id=run.id, label="evaluation", argv=argv,
            spec=SandboxSpec(
                argv=argv, env=_sandbox_env(config), cwd=out,
                read_only=(
                    request_path, models, *config.code_paths, *([holdout] if holdout else []),
                ),
                writable=(out,), hidden=sandbox.hidden, network=sandbox.network,
            ),
            log_path=directory / "log.txt", config=config,
            deadline=time.monotonic() + timeout, time_limit=timeout,
        )  # fmt: skip
        if outcome.state is not PipelineRunState.SUCCEEDED:
            raise InvalidInput(outcome.error, field="evaluation")
        scored = _read_scored(out / "scored.parquet", spec.max_rows)
        performance, fairness = score_predictions(
            scored=scored,
            roles=list(request["models"]),
            target=spec.target,
            sensitive_features=spec.sensitive_features,
        )
        with session_scope(engine) as session:
            record_evaluation(
                session=session,
                candidate=candidate,
                champion=champion,
                holdout_name=f"{uri} ({len(scored)} rows)",
                rows=len(scored),
                sensitive_features=spec.sensitive_features,
                performance=performance,
                fairness=fairness,
                actor=actor,
            )
        if champion is not None:
            mark_challenger(registry=registry, candidate=candidate)
        difference = performance.get("difference") or {}
        note = (
            f"evaluated version {run.model_version} on {len(scored)} held-out rows; "
            f"candidate - champion: {json.dumps(difference, sort_keys=True)}"
        )
    except Exception as error:  # pipeline data and code: report whatever went wrong
        detail = error.detail if isinstance(error, WardenError) else repr(error)
        note = f"evaluation failed: {detail}"
    finally:
        shutil.rmtree(models, ignore_errors=True)
    with (directory / "log.txt").open("a", encoding="utf-8") as log:
        log.write(f"==> {note}\n")
    with session_scope(engine) as session:
        stored = session.get(PipelineRun, run.id)
        if stored is not None:
            stored.log_tail = _log_tail(directory)
            session.add(stored)
            run.log_tail = stored.log_tail


def _fail(
    engine: Engine, run_id: uuid.UUID, pipeline: Pipeline, inputs: list[TrainingInput],
    outcome: _StepOutcome, actor: Actor, tail: str,
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
    reason and never trained again.
    """
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
            sandbox = _Sandbox(
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
                    exit_code=0, log_tail=_log_tail(directory),
                )  # fmt: skip
        except (WardenError, ValueError) as error:
            detail = error.detail if isinstance(error, WardenError) else str(error)
            outcome = _StepOutcome(
                PipelineRunState.FAILED, f"recording the result failed: {detail}", 0
            )
        else:
            _evaluate(
                engine=engine, run=run, pipeline=pipeline, config=config, actor=actor,
                sandbox=sandbox,
            )  # fmt: skip
            return run

    return _fail(engine, run_id, pipeline, inputs, outcome, actor, _log_tail(directory))


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
