"""Inference logs and labels: checked against the model's input schema, stored append-only.

What goes in (one batch at a time, at most :data:`MAX_BATCH` records):

* an inference record carries a client request id, a time, the features (one value per input
  column), the prediction, and the score (probability of the positive class) or the class
  probabilities;
* a label record carries a request id already logged and the ground truth, arriving later.

A record whose *structure* does not match the deployment's model version (``feature_schema`` in
lineage: a column missing, an unknown column, a text where a number belongs) is refused with
:class:`~lineage.errors.InvalidInput` naming the field (``records[3].features.age``), and then
nothing of the batch is stored. A well-formed record with bad *values* (nulls, NaN,
out-of-range numbers, unseen categories) is kept: counting those is the data-quality monitor's
job, and dropping them would hide exactly what it must see.

Storage: each accepted batch is one Parquet file (a partition) under the artifact store, at a
path made of ids only (:func:`partition_path`), plus one ``monitors_inference_batch`` row that
lists it and one key row per request id. The key tables carry a unique ``(deployment_id,
request_id)`` constraint, so a re-sent request id is counted once (the first record wins; the
duplicate is reported as such, not stored). The file is written before the transaction commits,
so a committed batch always has its file; a file whose transaction rolled back is never listed,
so it is never read.

A monitor reads a window with :func:`read_window`: the inference partitions of a deployment
slot overlapping ``[start, end)``, filtered by record time, with labels joined by request id;
a local explanation reads one logged record with :func:`read_inference`.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field as SQLField
from sqlmodel import Session, col, select

from lineage.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from lineage.models import Deployment, ModelVersion
from lineage.tables import AwareDateTime, Record, utcnow

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_BATCH",
    "RESERVED_COLUMNS",
    "Cell",
    "InferenceBatch",
    "InferenceKey",
    "InferenceRecord",
    "IngestResult",
    "LabelKey",
    "LabelRecord",
    "count_inferences",
    "deployment_of",
    "log_inferences",
    "log_labels",
    "partition_path",
    "read_inference",
    "read_window",
    "records_from_frame",
    "slot_deployments",
]

MAX_BATCH = 10_000
"""The most records one call may log (bounded so a batch fits one request and one file)."""
RESERVED_COLUMNS = ("request_id", "time", "prediction", "score", "probabilities", "label")
"""Window columns Warden adds beside the features; no feature may carry these names."""

# An integer Parquet can hold (int64); a larger one validates as the float it approximates.
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Cell = str | Int64 | float | bool | None
BatchKind = Literal["inferences", "labels"]
_NUMERIC = frozenset({"float", "integer"})
_TEXT = frozenset({"category", "string"})
_KEY_CHUNK = 500
# The span of nanosecond timestamps (pandas, Parquet), in whole years.
_EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
_LATEST = datetime(2262, 1, 1, tzinfo=UTC)


class InferenceRecord(BaseModel):
    """One logged inference: what the model saw and what it answered.

    Attributes:
        request_id: The client's id of the request, unique per deployment.
        time: When the model answered; now when unset.
        features: One value per input column of the model version (nulls allowed).
        prediction: The predicted class or value.
        score: Probability of the positive class (binary classification).
        probabilities: Class → probability, for multi-class models.
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    time: AwareDatetime | None = None
    features: dict[str, Cell]
    prediction: Cell = None
    score: float | None = None
    probabilities: dict[str, float] | None = None

    @field_validator("time")
    @classmethod
    def _storable(cls, time: datetime | None) -> datetime | None:
        """Refuse a time the Parquet partition cannot hold (nanoseconds since 1970 in int64)."""
        if time is not None and not _EARLIEST <= time < _LATEST:
            raise ValueError(f"the time must lie between {_EARLIEST:%Y} and {_LATEST:%Y}")
        return time


class LabelRecord(BaseModel):
    """The ground truth of a logged inference, sent once it is known."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    label: str | Int64 | float | bool


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


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a logging call did: how many records were stored and how many were duplicates.

    Attributes:
        batch_id: The stored batch, ``None`` when every record was a duplicate.
        accepted: Records stored.
        duplicates: Records whose request id was logged before (or twice in the batch).
    """

    batch_id: uuid.UUID | None
    accepted: int
    duplicates: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (what the routes answer and the audit entry keeps)."""
        return {
            "batch_id": None if self.batch_id is None else str(self.batch_id),
            "accepted": self.accepted,
            "duplicates": self.duplicates,
        }


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


def _check_size(count: int, field: str) -> None:
    if count == 0:
        raise InvalidInput(f"{field} is empty; send at least one record", field=field)
    if count > MAX_BATCH:
        raise PayloadTooLarge(
            f"{count} records in one batch; send at most {MAX_BATCH:,} per call", field=field
        )


def _check_features(records: Sequence[InferenceRecord], schema: Mapping[str, str]) -> list[str]:
    """Refuse records whose structure does not match ``schema``; return the feature columns."""
    expected = list(schema) or list(records[0].features)
    reserved = sorted(set(expected) & set(RESERVED_COLUMNS))
    if reserved:
        raise InvalidInput(
            f"features may not be named {reserved}; Warden keeps those names for its own columns",
            field=f"records[0].features.{reserved[0]}",
        )
    wanted = set(expected)
    for index, record in enumerate(records):
        given = record.features
        for name in expected:
            if name not in given:
                raise InvalidInput(
                    f"record {index} lacks feature {name!r}; send every input column of the model "
                    "(null for a missing value)",
                    field=f"records[{index}].features.{name}",
                )
        for name in given:
            if name not in wanted:
                raise InvalidInput(
                    f"record {index} has feature {name!r}, which the model does not take; "
                    f"its inputs are {expected}",
                    field=f"records[{index}].features.{name}",
                )
        for name, kind in schema.items():
            value = given[name]
            if value is None:
                continue
            if kind in _NUMERIC and isinstance(value, str | bool):
                raise InvalidInput(
                    f"record {index}: feature {name!r} is {kind}, not {value!r}; send a number "
                    "(null for a missing value)",
                    field=f"records[{index}].features.{name}",
                )
            if kind == "boolean" and not isinstance(value, bool):
                raise InvalidInput(
                    f"record {index}: feature {name!r} is boolean, not {value!r}",
                    field=f"records[{index}].features.{name}",
                )
            if kind == "datetime" and not isinstance(value, str):
                raise InvalidInput(
                    f"record {index}: feature {name!r} is a datetime; send ISO 8601 text",
                    field=f"records[{index}].features.{name}",
                )
    return expected


def _unseen(
    session: Session,
    table: type[InferenceKey] | type[LabelKey],
    deployment_id: uuid.UUID,
    ids: list[str],
) -> set[str]:
    """Return which of ``ids`` are already keyed for the deployment."""
    found: set[str] = set()
    for start in range(0, len(ids), _KEY_CHUNK):
        chunk = ids[start : start + _KEY_CHUNK]
        rows = session.exec(
            select(table.request_id).where(
                table.deployment_id == deployment_id, col(table.request_id).in_(chunk)
            )
        ).all()
        found.update(rows)
    return found


def _fresh(
    session: Session,
    table: type[InferenceKey] | type[LabelKey],
    deployment_id: uuid.UUID,
    ids: list[str],
) -> list[int]:
    """Return the positions of records whose request id is new (first occurrence only)."""
    known = _unseen(session, table, deployment_id, list(dict.fromkeys(ids)))
    keep: list[int] = []
    seen: set[str] = set()
    for index, request_id in enumerate(ids):
        if request_id in known or request_id in seen:
            continue
        seen.add(request_id)
        keep.append(index)
    return keep


def _store(
    *,
    session: Session,
    data_dir: Path,
    deployment: Deployment,
    kind: BatchKind,
    table: type[InferenceKey] | type[LabelKey],
    request_ids: list[str],
    frame: pd.DataFrame,
    times: list[datetime] | None,
) -> uuid.UUID:
    """Insert the batch row and its keys, then write its Parquet file (before commit)."""
    batch = InferenceBatch(
        project_id=deployment.project_id,
        deployment_id=deployment.id,
        kind=kind,
        rows=len(frame),
        first_at=min(times) if times else None,
        last_at=max(times) if times else None,
    )
    try:
        with session.begin_nested():
            session.add(batch)
            session.flush()
            now = utcnow()
            session.execute(
                sa.insert(table),
                [
                    {
                        "id": uuid.uuid4(),
                        "created_at": now,
                        "deployment_id": deployment.id,
                        "request_id": request_id,
                        "batch_id": batch.id,
                    }
                    for request_id in request_ids
                ],
            )
    except IntegrityError:
        raise Conflict(
            "another request logged some of these request ids at the same moment; send the batch "
            "again (ids already stored are then counted as duplicates)"
        ) from None
    path = partition_path(
        data_dir,
        project_id=deployment.project_id,
        deployment_id=deployment.id,
        kind=kind,
        batch_id=batch.id,
    )
    _write_parquet(frame, path)
    return batch.id


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), partial)
    os.replace(partial, path)


def _feature_column(values: list[Cell], kind: str | None, name: str) -> pd.Series:
    import pandas as pd

    if kind in _NUMERIC:
        return pd.Series(
            [math.nan if v is None else float(v) for v in values], dtype="float64", name=name
        )
    if kind in _TEXT:
        return pd.Series([None if v is None else str(v) for v in values], dtype=object, name=name)
    if kind == "boolean":
        return pd.Series(values, dtype="boolean", name=name)
    if kind == "datetime":
        text = pd.Series([None if v is None else str(v) for v in values], dtype=object)
        try:
            return pd.Series(pd.to_datetime(text, utc=True, format="ISO8601"), name=name)
        except (ValueError, TypeError) as error:
            raise InvalidInput(
                f"feature {name!r} holds a value that is not ISO 8601 ({error})",
                field=f"records[*].features.{name}",
            ) from None
    return pd.Series(values, name=name)


def _mixed_column(values: list[Any], field: str) -> pd.Series:
    """Return a column of one Parquet type; refuse one that mixes text and numbers."""
    import pandas as pd

    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {int, float} and bool not in kinds:
        return pd.Series([math.nan if v is None else v for v in values], name=field)
    if kinds and len(kinds) > 1:
        raise InvalidInput(
            f"{field} mixes {sorted(k.__name__ for k in kinds)} across records; send one type",
            field=f"records[*].{field}",
        )
    return pd.Series(values, name=field, dtype=object if kinds == {str} else None)


def deployment_of(
    *, session: Session, project_id: uuid.UUID, deployment_id: uuid.UUID
) -> tuple[Deployment, ModelVersion]:
    """Return a deployment of the project and the model version it serves."""
    deployment = session.get(Deployment, deployment_id)
    if deployment is None or deployment.project_id != project_id:
        raise NotFound(f"no deployment {deployment_id} in this project")
    model_version = session.get(ModelVersion, deployment.model_version_id)
    if model_version is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound(f"deployment {deployment_id} serves no known model version")
    return deployment, model_version


def log_inferences(
    *,
    session: Session,
    data_dir: Path,
    deployment: Deployment,
    records: Sequence[InferenceRecord],
) -> IngestResult:
    """Store a batch of inferences of one deployment; re-sent request ids count once.

    Args:
        session: The caller's session; nothing is committed here (the caller audits the batch
            in the same transaction).
        data_dir: The artifact store.
        deployment: The deployment that answered (its model version's ``feature_schema`` is the
            structure every record must have).
        records: At most :data:`MAX_BATCH` records.

    Raises:
        InvalidInput: A record's structure does not match the schema (the field is named), or
            the batch is empty.
        PayloadTooLarge: More than :data:`MAX_BATCH` records.
        Conflict: A concurrent batch logged one of the same request ids first; send again.
    """
    import pandas as pd

    _check_size(len(records), "records")
    model_version = session.get(ModelVersion, deployment.model_version_id)
    schema = {} if model_version is None else dict(model_version.feature_schema)
    features = _check_features(records, schema)
    keep = _fresh(session, InferenceKey, deployment.id, [r.request_id for r in records])
    duplicates = len(records) - len(keep)
    if not keep:
        return IngestResult(batch_id=None, accepted=0, duplicates=duplicates)
    now = utcnow()
    chosen = [records[i] for i in keep]
    times = [r.time or now for r in chosen]
    columns: dict[str, pd.Series] = {
        "request_id": pd.Series([r.request_id for r in chosen], dtype=object),
        "time": pd.Series(pd.to_datetime(times, utc=True)),
    }
    for name in features:
        columns[name] = _feature_column([r.features[name] for r in chosen], schema.get(name), name)
    columns["prediction"] = _mixed_column([r.prediction for r in chosen], "prediction")
    columns["score"] = pd.Series(
        [math.nan if r.score is None else r.score for r in chosen], dtype="float64"
    )
    columns["probabilities"] = pd.Series(
        [None if r.probabilities is None else _json(r.probabilities) for r in chosen], dtype=object
    )
    frame = pd.DataFrame(columns)
    batch_id = _store(
        session=session,
        data_dir=data_dir,
        deployment=deployment,
        kind="inferences",
        table=InferenceKey,
        request_ids=[r.request_id for r in chosen],
        frame=frame,
        times=times,
    )
    return IngestResult(batch_id=batch_id, accepted=len(chosen), duplicates=duplicates)


def _json(value: Mapping[str, float]) -> str:
    import json

    return json.dumps(dict(value), sort_keys=True, allow_nan=False)


def log_labels(
    *,
    session: Session,
    data_dir: Path,
    deployment: Deployment,
    labels: Sequence[LabelRecord],
) -> IngestResult:
    """Store the ground truth of logged inferences; the first label of a request id wins.

    Raises:
        InvalidInput: A label names a request id this deployment never logged (the field is
            named: ``labels[3].request_id``), or the batch is empty.
        PayloadTooLarge: More than :data:`MAX_BATCH` labels.
    """
    import pandas as pd

    _check_size(len(labels), "labels")
    ids = [label.request_id for label in labels]
    logged = _unseen(session, InferenceKey, deployment.id, list(dict.fromkeys(ids)))
    for index, request_id in enumerate(ids):
        if request_id not in logged:
            raise InvalidInput(
                f"label {index} is for request id {request_id!r}, which this deployment never "
                "logged; log the inference first",
                field=f"labels[{index}].request_id",
            )
    keep = _fresh(session, LabelKey, deployment.id, ids)
    duplicates = len(labels) - len(keep)
    if not keep:
        return IngestResult(batch_id=None, accepted=0, duplicates=duplicates)
    chosen = [labels[i] for i in keep]
    frame = pd.DataFrame(
        {
            "request_id": pd.Series([r.request_id for r in chosen], dtype=object),
            "label": _mixed_column([r.label for r in chosen], "label"),
        }
    )
    batch_id = _store(
        session=session,
        data_dir=data_dir,
        deployment=deployment,
        kind="labels",
        table=LabelKey,
        request_ids=[r.request_id for r in chosen],
        frame=frame,
        times=None,
    )
    return IngestResult(batch_id=batch_id, accepted=len(chosen), duplicates=duplicates)


def records_from_frame(frame: pd.DataFrame) -> list[InferenceRecord]:
    """Turn an uploaded table (CSV or Parquet) into inference records.

    Columns ``request_id`` (required), ``time``, ``prediction``, ``score`` are Warden's; every
    other column is a feature. Missing values become nulls.

    Raises:
        InvalidInput: No ``request_id`` column, or a row that is not a valid record.
    """
    import pandas as pd
    from pydantic import ValidationError

    if "request_id" not in frame.columns:
        raise InvalidInput(
            "the file has no 'request_id' column; add one id per row", field="file.request_id"
        )
    _check_size(len(frame), "file")
    own = {"request_id", "time", "prediction", "score"}
    features = [str(c) for c in frame.columns if c not in own]
    records: list[InferenceRecord] = []
    plain = frame.astype(object).where(pd.notna(frame), other=None)  # type: ignore[call-overload]
    for index, row in enumerate(plain.to_dict(orient="records")):
        try:
            records.append(
                InferenceRecord(
                    request_id=str(row["request_id"]),
                    time=row.get("time"),
                    features={name: _cell(row[name]) for name in features},
                    prediction=_cell(row.get("prediction")),
                    score=row.get("score"),
                )
            )
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidInput(
                f"row {index}: {where}: {first['msg']}", field=f"records[{index}].{where}"
            ) from None
    return records


def _cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if hasattr(value, "item"):
        item: Cell = value.item()
        return item
    return str(value)


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


def count_inferences(*, session: Session, deployment_id: uuid.UUID) -> int:
    """Return how many inferences a deployment has logged (distinct request ids)."""
    return int(
        session.exec(
            select(sa.func.count()).where(InferenceKey.deployment_id == deployment_id)
        ).one()
    )


def read_window(
    *,
    session: Session,
    data_dir: Path,
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
    import pyarrow.parquet as pq

    slot = [d.id for d in slot_deployments(session=session, deployment=deployment)]
    used: list[uuid.UUID] = []
    frames: list[pd.DataFrame] = []
    for batch in _batches(session, slot, "inferences"):
        if start is not None and batch.last_at is not None and batch.last_at < start:
            continue
        if end is not None and batch.first_at is not None and batch.first_at >= end:
            continue
        path = partition_path(
            data_dir,
            project_id=batch.project_id,
            deployment_id=batch.deployment_id,
            kind="inferences",
            batch_id=batch.id,
        )
        frame: pd.DataFrame = pq.read_table(path).to_pandas()
        mask = pd.Series(True, index=frame.index)
        if start is not None:
            mask &= frame["time"] >= pd.Timestamp(start)
        if end is not None:
            mask &= frame["time"] < pd.Timestamp(end)
        if mask.any():
            frames.append(frame[mask])
            used.append(batch.id)
    window = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame({"request_id": pd.Series([], dtype=object)})
    )
    labels = [
        pq.read_table(
            partition_path(
                data_dir,
                project_id=batch.project_id,
                deployment_id=batch.deployment_id,
                kind="labels",
                batch_id=batch.id,
            )
        ).to_pandas()
        for batch in _batches(session, slot, "labels")
    ]
    if labels and len(window):
        joined = pd.concat(labels, ignore_index=True).drop_duplicates("request_id")
        window = window.merge(joined, on="request_id", how="left")
    else:
        window["label"] = pd.Series([None] * len(window), dtype=object)
    return window, used


def read_inference(
    *, session: Session, data_dir: Path, deployment: Deployment, request_id: str
) -> pd.DataFrame:
    """Return the one logged inference of ``request_id`` as a one-row frame (window columns).

    The request id's key row names the batch that stored it, so exactly one partition is read.

    Raises:
        NotFound: The deployment logged no inference with this request id.
    """
    import pyarrow.parquet as pq

    key = session.exec(
        select(InferenceKey).where(
            InferenceKey.deployment_id == deployment.id, InferenceKey.request_id == request_id
        )
    ).first()
    batch = None if key is None else session.get(InferenceBatch, key.batch_id)
    if batch is None:
        raise NotFound(f"deployment {deployment.id} logged no inference {request_id!r}")
    path = partition_path(
        data_dir,
        project_id=batch.project_id,
        deployment_id=batch.deployment_id,
        kind="inferences",
        batch_id=batch.id,
    )
    frame: pd.DataFrame = pq.read_table(
        path, filters=[("request_id", "==", request_id)]
    ).to_pandas()
    if len(frame) != 1:  # pragma: no cover - the key is written with its record
        raise NotFound(f"inference {request_id!r} is listed but not stored in batch {batch.id}")
    return frame.reset_index(drop=True)
