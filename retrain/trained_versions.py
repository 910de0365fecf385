"""What a pipeline run produced: its model logged to MLflow, its version and provenance in lineage.

The worker calls :func:`register_step_model` once the steps are done (the sandboxed steps never
see MLflow), then :func:`record_trained_version` records data in → run → model version out, with
the artifact's hash, in the run's transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from lineage.errors import InvalidInput
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import ModelVersion
from lineage.openlineage_events import DatasetRef, EventType, emit, run_event
from lineage.tables import utcnow
from retrain.mlflow_registry import Registry, TrainingRecord
from retrain.pipelines import (
    Pipeline,
    PipelineRun,
)
from retrain.step import TrainingInput, checked_tree

if TYPE_CHECKING:
    pass

__all__ = [
    "LINEAGE_NAMESPACE",
    "pipeline_run_event",
    "record_trained_version",
    "register_step_model",
]

LINEAGE_NAMESPACE = "warden"
"""The OpenLineage namespace of Warden's own pipeline jobs."""


def pipeline_run_event(
    run: PipelineRun, pipeline: Pipeline, inputs: list[TrainingInput], state: EventType
) -> dict[str, Any]:
    """Return the OpenLineage event of a pipeline run in ``state``, with the data it read."""
    return run_event(
        event_type=state,
        event_time=utcnow(),
        run_id=run.id,
        job_namespace=LINEAGE_NAMESPACE,
        job_name=f"pipeline/{pipeline.name}",
        inputs=[DatasetRef(item.namespace, item.name, version=item.version) for item in inputs],
    )


def register_step_model(
    *,
    registry: Registry,
    run_id: str,
    pipeline: str,
    model_name: str,
    out_dir: Path,
    produced: dict[str, Any],
    max_model_bytes: int = 2 * 1024**3,
) -> dict[str, Any]:
    """Log the model a step saved to MLflow and register a version (the worker does this).

    The folder is checked first (:func:`retrain.step.checked_tree`): no links, regular files
    only, bounded size. Returns ``produced`` with ``mlflow_run_id`` and ``model_version`` set.

    Raises:
        InvalidInput: No step saved a model, or the folder is refused.
    """
    relative = produced.get("model_dir")
    if not relative or not isinstance(relative, str):
        raise InvalidInput(
            "no step saved a model (model_dir in its output); a pipeline run must produce one",
            field="steps",
        )
    try:
        model_dir = checked_tree(out_dir, relative, max_bytes=max_model_bytes)
    except ValueError as error:
        raise InvalidInput(str(error), field="steps") from None
    datasets = tuple(
        {"name": str(item["name"]), "source": str(item["source"]), "digest": str(item["digest"])}
        for item in produced.get("datasets", [])
        if isinstance(item, dict) and {"name", "source", "digest"} <= item.keys()
    )
    params = produced.get("parameters", {})
    metrics = produced.get("metrics", {})
    if not isinstance(params, dict) or not isinstance(metrics, dict):
        raise InvalidInput("a step's parameters and metrics must be JSON objects", field="steps")
    mlflow_run_id, version = registry.record_training(
        TrainingRecord(
            experiment=f"warden/{model_name}",
            run_name=pipeline,
            registered_name=model_name,
            model_dir=model_dir,
            tags={"warden.pipeline_run_id": run_id, "warden.pipeline": pipeline},
            params={str(k): v for k, v in params.items() if isinstance(v, str | int | float)},
            metrics={
                str(k): float(v)
                for k, v in metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            },
            datasets=datasets,
        )
    )
    return {**produced, "mlflow_run_id": mlflow_run_id, "model_version": version}


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
            "no step saved a model (model_dir in its output); a pipeline run must produce one",
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
    emit(
        session=session,
        project_id=run.project_id,
        event=pipeline_run_event(run, pipeline, read, "COMPLETE"),
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
