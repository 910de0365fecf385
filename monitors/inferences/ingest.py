"""Ingest of inference logs and labels: checked against the model's input schema, then stored.

A batch whose structure does not match the model version's ``feature_schema`` is refused whole,
naming the field; well-formed records with bad values are kept for the quality monitor (see
:mod:`monitors.inferences`). The Parquet object is written to the artifact store before the
transaction commits.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session

from lineage.errors import InvalidInput, NotFound
from lineage.models import Deployment, ModelVersion
from lineage.storage import ObjectStore, write_parquet
from lineage.tables import utcnow

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
from monitors.inferences.background import in_background
from monitors.inferences.kept import KeptUpload
from monitors.inferences.partitions import BatchKind, InferenceBatch, partition_key
from monitors.inferences.records import (
    CONTEXT_PREFIX,
    RESERVED_COLUMNS,
    Cell,
    InferenceRecord,
    IngestResult,
    LabelRecord,
    check_batch_size,
)
from monitors.inferences.runs import claim_ids, logged_ids

__all__ = [
    "deployment_of",
    "log_inference_table",
    "log_inference_upload",
    "log_inferences",
    "log_labels",
]

_NUMERIC = frozenset({"float", "integer"})
_TEXT = frozenset({"category", "string"})
_WRITTEN = "monitors.inferences.written"  # session.info: partitions written, not yet committed


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


def _store(
    *,
    session: Session,
    store: ObjectStore,
    deployment: Deployment,
    kind: BatchKind,
    table: pa.Table | KeptUpload,
) -> IngestResult:
    """Store a shaped batch: first occurrences of ids not keyed before, one Parquet partition.

    The ids are keyed in the deployment's runs of ``kind`` (:mod:`monitors.inferences.runs`):
    an id a batch of that kind stored before, or sent twice, is stored once, as first sent.
    The batch row and its run are inserted first, then the object is written whole (before
    commit); a rollback of the caller's transaction deletes the object again, so a failed
    request leaves neither row nor object. A :class:`KeptUpload` whose ids are all new is
    stored as its own bytes, written on another thread while the ids are claimed (it is
    replaced if some were logged before: then it is shaped and filtered as a table).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    kept = table if isinstance(table, KeptUpload) else None
    shaped = None if isinstance(table, KeptUpload) else table
    given = table.ids if isinstance(table, KeptUpload) else table.column("request_id")
    sent = len(given)
    batch = InferenceBatch(
        project_id=deployment.project_id, deployment_id=deployment.id, kind=kind, rows=sent
    )
    if kept is not None:
        batch.first_at, batch.last_at = kept.first_at, kept.last_at
    session.add(batch)
    session.flush()
    key = partition_key(
        project_id=deployment.project_id, deployment_id=deployment.id, kind=kind, batch_id=batch.id
    )
    writing = (  # write-once, read by a monitor run later: kept out of the page cache
        None if kept is None else in_background(lambda: store.put(key, kept.content, cached=False))
    )
    try:
        mask = claim_ids(
            session=session,
            kind=kind,
            deployment_id=deployment.id,
            batch_id=batch.id,
            ids=given,
            hashes=None if kept is None else kept.hashes.result(),
        )
    finally:
        if writing is not None:  # awaited before any rollback, which deletes what it wrote
            _delete_on_rollback(session, store, key)
            writing.result()
    claimed = int(mask.sum())
    if claimed < sent:  # an id keyed before, by a concurrent batch, or twice in this one
        if not claimed:
            if writing is not None:
                store.delete(key)
            session.delete(batch)
            session.flush()
            return IngestResult(batch_id=None, accepted=0, duplicates=sent)
        whole = kept.shaped() if kept is not None else table
        assert isinstance(whole, pa.Table)
        shaped = whole.filter(pa.array(mask))
        batch.rows = len(shaped)
    if shaped is not None:
        if "time" in shaped.column_names:
            bounds = pc.min_max(shaped.column("time")).as_py()
            batch.first_at, batch.last_at = bounds["min"], bounds["max"]
        session.flush()
        digest = write_parquet(store, key, shaped, unique=("request_id",))  # replaces the kept
        accepted = len(shaped)
        if writing is None:
            _delete_on_rollback(session, store, key)
    else:  # a kept upload, every id new: the uploaded file is the partition
        assert kept is not None
        digest = kept.sha256.result()
        accepted = sent
    return IngestResult(
        batch_id=batch.id, accepted=accepted, duplicates=sent - accepted, sha256=digest
    )


def _delete_on_rollback(session: Session, store: ObjectStore, key: str) -> None:
    """Delete ``key`` if the session's transaction rolls back; keep it once it commits."""
    written: list[tuple[ObjectStore, str]] | None = session.info.get(_WRITTEN)
    if written is None:
        written = session.info[_WRITTEN] = []

        def forget(_: Session) -> None:
            for each_store, each_key in written:
                each_store.delete(each_key)
            written.clear()

        sa.event.listen(session, "after_rollback", forget)
        sa.event.listen(session, "after_commit", lambda _: written.clear())
    written.append((store, key))


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
    store: ObjectStore,
    deployment: Deployment,
    records: Sequence[InferenceRecord],
) -> IngestResult:
    """Store a batch of inferences of one deployment; re-sent request ids count once.

    Args:
        session: The caller's session; nothing is committed here (the caller audits the batch
            in the same transaction).
        store: The artifact store the batch's Parquet object goes to.
        deployment: The deployment that answered (its model version's ``feature_schema`` is the
            structure every record must have).
        records: At most :data:`MAX_BATCH` records.

    Raises:
        InvalidInput: A record's structure does not match the schema (the field is named), or
            the batch is empty.
        PayloadTooLarge: More than :data:`MAX_BATCH` records.
    """
    import pandas as pd
    import pyarrow as pa

    check_batch_size(len(records), "records")
    model_version = session.get(ModelVersion, deployment.model_version_id)
    schema = {} if model_version is None else dict(model_version.feature_schema)
    features = _check_features(records, schema)
    context_schema = {} if model_version is None else dict(model_version.context_schema)
    context = _check_context(records, context_schema, features)
    now = utcnow()
    columns: dict[str, pd.Series] = {
        "request_id": pd.Series([r.request_id for r in records], dtype=object),
        "time": pd.Series(pd.to_datetime([r.time or now for r in records], utc=True)),
    }
    for name in features:
        columns[name] = _feature_column([r.features[name] for r in records], schema.get(name), name)
    for name in context:
        values = [r.context.get(name) for r in records]
        kind = context_schema.get(name, {}).get("type")
        stored = f"{CONTEXT_PREFIX}{name}"
        columns[stored] = (
            _feature_column(values, kind, stored)
            if kind is not None
            else _mixed_column(values, f"context.{name}")
        )
    columns["prediction"] = _mixed_column([r.prediction for r in records], "prediction")
    columns["score"] = pd.Series(
        [math.nan if r.score is None else r.score for r in records], dtype="float64"
    )
    columns["probabilities"] = pd.Series(
        [None if r.probabilities is None else _json(r.probabilities) for r in records],
        dtype=object,
    )
    if any(r.attributions is not None for r in records):
        columns["attributions"] = pd.Series(
            [None if r.attributions is None else _json(r.attributions) for r in records],
            dtype=object,
        )
    table = pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)
    return _store(
        session=session,
        store=store,
        deployment=deployment,
        kind="inferences",
        table=table,
    )


def log_inference_table(
    *, session: Session, store: ObjectStore, deployment: Deployment, table: pa.Table
) -> IngestResult:
    """Store a batch already checked and shaped as the log's columns (the columnar path).

    ``table`` comes from :mod:`monitors.inferences.columnar`, which applied the checks
    :func:`log_inferences` applies record by record; here re-sent request ids are counted once
    and the rest is stored the same way.
    """
    return _store(
        session=session,
        store=store,
        deployment=deployment,
        kind="inferences",
        table=table,
    )


def log_inference_upload(
    *, session: Session, store: ObjectStore, deployment: Deployment, upload: KeptUpload
) -> IngestResult:
    """Store an uploaded Parquet file that is already a partition, as its own bytes.

    ``upload`` comes from :func:`monitors.inferences.kept.kept_upload`, which judged the file
    as :func:`log_inference_table`'s caller judges a table; re-sent request ids are counted
    once, as there (the file is then shaped and only its new ids are stored).
    """
    return _store(
        session=session,
        store=store,
        deployment=deployment,
        kind="inferences",
        table=upload,
    )


def _json(value: Mapping[str, float]) -> str:
    import json

    return json.dumps(dict(value), sort_keys=True, allow_nan=False)


def log_labels(
    *,
    session: Session,
    store: ObjectStore,
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
    import pyarrow as pa

    check_batch_size(len(labels), "labels")
    ids = [label.request_id for label in labels]
    known = logged_ids(
        session=session,
        kind="inferences",
        deployment_id=deployment.id,
        ids=pa.array(ids, pa.string()),
    ).tolist()
    for index, request_id in enumerate(ids):
        if not known[index]:
            raise InvalidInput(
                f"label {index} is for request id {request_id!r}, which this deployment never "
                "logged; log the inference first",
                field=f"labels[{index}].request_id",
            )
    frame = pd.DataFrame(
        {
            "request_id": pd.Series(ids, dtype=object),
            "label": _mixed_column([r.label for r in labels], "label"),
        }
    )
    return _store(
        session=session,
        store=store,
        deployment=deployment,
        kind="labels",
        table=pa.Table.from_pandas(frame, preserve_index=False),
    )
