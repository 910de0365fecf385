"""Where logged inferences are kept: batch and key rows, and each batch's Parquet partition.

Each accepted batch is one Parquet object in the artifact store (:mod:`lineage.storage`: the data
directory or a bucket), under a key made of ids only (:func:`partition_key`), plus one
``monitors_inference_batch`` row that lists it and one key row per request id. The key tables'
primary key is ``(deployment_id, request_id)``, so a re-sent request id is counted once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from lineage.tables import AwareDateTime, Record

__all__ = ["BatchKind", "InferenceBatch", "InferenceKey", "LabelKey", "partition_key"]

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


class InferenceKey(SQLModel, table=True):
    """A request id logged for a deployment: what makes a re-sent inference count once.

    Keyed by the pair itself and nothing else: a key row is one index entry (``WITHOUT ROWID``
    on SQLite). ``batch_id`` is read only through the key, so it has no index, and no foreign
    key either (the batch row is written in the same transaction, just before its keys): each
    would cost every logged inference one more B-tree probe or insert.
    """

    __tablename__ = "monitors_inference_key"
    __table_args__ = {"sqlite_with_rowid": False}

    deployment_id: uuid.UUID = SQLField(foreign_key="lineage_deployment.id", primary_key=True)
    request_id: str = SQLField(sa_column=sa.Column(sa.String(200), primary_key=True))
    batch_id: uuid.UUID = SQLField(nullable=False)


class LabelKey(SQLModel, table=True):
    """A request id labelled for a deployment: the first label wins, re-sent ones count once."""

    __tablename__ = "monitors_label_key"
    __table_args__ = {"sqlite_with_rowid": False}

    deployment_id: uuid.UUID = SQLField(foreign_key="lineage_deployment.id", primary_key=True)
    request_id: str = SQLField(sa_column=sa.Column(sa.String(200), primary_key=True))
    batch_id: uuid.UUID = SQLField(nullable=False)


def partition_key(
    *, project_id: uuid.UUID, deployment_id: uuid.UUID, kind: str, batch_id: uuid.UUID
) -> str:
    """Return a batch's key in the artifact store: ids only, never a client's string."""
    return f"inferences/{project_id}/{deployment_id}/{kind}/{batch_id}.parquet"
