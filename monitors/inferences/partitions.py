"""Where logged inferences are kept: batch and key rows, and each batch's Parquet partition.

Each accepted batch is one Parquet object in the artifact store (:mod:`lineage.storage`: the data
directory or a bucket), under a key made of ids only (:func:`partition_key`), plus one
``monitors_inference_batch`` row that lists it. A batch's request ids are one
``monitors_request_run`` row of its kind (sorted id hashes, :mod:`monitors.inferences.runs`), so
a re-sent request id counts once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from lineage.tables import AwareDateTime, Record

__all__ = [
    "BatchKind",
    "InferenceBatch",
    "InferenceKey",
    "LabelKey",
    "RequestRun",
    "partition_key",
]

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
    """A request id logged for a deployment, one key row each: no longer written.

    Since ``runtime_0008`` inference request ids are :class:`RequestRun` rows (the migration
    moved these rows there; its downgrade writes them back, hence the table).
    """

    __tablename__ = "monitors_inference_key"
    __table_args__ = {"sqlite_with_rowid": False}

    deployment_id: uuid.UUID = SQLField(foreign_key="lineage_deployment.id", primary_key=True)
    request_id: str = SQLField(sa_column=sa.Column(sa.String(200), primary_key=True))
    batch_id: uuid.UUID = SQLField(nullable=False)


class RequestRun(SQLModel, table=True):
    """The request ids one batch stored: sorted 64-bit hashes and the ids in that order.

    What de-duplicates request ids (:mod:`monitors.inferences.runs`): one row per batch instead
    of one index entry per id; ``kind`` (a :data:`BatchKind`) keeps inference and label runs
    apart. ``seq`` orders the runs of a deployment and kind as they were committed (its writers
    queue), so a process reads only the runs written since. ``offsets`` and ``ids`` are an
    Arrow text column's buffers (int32 offsets, UTF-8 bytes). ``kind``'s server default is
    what ``runtime_0009`` gave the runs already stored (no table rewrite); writers always set it.
    """

    __tablename__ = "monitors_request_run"
    __table_args__ = (
        sa.Index("ix_monitors_request_run_deployment_kind_seq", "deployment_id", "kind", "seq"),
    )

    seq: int | None = SQLField(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
    )
    deployment_id: uuid.UUID = SQLField(foreign_key="lineage_deployment.id", nullable=False)
    kind: str = SQLField(
        sa_column=sa.Column(sa.String(16), nullable=False, server_default="inferences")
    )
    batch_id: uuid.UUID = SQLField(nullable=False)
    hashes: bytes = SQLField(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    offsets: bytes = SQLField(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    ids: bytes = SQLField(sa_column=sa.Column(sa.LargeBinary(), nullable=False))


class LabelKey(SQLModel, table=True):
    """A request id labelled for a deployment, one key row each: no longer written.

    Since ``runtime_0009`` label request ids are :class:`RequestRun` rows of kind ``labels``
    (the migration moved these rows there; its downgrade writes them back, hence the table).
    """

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
