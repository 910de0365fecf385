"""Reading logged inferences back: a deployment slot's window, or one logged request.

A monitor reads a window with :func:`read_window`: the inference partitions of a deployment
slot overlapping ``[start, end)``, filtered by record time, with labels joined by request id; a
local explanation reads one logged record with :func:`read_inference`. A run that summarises on
Spark reads no row here: :func:`window_objects` describes the same partitions (keys, row count,
column schema) from the database and the objects' footers, and :class:`WindowView` is what a
kind judges of them, read in place by Spark's tasks (:mod:`monitors.spark_engine`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from lineage.errors import NotFound
from lineage.models import Deployment
from lineage.storage import ObjectStore, parquet_metadata, read_parquet, read_parquet_columns
from monitors.engine import FIRST_SEEN, ObjectWindow, dictionary_codes

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
from monitors.inferences.partitions import BatchKind, InferenceBatch, partition_key
from monitors.inferences.runs import batch_of

__all__ = [
    "WindowObjects",
    "WindowParts",
    "WindowView",
    "read_inference",
    "read_window",
    "slot_deployments",
    "window_objects",
    "window_parts",
    "within",
]


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


def _overlapping(
    session: Session, slot: Iterable[uuid.UUID], start: datetime | None, end: datetime | None
) -> list[InferenceBatch]:
    """Return the slot's inference batches whose record times may fall in ``[start, end)``."""
    return [
        batch
        for batch in _batches(session, slot, "inferences")
        if not (start is not None and batch.last_at is not None and batch.last_at < start)
        and not (end is not None and batch.first_at is not None and batch.first_at >= end)
    ]


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
    for batch in _overlapping(session, slot, start, end):
        table = within(read_parquet(store, _key(batch, "inferences")), start, end)
        if table.num_rows:
            tables.append(table)
            used.append(batch.id)
    window = (
        _concat(tables) if tables else pd.DataFrame({"request_id": pd.Series([], dtype=object)})
    )
    if tables and "probabilities" not in window.columns:  # uploads kept as they came have none
        window["probabilities"] = pd.Series([None] * len(window), dtype=object)
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


@dataclass(frozen=True, slots=True)
class _Part:
    """One partition with rows in the window: its key, its columns, which of its rows count."""

    key: str
    metadata: pq.FileMetaData
    names: tuple[str, ...]
    text: frozenset[str]
    """The columns it stores as plain text (not dictionary-encoded in its Arrow schema)."""
    keep: pa.ChunkedArray | None
    """The rows inside the window (``None``: every row, the batch lies wholly inside)."""


@dataclass(frozen=True, slots=True)
class WindowParts:
    """The partitions :func:`read_window` would read, known from their footers.

    No value is read to know them but the record times of a batch straddling a bound.

    A run that judges a few columns reads only those (:meth:`read`), columnar, where
    :func:`read_window` reads every column, request ids included, into pandas.

    Attributes:
        names: Every stored column of the partitions with rows in the window, in the order
            :func:`read_window`'s frame has them (labels aside: none is joined here).
        batches: The ids of those partitions' batches (what lineage records).
        rows: The rows in the window.
    """

    parts: tuple[_Part, ...]
    names: tuple[str, ...]
    batches: tuple[uuid.UUID, ...]
    rows: int

    def read(
        self, store: ObjectStore, columns: list[str], *, codes: Collection[str] = ()
    ) -> pa.Table | pd.DataFrame:
        """Return the window's ``columns`` (those stored), its rows only, partitions joined.

        Arrow, chunk per partition, nothing copied; where Arrow cannot unify the partitions
        (one batch logged text where another logged numbers) the frame :func:`read_window`
        would give, of these columns only.

        ``codes`` names text columns to count rather than read: those every partition stores
        as text come as dictionary codes, never decoded, each chunk's dictionary holding its
        values in the order they first occur, and their field says so (:data:`FIRST_SEEN`).
        """
        import pyarrow as pa

        if not any(name in self.names for name in columns):  # rows alone: Arrow keeps them so
            return pa.table({"rows": pa.nulls(self.rows)}).select([])
        coded = [
            name
            for name in columns
            if name in codes and all(name in p.text for p in self.parts if name in p.names)
        ]
        tables = []
        for part in self.parts:
            present = [name for name in columns if name in part.names]
            table = read_parquet_columns(
                store,
                part.key,
                columns=present,
                metadata=part.metadata,
                dictionary=[name for name in coded if name in present],
            )
            tables.append(table if part.keep is None else table.filter(part.keep))
        joined = _joined(tables)
        if isinstance(joined, pa.Table):
            for name in coded:
                index = joined.schema.get_field_index(name)
                if index >= 0 and pa.types.is_dictionary(joined.schema.field(index).type):
                    column = _first_seen(joined.column(index))
                    field = joined.schema.field(index).with_metadata(FIRST_SEEN)
                    joined = joined.set_column(index, field, column)
        return joined


def _first_seen(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Return the column with each chunk's dictionary its values present, in first-seen order.

    A dictionary read from Parquet is usually that already: checked for every chunk at once
    (:func:`monitors.engine.dictionary_codes` lays their codes end to end, each chunk's above
    the previous one's: they must start at 0, climb by one at most, and use every value).
    Where not, each chunk that is not is decoded and encoded again.
    """
    import pyarrow as pa

    if _in_first_seen_order(column):
        return column
    fixed = [
        chunk
        if _in_first_seen_order(pa.chunked_array([chunk], type=column.type))
        else chunk.dictionary_decode().dictionary_encode().cast(column.type)
        for chunk in column.chunks
    ]
    return pa.chunked_array(fixed, type=column.type)


def _in_first_seen_order(column: pa.ChunkedArray) -> bool:
    import numpy as np

    codes, values = dictionary_codes(column)
    if not codes.size:
        return not values
    running = np.maximum.accumulate(codes)
    return bool(codes[0] == 0 and running[-1] == values - 1 and (np.diff(running) <= 1).all())


def window_parts(
    *,
    session: Session,
    store: ObjectStore,
    deployment: Deployment,
    start: datetime | None,
    end: datetime | None,
) -> WindowParts:
    """Describe the partitions :func:`read_window` reads, reading no value but record times.

    Footers give each partition's columns and rows; only a batch that straddles a bound has its
    record times read (a batch wholly inside needs none).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    slot = [d.id for d in slot_deployments(session=session, deployment=deployment)]
    parts: list[_Part] = []
    used: list[uuid.UUID] = []
    names: dict[str, None] = {}
    rows = 0
    for batch in _overlapping(session, slot, start, end):
        key = _key(batch, "inferences")
        metadata = parquet_metadata(store, key)
        kept, keep = int(metadata.num_rows), None
        inside = (
            batch.first_at is not None
            and batch.last_at is not None
            and (start is None or batch.first_at >= start)
            and (end is None or batch.last_at < end)
        )
        if not inside:
            keep = _in_window(read_parquet(store, key, columns=["time"]), start, end)
            if keep is not None:
                kept = int(pc.sum(keep).as_py() or 0)
                keep = None if kept == metadata.num_rows else keep
        if not kept:
            continue
        schema = metadata.schema.to_arrow_schema()
        stored = tuple(str(name) for name in schema.names)
        names.update(dict.fromkeys(stored))
        text = frozenset(f.name for f in schema if f.type in (pa.string(), pa.large_string()))
        parts.append(_Part(key=key, metadata=metadata, names=stored, text=text, keep=keep))
        used.append(batch.id)
        rows += kept
    return WindowParts(parts=tuple(parts), names=tuple(names), batches=tuple(used), rows=rows)


@dataclass(frozen=True, slots=True)
class WindowObjects:
    """A window's Parquet objects, described from the database alone: no row read.

    Attributes:
        inferences: The inference batches overlapping ``[start, end)`` (:func:`read_window`'s).
        labels: Every label batch of the slot (labels join by request id, whenever they came).
        batches: The ids of the inference batches (what lineage records).
        start: The window's first instant (inclusive), if bounded.
        end: The window's end (exclusive), if bounded.
        rows: The rows those batches hold (the database's count): the window's rows at most,
            exactly them when no batch straddles a bound. What the engine rule decides on.
    """

    inferences: ObjectWindow
    labels: ObjectWindow
    batches: tuple[uuid.UUID, ...]
    start: datetime | None
    end: datetime | None
    rows: int

    def schemas(self) -> tuple[pa.Schema | None, pa.Schema | None]:
        """Return the inference and the label objects' columns, from their footers alone.

        Each is unified as :func:`read_window` unifies partitions, and ``None`` where there is
        no object or Arrow cannot unify them (one batch logged text where another logged
        numbers: the local reader then keeps Python objects).
        """
        return _unified(self.inferences), _unified(self.labels)


def window_objects(
    *,
    session: Session,
    store: ObjectStore,
    deployment: Deployment,
    start: datetime | None,
    end: datetime | None,
) -> WindowObjects:
    """Describe the window :func:`read_window` would read, from the database alone."""
    slot = [d.id for d in slot_deployments(session=session, deployment=deployment)]
    batches = _overlapping(session, slot, start, end)
    labels = _batches(session, slot, "labels")
    return WindowObjects(
        inferences=ObjectWindow(store, tuple(_key(b, "inferences") for b in batches)),
        labels=ObjectWindow(store, tuple(_key(b, "labels") for b in labels)),
        batches=tuple(b.id for b in batches),
        start=start,
        end=end,
        rows=sum(b.rows for b in batches),
    )


def _unified(objects: ObjectWindow) -> pa.Schema | None:
    """Return the objects' schemas unified as :func:`_concat` unifies tables, else ``None``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not objects.keys:
        return None
    filesystem, paths = objects.files()
    schemas = []
    for path in paths:
        with filesystem.open_input_file(path) as handle:
            schemas.append(pq.read_schema(handle))
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


@dataclass(frozen=True, slots=True)
class WindowView:
    """What a kind judges of a window read in place: its objects seen through the conventions.

    :mod:`monitors.in_place` builds it where a run would otherwise read the window and select
    its rows and columns; Spark's tasks read it (:mod:`monitors.spark_engine`).

    Attributes:
        objects: The window's objects.
        schema: Their columns, unified (:meth:`WindowObjects.schemas`).
        label_schema: The label objects' columns, unified (``None``: no label logged).
        columns: Each column a kind sees, by the name it is judged under, and the stored
            column it comes from (``context.race`` is judged as ``race``); ``label`` comes from
            the label objects, joined by request id (the oldest label batch wins, as in
            :func:`read_window`).
        labelled: Only rows where this column has a value count (the label column of
            performance, and of fairness with enough labels).
        label_as: Cast the ``labelled`` column to this judged column's type when it is an
            integer or bool and the label's a float (what the local engine does to labelled
            rows).
        rows: The rows judged (counted by the engine; :meth:`MonitorContext.row_count`).
    """

    objects: WindowObjects
    schema: pa.Schema
    label_schema: pa.Schema | None
    columns: dict[str, str]
    labelled: str | None = None
    label_as: str | None = None
    rows: int = 0


def _key(batch: InferenceBatch, kind: BatchKind) -> str:
    return partition_key(
        project_id=batch.project_id,
        deployment_id=batch.deployment_id,
        kind=kind,
        batch_id=batch.id,
    )


def within(table: pa.Table, start: datetime | None, end: datetime | None) -> pa.Table:
    """Keep the rows of a partition with ``start <= time < end`` (Arrow, no per-row Python)."""
    keep = _in_window(table, start, end)
    return table if keep is None else table.filter(keep)


def _in_window(
    table: pa.Table, start: datetime | None, end: datetime | None
) -> pa.ChunkedArray | None:
    """Return which rows have ``start <= time < end`` (``None``: unbounded, every row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    time = table.column("time")
    keep = None
    if start is not None:
        keep = pc.greater_equal(time, pa.scalar(start, type=time.type))
    if end is not None:
        before = pc.less(time, pa.scalar(end, type=time.type))
        keep = before if keep is None else pc.and_(keep, before)
    return keep


def _concat(tables: list[pa.Table]) -> pd.DataFrame:
    """Return the partitions as one frame, converted once (:func:`_joined`)."""
    import pandas as pd
    import pyarrow as pa

    joined = _joined(tables)
    if not isinstance(joined, pa.Table):
        return joined
    try:
        frame: pd.DataFrame = joined.to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        frame = pd.concat([table.to_pandas() for table in tables], ignore_index=True)
    return frame


def _joined(tables: list[pa.Table]) -> pa.Table | pd.DataFrame:
    """Return the partitions as one Arrow table, else as one frame.

    Partitions written by different batches may differ (a column all null in one, text in
    another; attributions only in some): Arrow unifies them. Where it cannot (one batch logged
    text where another logged numbers), each converts alone and pandas keeps objects.
    """
    import pandas as pd
    import pyarrow as pa

    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pd.concat([table.to_pandas() for table in tables], ignore_index=True)


def read_inference(
    *, session: Session, store: ObjectStore, deployment: Deployment, request_id: str
) -> pd.DataFrame:
    """Return the one logged inference of ``request_id`` as a one-row frame (window columns).

    The request id's run names the batch that stored it, so exactly one partition is read, and
    filtered in memory: an upload kept as it came (:mod:`monitors.inferences.kept`) carries its
    sender's row-group statistics, which a pushed-down filter would trust to skip the record.

    Raises:
        NotFound: The deployment logged no inference with this request id.
    """
    batch_id = batch_of(
        session=session, kind="inferences", deployment_id=deployment.id, request_id=request_id
    )
    batch = None if batch_id is None else session.get(InferenceBatch, batch_id)
    if batch is None:
        raise NotFound(f"deployment {deployment.id} logged no inference {request_id!r}")
    import pyarrow.compute as pc

    table = read_parquet(store, _key(batch, "inferences"))
    frame: pd.DataFrame = table.filter(pc.equal(table["request_id"], request_id)).to_pandas()
    if len(frame) != 1:  # pragma: no cover - the key is written with its record
        raise NotFound(f"inference {request_id!r} is listed but not stored in batch {batch.id}")
    return frame.reset_index(drop=True)
