"""Import an existing MLflow registry into lineage: ``warden lineage sync-mlflow``.

Teams adopting Warden already have registered models. For every registered version this records,
in one project, what Warden would have recorded had it trained the version itself:

* the source run, as an OpenLineage ``COMPLETE`` event (job ``mlflow/experiment-<id>``, run id =
  the MLflow run id read as a UUID), with the run's logged input datasets as inputs — each at the
  version MLflow digested — so lineage links data in → run;
* the model version (artifact ``models:/name/version``, the artifact hash computed now, the
  feature and output schemas read from the model's MLflow signature, parameters and metrics of
  the run), linked run → model version. A model logged without a signature gets empty schemas;
  its first inference batch then fixes the columns, or a schema revision adds them.

It is idempotent: a version already in lineage is skipped, and the lineage event is built only
from data MLflow stores (times included), so a replay is recognised as the same event.
Versions Warden cannot take (a name that is not a slug, a version whose artifacts cannot be
downloaded) are reported, not guessed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from governance import Actor, append
from lineage.errors import WardenError
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import ModelVersion
from lineage.openlineage_events import DatasetRef, emit, run_event
from retrain.mlflow_registry import ModelVersionInfo, Registry, RunInfo

__all__ = ["SyncReport", "sync_mlflow"]


@dataclass
class SyncReport:
    """What a sync did: versions imported, versions already known, versions refused and why."""

    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _run_event(run: RunInfo) -> dict[str, Any]:
    at = run.ended_at or run.started_at or datetime.fromtimestamp(0, UTC)
    inputs = [
        DatasetRef(
            namespace="file" if item.source_type == "local" else item.source_type or "mlflow",
            name=item.source or item.name,
            version=item.digest,
        )
        for item in run.inputs
    ]
    return run_event(
        event_type="COMPLETE" if run.status == "FINISHED" else "FAIL",
        event_time=at,
        run_id=uuid.UUID(hex=run.run_id),
        job_namespace="mlflow",
        job_name=f"experiment-{run.experiment_id}",
        inputs=inputs,
    )


def _known(session: Session, project_id: uuid.UUID, info: ModelVersionInfo) -> bool:
    found = session.exec(
        select(ModelVersion.id).where(
            ModelVersion.project_id == project_id,
            ModelVersion.name == info.name,
            ModelVersion.version == info.version,
        )
    ).first()
    return found is not None


def _import_version(
    session: Session, project_id: uuid.UUID, registry: Registry, info: ModelVersionInfo
) -> None:
    run = registry.run(info.run_id) if info.run_id else None
    source_run_id: uuid.UUID | None = None
    if run is not None:
        emit(session=session, project_id=project_id, event=_run_event(run))
        source_run_id = uuid.UUID(hex=run.run_id)
    digest, inputs, outputs = registry.artifact_facts(info.name, info.version)
    register_model_version(
        session=session,
        project_id=project_id,
        name=info.name,
        spec=ModelVersionCreate.model_validate(
            {
                "version": info.version,
                "source_run_id": source_run_id,
                "artifact_uri": f"models:/{info.name}/{info.version}",
                "artifact_sha256": digest,
                "feature_schema": inputs,
                "output_schema": outputs,
                "parameters": dict(run.params) if run else {},
                "metrics": dict(run.metrics) if run else {},
                "description": f"imported from MLflow ({registry.tracking_uri.split('://')[0]})",
            }
        ),
    )


def sync_mlflow(
    *,
    session: Session,
    project_id: uuid.UUID,
    registry: Registry,
    actor: Actor,
    model_names: list[str] | None = None,
) -> SyncReport:
    """Import every registered version (of ``model_names`` when given) not yet in lineage.

    Each version is imported in a savepoint, so one refused version leaves the others imported.
    One audit entry ``lineage.sync_mlflow`` records the outcome.
    """
    report = SyncReport()
    names = model_names if model_names is not None else registry.registered_model_names()
    for name in names:
        for info in registry.model_versions(name):
            label = f"{info.name}/{info.version}"
            if _known(session, project_id, info):
                report.skipped.append(label)
                continue
            try:
                with session.begin_nested():
                    _import_version(session, project_id, registry, info)
            except WardenError as error:
                report.refused[label] = error.detail
                continue
            report.imported.append(label)
    append(
        session=session,
        actor=actor,
        action="lineage.sync_mlflow",
        target=f"mlflow:{registry.tracking_uri.split('://')[0]}",
        detail={
            "imported": len(report.imported),
            "skipped": len(report.skipped),
            "refused": len(report.refused),
        },
        project_id=project_id,
    )
    return report
