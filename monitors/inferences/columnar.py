"""A JSON batch of inference records turned into Arrow columns without a Python object per record.

Validating ten thousand records one by one (a pydantic model each, then a pandas column built
from lists) cost about 80 µs a record; the same checks run on whole columns cost a few. This
module takes a batch already parsed from JSON (``orjson``) and returns the Arrow table the log
stores — or raises :class:`Irregular` when the batch is anything but the plain, well-formed
shape: a missing or unknown field, a value of the wrong type, a time that is not plain ISO 8601
with an offset, probabilities, attributions, a model version without a ``feature_schema``. The
caller then takes the record-by-record path (:class:`~monitors.inferences.InferenceRecord`),
which accepts and refuses exactly as before and names the field; so this path never accepts a
batch that one refuses, and never has to say why it stepped aside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monitors.inferences.records import CONTEXT_PREFIX, MAX_BATCH, RESERVED_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Irregular", "inference_table"]

_RECORD_KEYS = frozenset({"request_id", "time", "features", "prediction", "score", "context"})
_NUMERIC = frozenset({"float", "integer"})
_TEXT = frozenset({"category", "string"})
_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"


class Irregular(Exception):
    """The batch is not the plain shape: judge it record by record instead."""


def _array(values: list[Any], kind: str | None) -> pa.Array:
    """Return one column; raise :class:`Irregular` unless every value fits ``kind`` as-is."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        array = pa.array(values)  # inferred: a bool among numbers, a number among texts fail
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise Irregular(str(error)) from None
    kind_of = array.type
    if pa.types.is_floating(kind_of) and any(type(value) is bool for value in values):
        raise Irregular("a boolean among numbers")  # inferred as 1.0 after a float
    if kind in _NUMERIC:
        if not (pa.types.is_integer(kind_of) or pa.types.is_floating(kind_of)) and not (
            pa.types.is_null(kind_of)
        ):
            raise Irregular(f"{kind} column holds {kind_of}")
        try:
            array = array.cast(pa.float64())  # safe: an integer past 2**53 steps aside
        except pa.ArrowInvalid as error:
            raise Irregular(str(error)) from None
        if pc.all(pc.is_finite(array)).as_py() is False:  # pragma: no cover - orjson refuses
            raise Irregular("a number is not finite")
        return array
    if kind in _TEXT:
        if not (pa.types.is_string(kind_of) or pa.types.is_null(kind_of)):
            raise Irregular(f"{kind} column holds {kind_of}")
        return array.cast(pa.string())
    if kind == "boolean":
        if not (pa.types.is_boolean(kind_of) or pa.types.is_null(kind_of)):
            raise Irregular(f"boolean column holds {kind_of}")
        return array.cast(pa.bool_())
    if kind is None:  # undeclared context values, predictions: one type, numbers or text
        if pa.types.is_integer(kind_of) and array.null_count:
            return array.cast(pa.float64())  # as pandas stores a gap among integers: NaN
        if (
            pa.types.is_integer(kind_of)
            or pa.types.is_floating(kind_of)
            or pa.types.is_string(kind_of)
            or pa.types.is_null(kind_of)
            or (pa.types.is_boolean(kind_of) and not array.null_count)
        ):
            return array
    raise Irregular(f"no plain column for {kind!r} values of {kind_of}")


def _times(values: list[Any], rows: int) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    from lineage.tables import utcnow

    if all(value is None for value in values):
        return pa.array([utcnow()] * rows, type=pa.timestamp("ns", tz="UTC"))
    text = _array(values, "string")
    if text.null_count or not pc.all(pc.match_substring_regex(text, _TIME)).as_py():
        raise Irregular("a time is missing or not plain ISO 8601 with an offset")
    try:
        parsed = text.cast(pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise Irregular(str(error)) from None
    years = pc.year(parsed)
    if pc.min(years).as_py() < 1678 or pc.max(years).as_py() >= 2262:
        raise Irregular("a time lies outside what the partition holds")
    return parsed


def inference_table(
    body: Any,
    *,
    schema: Mapping[str, str],
    context_schema: Mapping[str, Mapping[str, str]],
) -> pa.Table:
    """Return a parsed JSON batch (``{"records": [...]}``) as the log's Arrow table.

    Columns as the record-by-record path writes them: ``request_id``, ``time``, the features
    in schema order, ``context.<name>``, ``prediction``, ``score``, ``probabilities`` (null).

    Raises:
        Irregular: The batch is not the plain shape; judge it record by record.
    """
    import pyarrow as pa

    if not isinstance(body, dict) or body.keys() != {"records"}:
        raise Irregular("the body is not {'records': [...]}")
    records = body["records"]
    if not isinstance(records, list) or not 0 < len(records) <= MAX_BATCH or not schema:
        raise Irregular("no records, too many, or no feature schema to check them against")
    if set(schema) & set(RESERVED_COLUMNS):
        raise Irregular("a feature carries one of Warden's names")
    if any(kind not in _NUMERIC | _TEXT | {"boolean"} for kind in schema.values()):
        raise Irregular("a feature type without a plain column (datetime)")
    wanted = set(schema)
    declared = set(context_schema)
    for record in records:
        if not isinstance(record, dict) or not record.keys() <= _RECORD_KEYS:
            raise Irregular("a record is not an object with the plain fields")
        features = record.get("features")
        if not isinstance(features, dict) or features.keys() != wanted:
            raise Irregular("a record's features are not the schema's")
        context = record.get("context", {})
        if not isinstance(context, dict) or (declared and not context.keys() <= declared):
            raise Irregular("a record's context is not an object of declared values")
    rows = len(records)
    ids = _array([record.get("request_id") for record in records], "string")
    if ids.null_count:
        raise Irregular("a record has no request id")
    lengths = pa.compute.utf8_length(ids)
    if pa.compute.min(lengths).as_py() < 1 or pa.compute.max(lengths).as_py() > 200:
        raise Irregular("a request id is empty or longer than 200 characters")
    columns: dict[str, pa.Array] = {
        "request_id": ids,
        "time": _times([record.get("time") for record in records], rows),
    }
    for name, kind in schema.items():
        columns[name] = _array([record["features"][name] for record in records], kind)
    names = list(context_schema) or list(
        dict.fromkeys(name for record in records for name in record.get("context") or {})
    )
    if set(names) & (wanted | set(RESERVED_COLUMNS)):
        raise Irregular("a context value carries a feature's or Warden's name")
    for name in names:
        typed = context_schema.get(name, {}).get("type")
        if typed is not None and typed not in _NUMERIC | _TEXT | {"boolean"}:
            raise Irregular(f"context {name!r} is {typed}")
        values = [(record.get("context") or {}).get(name) for record in records]
        columns[f"{CONTEXT_PREFIX}{name}"] = _array(values, typed)
    columns["prediction"] = _array([record.get("prediction") for record in records], None)
    columns["score"] = _array([record.get("score") for record in records], "float")
    columns["probabilities"] = pa.nulls(rows)
    return pa.table(columns)
