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

A scheduled run hands Spark a :class:`monitors.inferences.windows.WindowView` (:func:`view_frame`):
one task per inference object reads it through the store's Arrow filesystem, keeps the rows of
the window's time span (:func:`monitors.inferences.windows.within`, the local reader's filter),
renames context columns and casts each object to the window's unified schema; labels are read
the same way and joined by request id in Spark (the oldest label batch winning, as locally), so
neither the window nor its labels ever reach the driver: only the partials, counts
(:func:`spark_census`) and a bounded sample for the drift page (:func:`spark_sample`) do.

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
from monitors.inferences.windows import WindowView, within

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "spark_census",
    "spark_fold",
    "spark_sample",
    "spark_session",
    "spark_window_summaries",
    "stop_spark",
    "view_frame",
]

S = TypeVar("S")
Window = pd.DataFrame | Path | Sequence[Path] | ObjectWindow | WindowView

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
    if isinstance(window, WindowView):
        return list(window.columns)
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
    if isinstance(window, WindowView):
        for row in view_frame(spark, window, columns).mapInArrow(task, schema).toLocalIterator():
            yield row.asDict()
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


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _object_task(
    filesystem: Any,
    stored: dict[str, str],
    target: pa.Schema,
    start: Any,
    end: Any,
) -> Any:  # a function Spark ships to its Python workers
    """Return the task reading its objects' ``stored`` columns as ``target`` (time-filtered)."""

    def read(parts: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        timed = start is not None or end is not None
        for part in parts:
            for path in part.column("path").to_pylist():
                with filesystem.open_input_file(path) as handle:
                    source = pq.ParquetFile(handle, pre_buffer=False, buffer_size=1 << 20)
                    names = set(source.schema_arrow.names)
                    wanted = sorted({c for c in stored.values() if c in names})
                    if timed:
                        wanted = sorted({*wanted, "time"})
                    for batch in source.iter_batches(
                        batch_size=BATCH_ROWS, columns=wanted, use_threads=False
                    ):
                        table = pa.Table.from_batches([batch])
                        if timed:
                            table = within(table, start, end)
                        if not table.num_rows:
                            continue
                        arrays = [
                            table.column(stored[field.name]).cast(field.type)
                            if stored[field.name] in names
                            else pa.nulls(table.num_rows, field.type)
                            for field in target
                        ]
                        yield from pa.Table.from_arrays(arrays, schema=target).to_batches()

    return read


def _label_task(filesystem: Any, target: pa.Schema) -> Any:  # shipped to Spark's workers
    """Return the task reading label objects: request id, label, and the row's order of arrival."""

    def read(parts: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.compute as pc

        for part in parts:
            for index, path in zip(
                part.column("index").to_pylist(), part.column("path").to_pylist(), strict=True
            ):
                offset = 0
                for batch in read_batches(filesystem, [path], ["request_id", "label"]):
                    order = pa.array(range(offset, offset + batch.num_rows), pa.int64())
                    offset += batch.num_rows
                    yield pa.RecordBatch.from_arrays(
                        [
                            batch.column("request_id").cast(pa.string()),
                            batch.column("label").cast(target.field("label").type),
                            pc.add(order, pa.scalar(index << 40, pa.int64())),
                        ],
                        schema=target,
                    )

    return read


def _plain(field: pa.Field) -> pa.Field:
    """Return ``field`` with a dictionary type decoded (Spark has no dictionary type)."""
    import pyarrow as pa

    if pa.types.is_dictionary(field.type):
        return field.with_type(field.type.value_type)
    return field


def view_frame(
    spark: SparkSession, view: WindowView, columns: Sequence[str], *, ids: bool = False
) -> DataFrame:
    """Return the view's ``columns`` as a Spark DataFrame: objects read by tasks, labels joined.

    Nothing is read on the driver but the object keys; the label join, the labelled rows' filter
    and the label's cast happen in Spark. ``ids`` keeps ``request_id``.
    """
    import pyarrow as pa
    from pyspark.sql import functions as sql
    from pyspark.sql.pandas.types import from_arrow_schema

    objects = view.objects
    schema = view.schema
    labelled = view.labelled
    read = [*columns, *([labelled] if labelled is not None and labelled not in columns else [])]
    with_label = "label" in read
    stored = {name: view.columns[name] for name in read if name != "label"}
    if with_label or ids:
        stored["request_id"] = "request_id"
    target = pa.schema(
        [
            _plain(schema.field(source)).with_name(name)
            if source in schema.names
            else pa.field(name, pa.string())
            for name, source in stored.items()
        ]
    )
    filesystem, paths = objects.inferences.files()
    tasks = spark.createDataFrame(
        spark.sparkContext.parallelize([(path,) for path in paths], max(len(paths), 1)),
        "path string",
    )
    frame = tasks.mapInArrow(
        _object_task(filesystem, stored, target, objects.start, objects.end),
        from_arrow_schema(target),
    )
    if with_label:
        frame = frame.join(_labels(spark, view), on="request_id", how="left")
    if labelled is not None:
        frame = frame.where(sql.col(_quoted(labelled)).isNotNull())
        cast = view.label_as
        if cast is not None and cast in frame.columns:
            kind = frame.schema[cast].dataType.typeName()
            label = frame.schema[labelled].dataType.typeName()
            integral = kind in ("byte", "short", "integer", "long", "boolean")
            if integral and label in ("double", "float"):
                frame = frame.withColumn(
                    labelled, sql.col(_quoted(labelled)).cast(frame.schema[cast].dataType)
                )
    kept = [*columns, "request_id"] if ids else list(columns)
    return frame.select(*[sql.col(_quoted(name)) for name in kept])


def _labels(spark: SparkSession, view: WindowView) -> DataFrame:
    """Return one label per request id (the first one logged), read by tasks, deduplicated."""
    import pyarrow as pa
    from pyspark.sql import functions as sql
    from pyspark.sql.pandas.types import from_arrow_schema

    labels = view.objects.labels
    known = view.label_schema
    label_type = (
        _plain(known.field("label")).type
        if known is not None and "label" in known.names
        else pa.string()
    )
    target = pa.schema([("request_id", pa.string()), ("label", label_type), ("order", pa.int64())])
    filesystem, paths = labels.files()
    tasks = spark.createDataFrame(
        spark.sparkContext.parallelize(list(enumerate(paths)), max(len(paths), 1)),
        "index long, path string",
    )
    read = tasks.mapInArrow(_label_task(filesystem, target), from_arrow_schema(target))
    return read.groupBy("request_id").agg(sql.min_by("label", "order").alias("label"))


def spark_census(
    view: WindowView, columns: Sequence[str], *, session: SparkSession | None = None
) -> tuple[int, dict[str, int]]:
    """Count the view's rows and each column's non-null values in one Spark job."""
    from pyspark.sql import functions as sql

    spark = session or spark_session()
    frame = view_frame(spark, view, columns, ids=True)
    row = frame.agg(
        sql.count(sql.lit(1)).alias("rows"),
        *[sql.count(sql.col(_quoted(name))).alias(f"c{i}") for i, name in enumerate(columns)],
    ).collect()[0]
    return int(row["rows"]), {name: int(row[f"c{i}"]) for i, name in enumerate(columns)}


def spark_sample(
    view: WindowView, columns: Sequence[str], rows: int, *, session: SparkSession | None = None
) -> pd.DataFrame:
    """Return at most ``rows`` rows of the view's ``columns``, sampled in Spark (seed 0)."""
    spark = session or spark_session()
    frame = view_frame(spark, view, columns)
    if view.rows > rows:
        frame = frame.sample(fraction=min(1.0, 1.5 * rows / view.rows), seed=0)
    sample: pd.DataFrame = frame.limit(rows).toPandas()
    return sample
