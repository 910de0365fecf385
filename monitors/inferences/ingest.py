"""Ingest of inference logs and labels: checked against the model's input schema, then stored.

A batch whose structure does not match the model version's ``feature_schema`` is refused whole,
naming the field; well-formed records with bad values are kept for the quality monitor (see
:mod:`monitors.inferences`). The Parquet file is written before the transaction commits.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.models import Deployment, ModelVersion
from lineage.tables import utcnow

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
from monitors.inferences.partitions import (
    BatchKind,
    InferenceBatch,
    InferenceKey,
    LabelKey,
    partition_path,
)
from monitors.inferences.records import (
    CONTEXT_PREFIX,
    RESERVED_COLUMNS,
    Cell,
    InferenceRecord,
    IngestResult,
    LabelRecord,
    check_batch_size,
)

__all__ = ["deployment_of", "log_inference_table", "log_inferences", "log_labels"]

_NUMERIC = frozenset({"float", "integer"})
_TEXT = frozenset({"category", "string"})
_KEY_CHUNK = 500


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


def _check_context(
    records: Sequence[InferenceRecord],
    schema: Mapping[str, Mapping[str, str]],
    features: list[str],
) -> list[str]:
    """Refuse context values the version does not declare; return the context columns.

    A version without a context schema takes any names (the batch's union; absent is null).
    """
    declared = list(schema)
    names = declared or list(dict.fromkeys(n for r in records for n in r.context))
    clash = sorted(set(names) & (set(features) | set(RESERVED_COLUMNS)))
    if clash:
        raise InvalidInput(
            f"context values may not be named {clash}: those are features or Warden's columns",
            field=f"records[0].context.{clash[0]}",
        )
    for index, record in enumerate(records):
        for name, value in record.context.items():
            if declared and name not in schema:
                raise InvalidInput(
                    f"record {index} has context value {name!r}, which the model version does "
                    f"not declare; its context columns are {declared}",
                    field=f"records[{index}].context.{name}",
                )
            kind = schema.get(name, {}).get("type")
            if value is not None and kind in _NUMERIC and isinstance(value, str | bool):
                raise InvalidInput(
                    f"record {index}: context value {name!r} is {kind}, not {value!r}",
                    field=f"records[{index}].context.{name}",
                )
        unknown = sorted(set(record.attributions or {}) - set(features))
        if unknown:
            raise InvalidInput(
                f"record {index} has attributions for {unknown}, which are not model inputs; "
                f"its inputs are {features}",
                field=f"records[{index}].attributions.{unknown[0]}",
            )
    return names


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
    frame: pd.DataFrame | pa.Table,
    times: tuple[datetime, datetime] | None,
) -> uuid.UUID:
    """Insert the batch row and its keys, then write its Parquet file (before commit)."""
    batch = InferenceBatch(
        project_id=deployment.project_id,
        deployment_id=deployment.id,
        kind=kind,
        rows=len(frame),
        first_at=times[0] if times else None,
        last_at=times[1] if times else None,
    )
    try:
        with session.begin_nested():
            session.add(batch)
            session.flush()
            # One statement with the shared values bound once: only the id and request id
            # vary per row (the ORM's bulk path converted every value of every row).
            keys = sa.insert(table.__table__).values(  # type: ignore[union-attr]
                created_at=utcnow(), deployment_id=deployment.id, batch_id=batch.id
            )
            session.execute(
                keys, [{"id": uuid.uuid4(), "request_id": request_id} for request_id in request_ids]
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


def _write_parquet(frame: pd.DataFrame | pa.Table, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    pq.write_table(table, partial)
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

    check_batch_size(len(records), "records")
    model_version = session.get(ModelVersion, deployment.model_version_id)
    schema = {} if model_version is None else dict(model_version.feature_schema)
    features = _check_features(records, schema)
    context_schema = {} if model_version is None else dict(model_version.context_schema)
    context = _check_context(records, context_schema, features)
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
    for name in context:
        values = [r.context.get(name) for r in chosen]
        kind = context_schema.get(name, {}).get("type")
        stored = f"{CONTEXT_PREFIX}{name}"
        columns[stored] = (
            _feature_column(values, kind, stored)
            if kind is not None
            else _mixed_column(values, f"context.{name}")
        )
    columns["prediction"] = _mixed_column([r.prediction for r in chosen], "prediction")
    columns["score"] = pd.Series(
        [math.nan if r.score is None else r.score for r in chosen], dtype="float64"
    )
    columns["probabilities"] = pd.Series(
        [None if r.probabilities is None else _json(r.probabilities) for r in chosen], dtype=object
    )
    if any(r.attributions is not None for r in chosen):
        columns["attributions"] = pd.Series(
            [None if r.attributions is None else _json(r.attributions) for r in chosen],
            dtype=object,
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
        times=(min(times), max(times)),
    )
    return IngestResult(batch_id=batch_id, accepted=len(chosen), duplicates=duplicates)


def log_inference_table(
    *, session: Session, data_dir: Path, deployment: Deployment, table: pa.Table
) -> IngestResult:
    """Store a batch already checked and shaped as the log's columns (JSON's plain path).

    ``table`` comes from :func:`monitors.inferences.columnar.inference_table`, which applied
    the checks :func:`log_inferences` applies record by record; here re-sent request ids are
    counted once and the rest is stored the same way.
    """
    import pyarrow.compute as pc

    ids = table.column("request_id").to_pylist()
    keep = _fresh(session, InferenceKey, deployment.id, ids)
    duplicates = len(ids) - len(keep)
    if not keep:
        return IngestResult(batch_id=None, accepted=0, duplicates=duplicates)
    if duplicates:
        table = table.take(keep)
        ids = [ids[i] for i in keep]
    bounds = pc.min_max(table.column("time")).as_py()
    batch_id = _store(
        session=session,
        data_dir=data_dir,
        deployment=deployment,
        kind="inferences",
        table=InferenceKey,
        request_ids=ids,
        frame=table,
        times=(bounds["min"], bounds["max"]),
    )
    return IngestResult(batch_id=batch_id, accepted=len(ids), duplicates=duplicates)


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

    check_batch_size(len(labels), "labels")
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
