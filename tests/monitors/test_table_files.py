"""Table files: footer-first refusal of Parquet bombs, bounded streaming, hostile content."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lineage.errors import InvalidInput, PayloadTooLarge
from monitors.table_files import TableLimits, read_table, table_suffix

LIMITS = TableLimits()


def parquet_bomb(rows: int = 20_000_000) -> bytes:
    """Return a small Parquet file (one row group, a constant column) declaring ``rows`` rows."""
    buffer = io.BytesIO()
    table = pa.table({"age": pa.array(np.zeros(rows, dtype=np.int64))})
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return parquet_bomb()


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31.0, None, 52.5],
            "workclass": ["Private", None, "State-gov"],
            "hours": [40, 38, 60],
            "sex": pd.Categorical(["Male", "Female", "Male"]),
        }
    )


def test_a_parquet_bomb_is_refused_by_its_footer_naming_the_limit(bomb: bytes) -> None:
    assert len(bomb) < 400_000
    with pytest.raises(PayloadTooLarge, match=r"20,000,000 rows; at most 2,000,000") as caught:
        read_table(bomb, suffix=".parquet", limits=LIMITS)
    assert caught.value.field == "file"
    wide = TableLimits(max_rows=30_000_000, max_bytes=64 * 1024 * 1024)
    with pytest.raises(
        PayloadTooLarge, match=r"160,000,000 bytes once decoded; at most 67,108,864"
    ):
        read_table(bomb, suffix=".parquet", limits=wide)
    with pytest.raises(PayloadTooLarge, match=r"2 columns; at most 1 "):
        read_table(
            _parquet(pd.DataFrame({"a": [1], "b": [2]})),
            suffix=".pq",
            limits=TableLimits(max_columns=1),
        )


def test_refusing_a_parquet_bomb_keeps_memory_flat(bomb: bytes, tmp_path: Path) -> None:
    """Measure the peak resident memory of a fresh process that reads the bomb (was +1 GB)."""
    path = tmp_path / "bomb.parquet"
    path.write_bytes(bomb)
    script = f"""
import json, resource
from monitors.table_files import TableLimits, read_table
from lineage.errors import PayloadTooLarge
content = open({str(path)!r}, "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_table(content, suffix=".parquet", limits=TableLimits())
    refused = False
except PayloadTooLarge:
    refused = True
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"refused": refused, "growth_kib": after - before}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(done.stdout)
    assert result["refused"] is True
    assert result["growth_kib"] < 50 * 1024


def test_dictionary_encoded_text_is_measured_before_it_is_expanded() -> None:
    text = "x" * 10_000
    content = _parquet(pd.DataFrame({"note": [text] * 50_000}))
    assert len(content) < 100_000
    with pytest.raises(PayloadTooLarge, match=r"bytes once decoded; at most 16,777,216"):
        read_table(content, suffix=".parquet", limits=TableLimits(max_bytes=16 * 1024 * 1024))


def test_a_gzip_bomb_is_refused_while_it_inflates() -> None:
    content = gzip.compress(b"a,b\n" + b"1,2\n" * 5_000_000)
    with pytest.raises(PayloadTooLarge, match=r"bytes once decompressed; at most 1,048,576"):
        read_table(content, suffix=".csv.gz", limits=TableLimits(max_bytes=1024 * 1024))
    with pytest.raises(PayloadTooLarge, match=r"5,000,001 lines; at most 1,000 rows"):
        read_table(content, suffix=".csv.gz", limits=TableLimits(max_rows=1_000))


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (b"PAR1 this is not parquet PAR1", ".parquet", "not a readable Parquet file"),
        (b"", ".parquet", "not a readable Parquet file"),
        (bytes(range(256)) * 4, ".csv", "NUL bytes"),
        ("é".encode("latin-1") * 10 + b"\n1", ".csv", "not readable CSV"),
        (b"not gzip at all", ".csv.gz", "not gzip-compressed CSV"),
        (gzip.compress(b"a,b\n1,2\n")[:-12], ".csv.gz", "truncated"),
    ],
    ids=["garbage parquet", "empty parquet", "binary csv", "not utf-8", "not gzip", "cut gzip"],
)
def test_content_that_is_not_a_table_is_refused_naming_the_field(
    content: bytes, suffix: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        read_table(content, suffix=suffix, limits=LIMITS, field="reference")
    assert caught.value.field == "reference"
    assert not isinstance(caught.value, PayloadTooLarge)


def test_a_truncated_parquet_file_is_refused(frame: pd.DataFrame) -> None:
    content = _parquet(frame)
    for cut in (len(content) // 2, len(content) - 4):
        with pytest.raises(InvalidInput, match="not a readable Parquet file"):
            read_table(content[:cut], suffix=".parquet", limits=LIMITS)


@pytest.mark.parametrize("suffix", [".parquet", ".pq", ".csv", ".csv.gz"])
def test_every_table_suffix_reads_as_pandas_would(
    frame: pd.DataFrame, suffix: str, tmp_path: Path
) -> None:
    if suffix in (".parquet", ".pq"):
        content = _parquet(frame)
        expected = pd.read_parquet(io.BytesIO(content))
    else:
        text = frame.to_csv(index=False).encode()
        expected = pd.read_csv(io.BytesIO(text))
        content = gzip.compress(text) if suffix == ".csv.gz" else text
    pd.testing.assert_frame_equal(read_table(content, suffix=suffix, limits=LIMITS), expected)
    path = tmp_path / f"reference{suffix}"
    path.write_bytes(content)
    pd.testing.assert_frame_equal(read_table(path, suffix=suffix, limits=LIMITS), expected)


def test_a_table_suffix_is_read_from_the_name_or_the_content_type() -> None:
    assert table_suffix("Scores.CSV.GZ") == ".csv.gz"
    assert table_suffix("scores.pq") == ".pq"
    assert table_suffix("blob", content_type="application/vnd.apache.parquet") == ".parquet"
    assert table_suffix("blob", content_type="text/csv") == ".csv"
    with pytest.raises(InvalidInput, match=r"\*\.parquet, \*\.pq, \*\.csv, \*\.csv\.gz"):
        table_suffix("scores.txt", content_type="text/plain")


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
