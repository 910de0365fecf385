"""Where logged inferences are kept: batch and key rows, and each batch's Parquet partition.

Each accepted batch is one Parquet file under the artifact store, at a path made of ids only
(:func:`partition_path`), plus one ``monitors_inference_batch`` row that lists it and one key
row per request id. The key tables carry a unique ``(deployment_id, request_id)`` constraint, so
a re-sent request id is counted once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
from sqlmodel import Field as SQLField

from lineage.tables import AwareDateTime, Record

if TYPE_CHECKING:
    pass

__all__ = ["BatchKind", "InferenceBatch", "InferenceKey", "LabelKey", "partition_path"]

BatchKind = Literal["inferences", "labels"]


class InferenceBatch(Record, table=True):
    """One accepted batch: a Parquet partition of inferences or labels of one deployment."""

    __tablename__ = "monitors_inference_batch"

    project_id: uuid.UUID = SQLField(foreign_key="lineage_project.id", index=True, nullable=False)
    deployment_id: uuid.UUID = SQLField(
        foreign_key="lineage_deployment.id", index=True, nullable=False
    )
    kind: str = SQLField(sa_column=sa.Column(sa.String(16), nullable=False))
    rows: int = SQLField(nullable=False)
    first_at: datetime | None = SQLField(default=None, sa_type=AwareDateTime)
    last_at: datetime | None = SQLField(default=None, sa_type=AwareDateTime)


class InferenceKey(Record, table=True):
    """A request id logged for a deployment: what makes a re-sent inference count once."""

    __tablename__ = "monitors_inference_key"
    __table_args__ = (sa.UniqueConstraint("deployment_id", "request_id"),)

    deployment_id: uuid.UUID = SQLField(foreign_key="lineage_deployment.id", nullable=False)
    request_id: str = SQLField(sa_column=sa.Column(sa.String(200), nullable=False))
    batch_id: uuid.UUID = SQLField(
        foreign_key="monitors_inference_batch.id", index=True, nullable=False
    )


class LabelKey(Record, table=True):
    """A request id labelled for a deployment: the first label wins, re-sent ones count once."""

    __tablename__ = "monitors_label_key"
    __table_args__ = (sa.UniqueConstraint("deployment_id", "request_id"),)

    deployment_id: uuid.UUID = SQLField(foreign_key="lineage_deployment.id", nullable=False)
    request_id: str = SQLField(sa_column=sa.Column(sa.String(200), nullable=False))
    batch_id: uuid.UUID = SQLField(
        foreign_key="monitors_inference_batch.id", index=True, nullable=False
    )


def partition_path(
    data_dir: Path,
    *,
    project_id: uuid.UUID,
    deployment_id: uuid.UUID,
    kind: str,
    batch_id: uuid.UUID,
) -> Path:
    """Return where a batch lives in the artifact store: ids only, never a client's string."""
    return (
        data_dir
        / "inferences"
        / str(project_id)
        / str(deployment_id)
        / kind
        / f"{batch_id}.parquet"
    )
