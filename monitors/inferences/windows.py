"""Reading logged inferences back: a deployment slot's window, or one logged request.

A monitor reads a window with :func:`read_window`: the inference partitions of a deployment
slot overlapping ``[start, end)``, filtered by record time, with labels joined by request id; a
local explanation reads one logged record with :func:`read_inference`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from lineage.errors import NotFound
from lineage.models import Deployment
from lineage.storage import ObjectStore, read_parquet

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
from monitors.inferences.partitions import BatchKind, InferenceBatch, InferenceKey, partition_key

__all__ = ["read_inference", "read_window", "slot_deployments"]


def slot_deployments(*, session: Session, deployment: Deployment) -> list[Deployment]:
    """Return every deployment of the same slot (name, environment): one per version served."""
    return list(
        session.exec(
            select(Deployment).where(
                Deployment.project_id == deployment.project_id,
                Deployment.name == deployment.name,
                Deployment.environment == deployment.environment,
            )
        ).all()
    )


def _batches(
    session: Session, deployment_ids: Iterable[uuid.UUID], kind: BatchKind
) -> list[InferenceBatch]:
    return list(
        session.exec(
            select(InferenceBatch)
            .where(col(InferenceBatch.deployment_id).in_(list(deployment_ids)))
            .where(InferenceBatch.kind == kind)
            .order_by(col(InferenceBatch.created_at))
        ).all()
    )


def read_window(
    *,
    session: Session,
    store: ObjectStore,
    deployment: Deployment,
    start: datetime | None,
    end: datetime | None,
) -> tuple[pd.DataFrame, list[uuid.UUID]]:
    """Return the inferences of a deployment's slot with ``start <= time < end``, labels joined.

    Every version that served in the slot counts, so a monitor keeps watching after a
    promotion. Columns: ``request_id``, ``time``, the features, ``prediction``, ``score``,
    ``probabilities`` and ``label`` (null where no label arrived yet).

    Returns:
        The window and the ids of the inference batches it read (what lineage records).
    """
    import pandas as pd

    slot = [d.id for d in slot_deployments(session=session, deployment=deployment)]
    used: list[uuid.UUID] = []
    tables: list[pa.Table] = []
    for batch in _batches(session, slot, "inferences"):
        if start is not None and batch.last_at is not None and batch.last_at < start:
            continue
        if end is not None and batch.first_at is not None and batch.first_at >= end:
            continue
        table = _within(read_parquet(store, _key(batch, "inferences")), start, end)
        if table.num_rows:
            tables.append(table)
            used.append(batch.id)
    window = (
        _concat(tables) if tables else pd.DataFrame({"request_id": pd.Series([], dtype=object)})
    )
    labels = [
        read_parquet(store, _key(batch, "labels")).to_pandas()
        for batch in _batches(session, slot, "labels")
    ]
    if labels and len(window):
        joined = pd.concat(labels, ignore_index=True).drop_duplicates("request_id")
        window = window.merge(joined, on="request_id", how="left")
    else:
        window["label"] = pd.Series([None] * len(window), dtype=object)
    return window, used


def _key(batch: InferenceBatch, kind: BatchKind) -> str:
    return partition_key(
        project_id=batch.project_id,
        deployment_id=batch.deployment_id,
        kind=kind,
        batch_id=batch.id,
    )


def _within(table: pa.Table, start: datetime | None, end: datetime | None) -> pa.Table:
    """Keep the rows of a partition with ``start <= time < end`` (Arrow, no per-row Python)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if start is None and end is None:
        return table
    time = table.column("time")
    keep = None
    if start is not None:
        keep = pc.greater_equal(time, pa.scalar(start, type=time.type))
    if end is not None:
        before = pc.less(time, pa.scalar(end, type=time.type))
        keep = before if keep is None else pc.and_(keep, before)
    return table.filter(keep)


def _concat(tables: list[pa.Table]) -> pd.DataFrame:
    """Return the partitions as one frame, converted once.

    Partitions written by different batches may differ (a column all null in one, text in
    another; attributions only in some): Arrow unifies them. Where it cannot (one batch logged
    text where another logged numbers), each converts alone and pandas keeps objects.
    """
    import pandas as pd
    import pyarrow as pa

    try:
        frame: pd.DataFrame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        frame = pd.concat([table.to_pandas() for table in tables], ignore_index=True)
    return frame


def read_inference(
    *, session: Session, store: ObjectStore, deployment: Deployment, request_id: str
) -> pd.DataFrame:
    """Return the one logged inference of ``request_id`` as a one-row frame (window columns).

    The request id's key row names the batch that stored it, so exactly one partition is read.

    Raises:
        NotFound: The deployment logged no inference with this request id.
    """
    key = session.exec(
        select(InferenceKey).where(
            InferenceKey.deployment_id == deployment.id, InferenceKey.request_id == request_id
        )
    ).first()
    batch = None if key is None else session.get(InferenceBatch, key.batch_id)
    if batch is None:
        raise NotFound(f"deployment {deployment.id} logged no inference {request_id!r}")
    frame: pd.DataFrame = read_parquet(
        store, _key(batch, "inferences"), filters=[("request_id", "==", request_id)]
    ).to_pandas()
    if len(frame) != 1:  # pragma: no cover - the key is written with its record
        raise NotFound(f"inference {request_id!r} is listed but not stored in batch {batch.id}")
    return frame.reset_index(drop=True)
