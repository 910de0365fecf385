"""A JSON batch of inference records turned into Arrow columns without a Python object per record.

Validating ten thousand records one by one (a pydantic model each, then a pandas column built
from lists) cost about 80 µs a record; the same checks run on whole columns cost a few. This
module takes a batch already parsed from JSON (``orjson``) and returns the Arrow table the log
stores — or raises :class:`Irregular` when the batch is anything but the plain, well-formed
shape: a missing or unknown field, a value of the wrong type, a time that is not plain ISO 8601
with an offset, probabilities, attributions, a model version without a ``feature_schema``. The
caller then takes the record-by-record path (:class:`~monitors.inferences.InferenceRecord`),
which accepts and refuses exactly as before and names the field; so this path never accepts a
batch that one refuses, and never has to say why it stepped aside. :func:`json_table` goes one
step earlier for the plainest batches (no context, no null feature): Arrow's JSON reader parses
the raw bytes straight into typed columns, and anything it cannot judge steps aside to
:func:`inference_table`. :func:`upload_table` does the same for an uploaded Parquet table,
already columns: no Python object per row at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from monitors.inferences.records import CONTEXT_PREFIX, MAX_BATCH, RESERVED_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Irregular", "check_ids", "inference_table", "json_table", "upload_table"]

_RECORD_KEYS = frozenset({"request_id", "time", "features", "prediction", "score", "context"})
_CONTROL = "[\\x00-\\x1f\\x7f]"
"""What a request id may not hold (the record path's ``REQUEST_ID_PATTERN`` names the field)."""
_UPLOAD_OWN = frozenset({"request_id", "time", "prediction", "score"})
_NUMERIC = frozenset({"float", "integer"})
_TEXT = frozenset({"category", "string"})
_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"


class Irregular(Exception):
    """The batch is not the plain shape: judge it record by record instead."""


def _array(values: list[Any], kind: str | None, *, booleans: bool = True) -> pa.Array:
    """Return one column; raise :class:`Irregular` unless every value fits ``kind`` as-is.

    ``booleans=False`` says the body holds no JSON boolean, so none can hide among numbers.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        array = pa.array(values)  # inferred: a bool among numbers, a number among texts fail
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise Irregular(str(error)) from None
    kind_of = array.type
    if booleans and pa.types.is_floating(kind_of) and any(type(value) is bool for value in values):
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


def check_ids(ids: pa.Array) -> None:
    """Raise :class:`Irregular` unless every request id is present, 1..200 characters, printable.

    Both columnar parses judge ids here; the record path gives the 4xx that names the one at fault.
    """
    import pyarrow.compute as pc

    if ids.null_count:
        raise Irregular("a record has no request id")
    bounds = pc.min_max(pc.utf8_length(ids)).as_py()
    if bounds["min"] < 1 or bounds["max"] > 200:
        raise Irregular("a request id is empty or longer than 200 characters")
    if _controls(ids):
        raise Irregular("a request id holds a control character")


def _controls(ids: pa.Array) -> bool:
    """Return whether a text column holds a control character (``_CONTROL``).

    Scans the UTF-8 bytes at once: a byte below 0x80 is always an ASCII character of its own
    there, never part of another, so the scan is exact (the regex took 40 times longer).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(ids.type) or not len(ids):
        return bool(pc.any(pc.match_substring_regex(ids, _CONTROL)).as_py())
    _, offsets, data = ids.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32, count=len(ids) + 1, offset=ids.offset * 4)
    if data is None:
        return False
    text = np.frombuffer(data, dtype=np.uint8)[ends[0] : ends[-1]]
    return bool(np.any((text < 0x20) | (text == 0x7F)))


def _times(text: pa.Array, rows: int) -> pa.Array:
    """Return the record times: ISO 8601 with an offset in every record, or now for all."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lineage.tables import utcnow

    if text.null_count == rows:
        return pa.array([utcnow()] * rows, type=pa.timestamp("ns", tz="UTC"))
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


def _converted(records: list[Any], schema: Mapping[str, str]) -> dict[str, pa.Array]:
    """Return request ids, times, scores and features converted in one pass by Arrow.

    Only for a body without JSON booleans: Arrow reads ``true`` as ``1.0`` in a number column.
    """
    import pyarrow as pa

    features = pa.struct(
        [(name, pa.float64() if kind in _NUMERIC else pa.string()) for name, kind in schema.items()]
    )
    shape = pa.struct(
        [
            ("request_id", pa.string()),
            ("time", pa.string()),
            ("score", pa.float64()),
            ("features", features),
        ]
    )
    try:  # an integer past 2**53, a text for a number, a number for a text: all refused here
        whole = pa.array(records, type=shape)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise Irregular(str(error)) from None
    inner = whole.field("features")
    return {
        "request_id": whole.field("request_id"),
        "time": whole.field("time"),
        "score": whole.field("score"),
        **{name: inner.field(name) for name in schema},
    }


def inference_table(
    body: Any,
    *,
    schema: Mapping[str, str],
    context_schema: Mapping[str, Mapping[str, str]],
    booleans: bool = True,
) -> pa.Table:
    """Return a parsed JSON batch (``{"records": [...]}``) as the log's Arrow table.

    Columns as the record-by-record path writes them: ``request_id``, ``time``, the features
    in schema order, ``context.<name>``, ``prediction``, ``score``, ``probabilities`` (null).
    ``booleans=False`` (the raw body holds neither ``true`` nor ``false``) lets Arrow convert
    the fixed fields of every record in one pass.

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
    # The shape of every record, in C loops (``map``): a record or its features that is not an
    # object, a field that is not a record's, a feature set that is not the schema's.
    try:
        shapes = set(map(tuple, map(dict.keys, records)))
        keys = dict.fromkeys(schema).keys()  # compares with keys views as a set
        plain = all(map(keys.__eq__, map(dict.keys, map(itemgetter("features"), records))))
    except (KeyError, TypeError):
        raise Irregular("a record or its features is not an object of the plain fields") from None
    fields = {name for shape in shapes for name in shape}
    if not plain or not fields <= _RECORD_KEYS:
        raise Irregular("a record's fields or features are not the plain ones")
    if "context" in fields:
        for record in records:
            context = record.get("context", {})
            if not isinstance(context, dict) or (declared and not context.keys() <= declared):
                raise Irregular("a record's context is not an object of declared values")
    rows = len(records)
    if booleans or "boolean" in schema.values():
        fixed = {
            "request_id": _array([record.get("request_id") for record in records], "string"),
            "time": _array([record.get("time") for record in records], "string"),
            "score": _array([record.get("score") for record in records], "float"),
            **{
                name: _array([record["features"][name] for record in records], kind)
                for name, kind in schema.items()
            },
        }
    else:
        fixed = _converted(records, schema)
    ids = fixed["request_id"]
    check_ids(ids)
    columns: dict[str, pa.Array] = {"request_id": ids, "time": _times(fixed["time"], rows)}
    for name in schema:
        columns[name] = fixed[name]
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
        columns[f"{CONTEXT_PREFIX}{name}"] = _array(values, typed, booleans=booleans)
    predictions = [record.get("prediction") for record in records]
    columns["prediction"] = _array(predictions, None, booleans=booleans)
    columns["score"] = fixed["score"]
    columns["probabilities"] = pa.nulls(rows)
    return pa.table(columns)


def _parsed(raw: bytes, schema: Mapping[str, str]) -> pa.StructArray:
    """Return the records of a raw ``{"records": [...]}`` body parsed by Arrow, or raise.

    The whole body is one JSON "row" of Arrow's reader (one block, so no size guess can split
    it); the fixed fields and the features are typed up front, so a text for a number, a
    boolean for a number, a name given twice or anything that is not JSON fails the parse.
    """
    import io

    import pyarrow as pa
    import pyarrow.json as pj

    features = pa.struct(
        [(name, pa.float64() if kind in _NUMERIC else pa.string()) for name, kind in schema.items()]
    )
    shape = pa.struct(
        [
            ("request_id", pa.string()),
            ("time", pa.string()),
            ("features", features),
            ("score", pa.float64()),
        ]
    )
    try:
        table = pj.read_json(
            io.BytesIO(raw),
            read_options=pj.ReadOptions(block_size=len(raw) + 1, use_threads=False),
            parse_options=pj.ParseOptions(
                explicit_schema=pa.schema([("records", pa.list_(shape))]),
                newlines_in_values=True,
                unexpected_field_behavior="infer",  # then refused below, by type
            ),
        )
    except (pa.ArrowException, ValueError) as error:  # ValueError: not UTF-8
        raise Irregular(str(error)) from None
    if table.num_rows != 1 or table.column_names != ["records"]:
        raise Irregular("the body is not one {'records': [...]} object")
    batch = table.column("records").combine_chunks()
    if batch.null_count:
        raise Irregular("records is not a list")
    records: pa.StructArray = batch.flatten()
    if records.null_count or not 0 < len(records) <= MAX_BATCH:
        raise Irregular("a record is null, or there are none or too many")
    given = records.type
    fixed = {given.field(i).name for i in range(given.num_fields)} - {"prediction"}
    if fixed != {"request_id", "time", "features", "score"} or (
        given.field("features").type != features
    ):
        raise Irregular("a record's fields or features are not the plain ones")
    return records


def json_table(raw: bytes, *, schema: Mapping[str, str]) -> pa.Table:
    """Return a raw JSON batch (``{"records": [...]}``, no context) as the log's Arrow table.

    Parsed from bytes by Arrow's JSON reader into columns, with no Python object per record —
    the columns :func:`inference_table` returns for the same body. Arrow reads an absent
    value as null, so a null feature or request id, which may be either, steps aside to
    :func:`inference_table`, which tells them apart; so do ``NaN`` and ``Infinity`` (not JSON),
    context values, probabilities and attributions.

    Raises:
        Irregular: The body is not this plain shape; parse it with :func:`inference_table`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not schema or set(schema) & set(RESERVED_COLUMNS):
        raise Irregular("no feature schema, or a feature carries one of Warden's names")
    if any(kind not in _NUMERIC | _TEXT for kind in schema.values()):
        raise Irregular("a feature type the one-pass parse does not type (boolean, datetime)")
    records = _parsed(raw, schema)
    rows = len(records)
    inner = records.field("features")
    if inner.null_count or any(inner.field(name).null_count for name in schema):
        raise Irregular("a feature is null or absent: only the parsed objects tell which")
    ids = records.field("request_id")
    check_ids(ids)
    columns: dict[str, pa.Array] = {"request_id": ids, "time": _times(records.field("time"), rows)}
    for name in schema:
        columns[name] = inner.field(name)
    if records.type.get_field_index("prediction") >= 0:
        prediction = _typed(records.field("prediction"), None)
    else:
        prediction = pa.nulls(rows)
    columns["prediction"] = prediction
    columns["score"] = records.field("score")
    for name, column in columns.items():
        if pa.types.is_floating(column.type) and pc.all(pc.is_finite(column)).as_py() is False:
            raise Irregular(f"{name} holds NaN or Infinity, which JSON does not")
    columns["probabilities"] = pa.nulls(rows)
    return pa.table(columns)


def _plain(column: pa.ChunkedArray) -> pa.Array:
    """Return one contiguous array: dictionaries decoded, large text as text, ints as int64."""
    import pyarrow as pa

    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    elif pa.types.is_integer(array.type) and array.type != pa.int64():
        array = array.cast(pa.int64())
    elif pa.types.is_floating(array.type) and array.type != pa.float64():
        array = array.cast(pa.float64())
    return array


def _typed(array: pa.Array, kind: str | None) -> pa.Array:
    """Return an uploaded column as the log stores ``kind``, or raise :class:`Irregular`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind_of = array.type
    numeric = pa.types.is_integer(kind_of) or pa.types.is_floating(kind_of)
    if pa.types.is_floating(kind_of) and pc.any(pc.is_inf(array)).as_py():
        raise Irregular("an infinite number")  # the record path refuses it, naming the cell
    if kind in _NUMERIC and (numeric or pa.types.is_null(kind_of)):
        try:
            return array.cast(pa.float64())  # safe: an integer past 2**53 steps aside
        except pa.ArrowInvalid as error:
            raise Irregular(str(error)) from None
    if kind in _TEXT and (pa.types.is_string(kind_of) or pa.types.is_null(kind_of)):
        return array.cast(pa.string())
    if kind == "boolean" and (pa.types.is_boolean(kind_of) or pa.types.is_null(kind_of)):
        return array.cast(pa.bool_())
    if kind is None:
        if pa.types.is_integer(kind_of) and array.null_count:
            return array.cast(pa.float64())  # as pandas stores a gap among integers: NaN
        if (
            numeric
            or pa.types.is_string(kind_of)
            or pa.types.is_null(kind_of)
            or (pa.types.is_boolean(kind_of) and not array.null_count)
        ):
            return array
    raise Irregular(f"no plain column for {kind!r} values of {kind_of}")


def upload_table(
    table: pa.Table,
    *,
    schema: Mapping[str, str],
    context_schema: Mapping[str, Mapping[str, str]],
) -> pa.Table:
    """Return an uploaded table (a batch scoring job's Parquet file) as the log's Arrow table.

    The columns are those :func:`~monitors.inferences.records_from_frame` reads: ``request_id``
    (text), ``time`` (a timestamp with a time zone), ``prediction``, ``score``,
    ``context.<name>``, and every other column a feature of the schema. Each is checked whole,
    as :func:`inference_table` checks a JSON batch; any other table steps aside.

    Raises:
        Irregular: The table is not the plain shape; judge it record by record.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from lineage.tables import utcnow

    rows = table.num_rows
    names = table.column_names
    if not rows or not schema or len(set(names)) != len(names) or "request_id" not in names:
        raise Irregular("no rows, no feature schema, a column twice or no request ids")
    if set(schema) & set(RESERVED_COLUMNS):
        raise Irregular("a feature carries one of Warden's names")
    if any(kind not in _NUMERIC | _TEXT | {"boolean"} for kind in schema.values()):
        raise Irregular("a feature type without a plain column (datetime)")
    given = [name for name in names if name.startswith(CONTEXT_PREFIX)]
    if {name for name in names if name not in _UPLOAD_OWN and name not in given} != set(schema):
        raise Irregular("the feature columns are not the schema's")
    context = [name.removeprefix(CONTEXT_PREFIX) for name in given]
    declared = list(context_schema)
    if declared and not set(context) <= set(declared):
        raise Irregular("a context column the version does not declare")
    if set(context) & (set(schema) | set(RESERVED_COLUMNS)):
        raise Irregular("a context value carries a feature's or Warden's name")
    ids = _plain(table.column("request_id"))
    if not pa.types.is_string(ids.type) or ids.null_count:
        raise Irregular("request ids are not text in every row")
    lengths = pc.utf8_length(ids)
    if pc.min(lengths).as_py() < 1 or pc.max(lengths).as_py() > 200:
        raise Irregular("a request id is empty or longer than 200 characters")
    if _controls(ids):
        raise Irregular("a request id holds a control character")
    if "time" in names:
        stamps = _plain(table.column("time"))
        if not pa.types.is_timestamp(stamps.type) or stamps.type.tz is None or stamps.null_count:
            raise Irregular("times are not timestamps with a time zone in every row")
        try:
            times = stamps.cast(pa.timestamp("ns", tz="UTC"))  # safe: out of range steps aside
        except pa.ArrowInvalid as error:
            raise Irregular(str(error)) from None
    else:
        times = pa.array([utcnow()] * rows, type=pa.timestamp("ns", tz="UTC"))
    columns: dict[str, pa.Array] = {"request_id": ids, "time": times}
    for name, kind in schema.items():
        columns[name] = _typed(_plain(table.column(name)), kind)
    for name in declared or context:
        typed = context_schema.get(name, {}).get("type")
        if typed is not None and typed not in _NUMERIC | _TEXT | {"boolean"}:
            raise Irregular(f"context {name!r} is {typed}")
        stored = f"{CONTEXT_PREFIX}{name}"
        column = _plain(table.column(stored)) if stored in names else pa.nulls(rows)
        columns[stored] = _typed(column, typed)
    outputs: tuple[tuple[str, str | None], ...] = (("prediction", None), ("score", "float"))
    for output, holds in outputs:
        column = _plain(table.column(output)) if output in names else pa.nulls(rows)
        columns[output] = _typed(column, holds)
    columns["probabilities"] = pa.nulls(rows)
    return pa.table(columns)
