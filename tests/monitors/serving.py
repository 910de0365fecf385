"""Test helpers: an Adult model version live in a deployment, and inference records from rows."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from lineage.deployments import DeploymentCreate, record_deployment
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import Dataset, DatasetVersion, Deployment
from lineage.projects import create_project
from lineage.store import session_scope
from tests.adult import CATEGORICAL, FEATURES, NUMERIC

SCHEMA = {**{name: "integer" for name in NUMERIC}, **{name: "category" for name in CATEGORICAL}}


def adult_deployment(
    engine: Engine, *, project: str = "acme", project_id: uuid.UUID | None = None
) -> Deployment:
    """Register the Adult income model (feature schema of the Adult columns) and deploy it."""
    with session_scope(engine) as session:
        if project_id is None:
            project_id = create_project(session=session, name=project).id
        register_model_version(
            session=session,
            project_id=project_id,
            name="income",
            spec=ModelVersionCreate(
                artifact_uri="models:/income/1", artifact_sha256="0" * 64, feature_schema=SCHEMA
            ),
        )
        return record_deployment(
            session=session,
            project_id=project_id,
            spec=DeploymentCreate(
                name="income-api", environment="production", model_name="income", model_version="1"
            ),
        )


def _cell(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def records(
    frame: pd.DataFrame,
    *,
    predictions: Any = None,
    scores: Any = None,
    prefix: str = "r",
    time: datetime | None = None,
    context: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Return JSON-ready inference records for the rows of ``frame`` (ids ``<prefix><row>``).

    ``context`` maps a context name to the column of ``frame`` it is sent from (``{"segment":
    "workclass"}`` logs ``context.segment``, judged as ``segment``).
    """
    out: list[dict[str, Any]] = []
    for position, (_, row) in enumerate(frame.iterrows()):
        record: dict[str, Any] = {
            "request_id": f"{prefix}{position}",
            "features": {name: _cell(row[name]) for name in FEATURES},
        }
        if context:
            record["context"] = {name: _cell(row[column]) for name, column in context.items()}
        if predictions is not None:
            record["prediction"] = _cell(predictions[position])
        if scores is not None:
            record["score"] = float(scores[position])
        if time is not None:
            record["time"] = time.isoformat()
        out.append(record)
    return out


def dataset_version(engine: Engine, project_id: uuid.UUID, uri: str) -> uuid.UUID:
    """Record a dataset version at ``uri`` in lineage (as an OpenLineage run would have)."""
    with session_scope(engine) as session:
        dataset = Dataset(project_id=project_id, namespace="file", name="adult/train")
        session.add(dataset)
        session.flush()
        version = DatasetVersion(
            project_id=project_id, dataset_id=dataset.id, version="v1", uri=uri
        )
        session.add(version)
        session.flush()
        return version.id


def logged_ids(engine: Engine, kind: str = "inferences") -> int:
    """Return how many request ids of ``kind`` the store keys (every deployment's runs)."""
    import sqlalchemy as sa

    with engine.connect() as connection:
        total = connection.execute(
            sa.text(
                "SELECT coalesce(sum(length(hashes)), 0) FROM monitors_request_run "
                "WHERE kind = :kind"
            ),
            {"kind": kind},
        ).scalar_one()
    return int(total) // 8
