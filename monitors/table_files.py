"""Table files (Parquet, CSV, gzipped CSV) read into a DataFrame within stated limits.

Uploads and reference files are untrusted: a 200 KB Parquet file can declare 20 million rows,
and a gzipped CSV can inflate a thousandfold. So a Parquet file is judged by its footer first
(rows, columns, uncompressed size of its row groups) and refused before anything is decoded;
then it streams batch by batch, and each batch's decoded size (dictionary-encoded text
measured before it is expanded) counts against ``max_bytes``. A CSV file is inflated and
parsed only up to the same bounds. What exceeds a bound is a
:class:`~lineage.errors.PayloadTooLarge` naming the bound; what cannot be read is an
:class:`~lineage.errors.InvalidInput`; nothing here writes a file.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lineage.errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "SUFFIXES",
    "TableLimits",
    "check_parquet_footer",
    "read_parquet_table",
    "read_table",
    "table_suffix",
]

SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")
"""The file names a table may carry, matched at the end of the name (case-insensitive)."""
_BATCH_ROWS = 65_536
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class TableLimits:
    """Bounds on a table read into memory, checked before decoding wherever the format allows.

    Attributes:
        max_rows: Rows the table may hold.
        max_columns: Columns the table may hold.
        max_bytes: Decoded bytes the table may take (Arrow buffers; text at its length).
    """

    max_rows: int = 2_000_000
    max_columns: int = 1_000
    max_bytes: int = 256 * 1024 * 1024


def table_suffix(name: str, *, content_type: str = "", field: str = "file") -> str:
    """Return which of :data:`SUFFIXES` a file name ends with, or refuse the file.

    A name without a known suffix falls back on a Parquet or CSV content type.
    """
    lowered = name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            return suffix
    kind = content_type.lower()
    if "parquet" in kind:
        return ".parquet"
    if "csv" in kind:
        return ".csv"
    raise InvalidInput(
        f"send a table file named *{', *'.join(SUFFIXES)} (multipart field {field!r})",
        field=field,
    )


def read_table(
    source: bytes | Path, *, suffix: str, limits: TableLimits, field: str = "file"
) -> pd.DataFrame:
    """Read a table file within ``limits``.

    Args:
        source: The file's content, or its path.
        suffix: One of :data:`SUFFIXES` (see :func:`table_suffix`).
        limits: The bounds to hold.
        field: The request field a refusal names.

    Raises:
        PayloadTooLarge: The table exceeds a bound (the message names it).
        InvalidInput: The content is not a readable table of that format.
    """
    if suffix in (".parquet", ".pq"):
        return _read_parquet(source, limits=limits, field=field)
    if suffix in (".csv", ".csv.gz"):
        return _read_csv(source, gzipped=suffix == ".csv.gz", limits=limits, field=field)
    raise InvalidInput(f"send a table file named *{', *'.join(SUFFIXES)}", field=field)


def _too_large(what: str, value: int, limit: int, field: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the file holds {value:,} {what}; at most {limit:,} are accepted", field=field
    )


def _open_parquet(source: Any, *, field: str, **options: Any) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    handle = pa.BufferReader(source) if isinstance(source, bytes) else source
    try:
        return pq.ParquetFile(handle, pre_buffer=False, **options)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise InvalidInput(
            f"the file is not a readable Parquet file: {error}", field=field
        ) from None


def _check_footer(metadata: Any, limits: TableLimits, field: str) -> None:
    """Refuse by the footer's rows, columns and uncompressed size, before decoding anything."""
    groups = [metadata.row_group(index) for index in range(metadata.num_row_groups)]
    rows = max(int(metadata.num_rows), sum(int(group.num_rows) for group in groups))
    columns = int(metadata.num_columns)
    if rows > limits.max_rows:
        raise _too_large("rows", rows, limits.max_rows, field)
    if columns > limits.max_columns:
        raise _too_large("columns", columns, limits.max_columns, field)
    # Eight bytes a cell is the least a decoded value takes, however well the file compressed it.
    size = max(sum(int(group.total_byte_size) for group in groups), rows * columns * 8)
    if size > limits.max_bytes:
        raise _too_large("bytes once decoded", size, limits.max_bytes, field)


def check_parquet_footer(source: Any, *, limits: TableLimits, field: str = "file") -> None:
    """Refuse a Parquet file by its footer alone: rows, columns, uncompressed size.

    ``source`` may be an open pyarrow file (an object in a bucket, read in place), so only the
    footer's bytes are fetched; an oversized table is refused before its body is downloaded.

    Raises:
        PayloadTooLarge: The footer declares more than ``limits`` allow.
        InvalidInput: The footer is not a readable Parquet footer.
    """
    _check_footer(_open_parquet(source, field=field).metadata, limits, field)


def _read_parquet(source: bytes | Path, *, limits: TableLimits, field: str) -> pd.DataFrame:
    import pyarrow as pa

    table = read_parquet_table(source, limits=limits, field=field)
    try:
        frame: pd.DataFrame = table.to_pandas()
    except (pa.ArrowException, ValueError) as error:
        raise InvalidInput(
            f"the file is not a readable Parquet file: {error}", field=field
        ) from None
    return frame


def read_parquet_table(
    source: bytes | Path,
    *,
    limits: TableLimits,
    field: str = "file",
    columns: Sequence[str] | None = None,
    decode_text: bool = True,
    whole: bool = False,
) -> pa.Table:
    """Read a Parquet file within ``limits`` as an Arrow table (no pandas on the way).

    ``columns`` reads only those (the footer is still judged whole); ``decode_text=False``
    leaves text dictionary-encoded once its expanded length has been counted, for a caller
    that only checks the values. ``whole=True`` decodes the columns side by side on Arrow's
    threads, the file as one batch rather than 65,536 rows at a time: only for a caller that
    has checked the columns are flat numbers, times, booleans or text, whose decoded size the
    footer bounds (text stays dictionary-encoded until counted either way).

    Raises:
        PayloadTooLarge: The table exceeds a bound (the message names it).
        InvalidInput: The content is not a readable Parquet file.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    probe = _open_parquet(source, field=field)
    _check_footer(probe.metadata, limits, field)
    schema = probe.schema_arrow
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    text = [
        column.name
        for column in schema
        if pa.types.is_string(column.type)
        or pa.types.is_large_string(column.type)
        or pa.types.is_binary(column.type)
        or pa.types.is_large_binary(column.type)
    ]
    # Text stays dictionary-encoded until its expanded length has been counted.
    handle = _open_parquet(source, field=field, read_dictionary=text)
    used = 0
    batches = []
    try:
        chosen = None if columns is None else list(columns)
        rows = max(_BATCH_ROWS, int(handle.metadata.num_rows)) if whole else _BATCH_ROWS
        for batch in handle.iter_batches(batch_size=rows, columns=chosen, use_threads=whole):
            arrays = []
            for column, array in zip(schema, batch.columns, strict=True):
                if pa.types.is_dictionary(array.type):
                    lengths = pc.take(pc.binary_length(array.dictionary), array.indices)
                    used += int(pc.sum(lengths).as_py() or 0) + 8 * len(array)
                    if used > limits.max_bytes:
                        break
                    if column.name in text and decode_text:
                        array = array.dictionary_decode()
                else:
                    used += int(array.nbytes)
                arrays.append(array)
            if used > limits.max_bytes:
                raise _too_large("bytes once decoded", used, limits.max_bytes, field)
            if decode_text:
                batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
            else:  # dictionary-encoded text: not the file's own types
                batches.append(pa.RecordBatch.from_arrays(arrays, names=schema.names))
        if decode_text or not batches:
            return pa.Table.from_batches(batches, schema=schema)
        return pa.Table.from_batches(batches)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise InvalidInput(
            f"the file is not a readable Parquet file: {error}", field=field
        ) from None


def _inflate(content: bytes, *, limit: int, field: str) -> bytes:
    """Decompress gzip content, refusing it as soon as it inflates beyond ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=31)
    parts: list[bytes] = []
    size = 0
    pending = content
    try:
        while pending:
            part = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            size += len(part)
            if size > limit:
                raise _too_large("bytes once decompressed", size, limit, field)
            parts.append(part)
            if inflater.eof:
                break
        if not inflater.eof:
            raise InvalidInput("the gzip stream is truncated", field=field)
    except zlib.error as error:
        raise InvalidInput(f"the file is not gzip-compressed CSV: {error}", field=field) from None
    return b"".join(parts)


def _read_csv(
    source: bytes | Path, *, gzipped: bool, limits: TableLimits, field: str
) -> pd.DataFrame:
    import pandas as pd

    if isinstance(source, Path):
        size = source.stat().st_size
        if size > limits.max_bytes:
            raise _too_large("bytes", size, limits.max_bytes, field)
        source = source.read_bytes()
    content = _inflate(source, limit=limits.max_bytes, field=field) if gzipped else source
    if len(content) > limits.max_bytes:
        raise _too_large("bytes", len(content), limits.max_bytes, field)
    if b"\x00" in content:
        raise InvalidInput(
            "the file is not CSV text: it holds NUL bytes (binary data)", field=field
        )
    # Every row ends a line (quoted line breaks only add lines), so this bounds what pandas parses.
    lines = content.count(b"\n") + (not content.endswith(b"\n"))
    if lines > limits.max_rows + 1:
        raise PayloadTooLarge(
            f"the file holds {lines:,} lines; at most {limits.max_rows:,} rows (and a header) "
            "are accepted",
            field=field,
        )
    header = content.split(b"\n", 1)[0]
    if header.count(b",") + 1 > limits.max_columns:
        columns = header.count(b",") + 1
        raise _too_large("columns", columns, limits.max_columns, field)
    try:
        frame = pd.read_csv(io.BytesIO(content), nrows=limits.max_rows + 1)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise InvalidInput(f"the file is not readable CSV: {error}", field=field) from None
    if len(frame) > limits.max_rows:
        raise PayloadTooLarge(
            f"the file holds more than {limits.max_rows:,} rows; at most {limits.max_rows:,} "
            "are accepted",
            field=field,
        )
    return frame
