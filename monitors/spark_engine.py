"""The Spark summary engine: a window's summaries computed by Apache Spark, merged here.

The one module that imports PySpark (lazily, inside functions). Spark reads the window's Parquet
files itself and splits them into tasks; each task folds its Arrow batches into the very running
summaries the local engine keeps (:mod:`monitors.drift.window`: counts per reference bin, exact
counts at heavy values, moments, frequencies) and returns one small JSON partial per column; the
driver merges the partials (:func:`monitors.drift.window.merge_window`). Counting with the local
engine's own code is what makes the findings identical: only the order of floating-point sums
differs. The raw window never reaches the driver. Quality, performance and fairness summarise
through a :class:`monitors.engine.Fold` the same way (:func:`spark_fold`): each task folds its
batches with the fold's own ``add`` and sends one pickled partial (Spark already pickles the
functions it ships to its workers; the partials come back from those same workers), which the
driver merges with the fold's ``merge``.

Which engine a run uses is :class:`monitors.engine.SummaryEngine`'s choice.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from monitors.baseline.summary import Baseline
from monitors.drift.window import (
    WindowSummary,
    add_arrow_batch,
    merge_window,
    new_window_summary,
    window_from_dict,
    window_to_dict,
)
from monitors.engine import BATCH_ROWS, Fold, ObjectWindow, read_batches

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

__all__ = ["spark_fold", "spark_session", "spark_window_summaries", "stop_spark"]

S = TypeVar("S")
Window = pd.DataFrame | Path | Sequence[Path] | ObjectWindow

_LOCK = threading.Lock()
_SESSION: list[Any] = []


def spark_session(master: str = "local[2]") -> SparkSession:
    """Return this process's Spark session, started on first use (UI off, bound to loopback).

    One session per process: starting a JVM costs seconds, so runs share it.
    """
    with _LOCK:
        if _SESSION:
            return _SESSION[0]  # type: ignore[no-any-return]
        from pyspark.sql import SparkSession

        # Workers must run this interpreter (so they import Warden and its pinned libraries):
        # SparkContext reads PYSPARK_PYTHON alone, else "python3" from PATH, which in a
        # non-activated venv is another Python. The JVM must bind to loopback.
        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        session = (
            SparkSession.builder.master(master)
            .appName("warden-monitors")
            .config("spark.pyspark.python", sys.executable)
            .config("spark.pyspark.driver.python", sys.executable)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "262144")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        _SESSION.append(session)
        return session


def stop_spark() -> None:
    """Stop this process's Spark session, if one was started."""
    with _LOCK:
        if _SESSION:
            _SESSION.pop().stop()


def _partials(
    baseline: Baseline, columns: list[str]
) -> Any:  # a function Spark ships to its Python workers
    def summarise(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        summaries = {name: new_window_summary(baseline.column(name)) for name in columns}
        for batch in batches:
            for name in columns:
                add_arrow_batch(summaries[name], batch.column(name))
        payloads = [json.dumps(window_to_dict(summaries[name])) for name in columns]
        yield pa.RecordBatch.from_pydict(
            {"column": columns, "payload": payloads},
            schema=pa.schema([("column", pa.string()), ("payload", pa.string())]),
        )

    return summarise


@contextmanager
def _parquet_paths(
    window: pd.DataFrame | Path | Sequence[Path], columns: Sequence[str]
) -> Iterator[list[str]]:
    """Yield the window's Parquet paths; a DataFrame is staged to a temporary file first."""
    if not isinstance(window, pd.DataFrame):
        yield [str(window)] if isinstance(window, Path) else [str(path) for path in window]
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="warden-spark-") as staging:
        path = Path(staging) / "window.parquet"
        present = [name for name in columns if name in window.columns]
        table = pa.Table.from_pandas(window[present], preserve_index=False)
        # Row groups of a batch each: Spark splits a file between tasks by row group only.
        pq.write_table(table, path, row_group_size=BATCH_ROWS)
        yield [str(path)]


def _available(spark: SparkSession, window: Window) -> list[str]:
    """Return the window's column names (an object window's from its first object's footer)."""
    if isinstance(window, pd.DataFrame):
        return [str(name) for name in window.columns]
    if isinstance(window, ObjectWindow):
        if not window.keys:
            return []
        import pyarrow.parquet as pq

        filesystem, paths = window.files()
        with filesystem.open_input_file(paths[0]) as handle:
            return [str(name) for name in pq.read_schema(handle).names]
    paths = [str(window)] if isinstance(window, Path) else [str(path) for path in window]
    return [str(name) for name in spark.read.parquet(*paths).columns]


def _task_rows(
    spark: SparkSession, window: Window, columns: list[str], task: Any, schema: str
) -> Iterator[dict[str, Any]]:
    """Run ``task`` (Arrow batches in, Arrow batches out) over the window; yield its rows.

    Spark reads files itself (a DataFrame is staged to one first). An object window's objects
    are listed as tasks instead, each reading its object through the store's Arrow filesystem
    (for a bucket, pyarrow's S3 client): Spark here has no S3 connector of its own, and needs
    none. The filesystem travels to the tasks as its options (endpoint, region), never
    credentials: each task's client reads the usual ``AWS_*`` variables.
    """
    if isinstance(window, ObjectWindow):
        if not window.keys:
            return
        filesystem, paths = window.files()

        def run(part: Iterable[str]) -> Iterator[pa.RecordBatch]:
            yield from task(read_batches(filesystem, list(part), columns))

        tasks = spark.sparkContext.parallelize(paths, len(paths))
        for batch in tasks.mapPartitions(run).collect():
            yield from batch.to_pylist()
        return
    with _parquet_paths(window, columns) as paths:
        frame = spark.read.parquet(*paths).select(*columns)
        for row in frame.mapInArrow(task, schema).toLocalIterator():
            yield row.asDict()


def spark_window_summaries(
    baseline: Baseline,
    window: Window,
    columns: list[str],
    *,
    session: SparkSession | None = None,
) -> dict[str, WindowSummary]:
    """Summarise the window's ``columns`` against the baseline's bins with Spark.

    ``window`` is one Parquet file, several (a deployment's inference batches), a DataFrame
    (staged to a temporary Parquet file first, so Spark reads it as it reads any window), or
    objects in an artifact store, a bucket's included (:class:`monitors.engine.ObjectWindow`).
    Columns absent from the window get an empty summary, as with the local engine.
    """
    summaries = {name: new_window_summary(baseline.column(name)) for name in columns}
    spark = session or spark_session()
    available = _available(spark, window)
    present = [name for name in columns if name in available]
    if not present:
        return summaries
    task = _partials(baseline, present)
    for row in _task_rows(spark, window, present, task, "column string, payload string"):
        name = str(row["column"])
        part = window_from_dict(json.loads(row["payload"]), baseline.column(name))
        summaries[name] = merge_window(summaries[name], part)
    return summaries


def _fold_task(fold: Fold[Any]) -> Any:  # a function Spark ships to its Python workers
    def summarise(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        state = fold.start()
        for batch in batches:
            if batch.num_rows:
                state = fold.add(state, batch.to_pandas())
        yield pa.RecordBatch.from_pydict(
            {"partial": [pickle.dumps(state, protocol=5)]},
            schema=pa.schema([("partial", pa.binary())]),
        )

    return summarise


def spark_fold(fold: Fold[S], window: Window, *, session: SparkSession | None = None) -> S:
    """Fold the window with Spark: each task folds its batches, the driver merges the partials.

    ``window`` is read as by :func:`spark_window_summaries`; every column of the fold must be in
    it (the kinds check that against the window's columns first).
    """
    spark = session or spark_session()
    state = fold.start()
    for row in _task_rows(spark, window, list(fold.columns), _fold_task(fold), "partial binary"):
        state = fold.merge(state, pickle.loads(row["partial"]))  # noqa: S301 - our workers
    return state
