"""An uploaded Parquet file kept byte for byte as its batch's partition, when it already is one.

A batch scoring job's file usually holds exactly the columns, the types and the order the log
stores (:func:`~monitors.inferences.columnar.upload_table`'s output, less the ``probabilities``
column an upload never carries). Decoding every column, shaping the table and encoding it again
only to write the same data was a third of an upload's CPU time. :func:`kept_upload` judges the
file by its schema, then decodes its columns for the checks only — request ids (the checks and
the de-duplication), times (no nulls, the batch's bounds), numbers (no infinity), text left
dictionary-encoded (its expanded size counted against the table limits), untyped integers and
booleans (no nulls) — and returns the file as it came. A file that is not
exactly that shape or fails a bound returns ``None``, and the caller
takes the path that decodes and shapes the table, which refuses or accepts as it always did:
so this path never accepts a file that one refuses, and never refuses one itself.

The work that does not depend on the checks runs beside them on another core
(:mod:`monitors.inferences.background`): the file's SHA-256 while its columns are decoded (on
Arrow's threads), the request ids' hashes while the ids and times are checked, and writing it
to the store while its ids are claimed (:mod:`monitors.inferences.ingest`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lineage.errors import InvalidInput, PayloadTooLarge
from monitors.inferences.background import in_background
from monitors.inferences.columnar import Irregular, check_ids
from monitors.inferences.records import CONTEXT_PREFIX, RESERVED_COLUMNS
from monitors.inferences.runs import id_hashes
from monitors.table_files import TableLimits, read_parquet_table

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["KeptUpload", "kept_upload"]

_NUMERIC = frozenset({"float", "integer"})
_TEXT = frozenset({"category", "string"})


def _sha256(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True, slots=True)
class KeptUpload:
    """An uploaded file that is its own partition.

    Attributes:
        content: The file's bytes, stored as they came.
        sha256: Their SHA-256 (hex), computed beside the checks.
        ids: Its request ids (text; one sent twice makes de-duplication shape the file).
        hashes: Their hashes (:func:`~monitors.inferences.runs.id_hashes`), computed beside the
            checks of the ids and times.
        first_at: The earliest record time.
        last_at: The latest record time.
        shaped: Today's path for the same file (decode, check, shape): what de-duplication
            falls back on when some of the ids were logged before, to store the rest.
    """

    content: bytes
    sha256: Future[str]
    ids: pa.Array
    hashes: Future[np.ndarray]
    first_at: datetime
    last_at: datetime
    shaped: Callable[[], pa.Table]


def _stored_types(
    names: list[str], schema: Mapping[str, str], context_schema: Mapping[str, Mapping[str, str]]
) -> dict[str, str | None] | None:
    """Return each column's kind in the order the log stores them, or ``None`` if not that shape.

    The kinds are those :func:`~monitors.inferences.columnar.upload_table` types the columns
    by (``None``: untyped, a prediction or an undeclared context value).
    """
    if not schema or set(schema) & set(RESERVED_COLUMNS):
        return None
    if any(kind not in _NUMERIC | _TEXT | {"boolean"} for kind in schema.values()):
        return None
    if any(name.startswith(CONTEXT_PREFIX) for name in schema):
        return None
    declared = list(context_schema)
    given = [name.removeprefix(CONTEXT_PREFIX) for name in names if name.startswith(CONTEXT_PREFIX)]
    context = declared or given
    if set(context) & (set(schema) | set(RESERVED_COLUMNS)):
        return None
    kinds: dict[str, str | None] = {"request_id": "string", "time": None}
    kinds.update(schema)
    for name in context:
        typed = context_schema.get(name, {}).get("type")
        if typed is not None and typed not in _NUMERIC | _TEXT | {"boolean"}:
            return None
        kinds[f"{CONTEXT_PREFIX}{name}"] = typed
    kinds["prediction"] = None
    kinds["score"] = "float"
    return kinds if list(kinds) == names else None


def _conforms(kind: str | None, given: pa.DataType) -> bool:
    """Return whether a column of type ``given`` is stored as it is for ``kind``."""
    import pyarrow as pa

    if kind in _NUMERIC:
        return bool(given == pa.float64())
    if kind in _TEXT:
        return bool(given == pa.string())
    if kind == "boolean":
        return bool(given == pa.bool_())
    return given in (pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.null())


def kept_upload(
    content: bytes,
    *,
    schema: Mapping[str, str],
    context_schema: Mapping[str, Mapping[str, str]],
    limits: TableLimits,
    shaped: Callable[[], pa.Table],
) -> KeptUpload | None:
    """Return the uploaded Parquet ``content`` as its own partition, or ``None`` (see module)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        file_schema = pq.read_schema(pa.BufferReader(content))
    except (pa.ArrowException, OSError, ValueError):
        return None
    kinds = _stored_types(file_schema.names, schema, context_schema)
    if kinds is None:
        return None
    time = file_schema.field("time").type
    if time != pa.timestamp("ns", tz="UTC"):
        return None
    types = {name: file_schema.field(name).type for name in kinds}
    if not all(_conforms(kind, types[name]) for name, kind in kinds.items() if name != "time"):
        return None
    digest = in_background(lambda: _sha256(content))  # hashlib lets go of the GIL meanwhile
    # Every column is decoded (text only to its dictionary), so a file the whole read would
    # refuse (a page that does not decode, a bound exceeded) is never kept.
    try:
        table = read_parquet_table(
            content, limits=limits, columns=list(kinds), decode_text=False, whole=True
        )
    except (InvalidInput, PayloadTooLarge):
        return None
    if not table.num_rows:
        return None
    for name in kinds:
        column = table.column(name)
        if pa.types.is_floating(column.type) and pc.any(pc.is_inf(column)).as_py():
            return None
        untyped = kinds[name] is None and name != "time"
        integral = pa.types.is_integer(column.type) or pa.types.is_boolean(column.type)
        if untyped and integral and column.null_count:
            return None  # a gap among integers is stored as floats; among booleans, refused
    stamps = table.column("time")
    if stamps.null_count:
        return None
    given = table.column("request_id")
    # Chunk by chunk: combining dictionary chunks first would unify their dictionaries, a hash
    # of every id (ten times the decode).
    ids = pa.concat_arrays(
        [
            chunk.dictionary_decode() if pa.types.is_dictionary(chunk.type) else chunk
            for chunk in given.chunks
        ]
    )
    hashes = in_background(lambda: id_hashes(ids))  # numpy lets go of the GIL meanwhile
    try:
        check_ids(ids)
    except Irregular:
        return None
    bounds = pc.min_max(stamps).as_py()
    return KeptUpload(
        content=content,
        sha256=digest,
        ids=ids,
        hashes=hashes,
        first_at=bounds["min"],
        last_at=bounds["max"],
        shaped=shaped,
    )
