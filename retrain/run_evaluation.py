"""Score a pipeline's new version beside the champion, with the reader and models sandboxed.

The pipeline's reader and both models' files are project code: they run in the sandbox, which
writes the held-out labels, sensitive columns and predictions to Parquet in its output folder;
the worker reads that file back (footer first) and computes the metrics
(:func:`~retrain.evaluation.score_predictions`).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from governance import Actor
from lineage.errors import InvalidInput, WardenError
from lineage.models import DatasetVersion
from lineage.store import session_scope
from retrain.evaluation import record_evaluation, resolve_pair, score_predictions
from retrain.pipelines import EvaluationSpec, Pipeline, PipelineRun, PipelineRunState
from retrain.promotion import mark_challenger
from retrain.runner_config import RunnerConfig, readable_file, run_directory
from retrain.sandbox import SandboxSpec
from retrain.supervision import SandboxGrant, log_tail, sandbox_env, supervise

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["evaluate_candidate"]


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


def evaluate_candidate(
    *, engine: Engine, run: PipelineRun, pipeline: Pipeline, config: RunnerConfig, actor: Actor,
    sandbox: SandboxGrant,
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
        holdout = readable_file(config, uri, field="evaluation.holdout_uri")
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
        outcome = supervise(
            engine=engine, run_id=run.id, label="evaluation", argv=argv,
            spec=SandboxSpec(
                argv=argv, env=sandbox_env(config), cwd=out,
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
        shutil.rmtree(out, ignore_errors=True)  # no half-scored rows kept with the run
    finally:
        shutil.rmtree(models, ignore_errors=True)
    with (directory / "log.txt").open("a", encoding="utf-8") as log:
        log.write(f"==> {note}\n")
    with session_scope(engine) as session:
        stored = session.get(PipelineRun, run.id)
        if stored is not None:
            stored.log_tail = log_tail(directory)
            session.add(stored)
            run.log_tail = stored.log_tail
