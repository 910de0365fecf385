"""Which engine summarises a window: the local streaming pass, or Spark for large windows.

Only the summaries change engine; statistics, verdicts and findings are computed from them
the same way, so both engines give the same findings. Spark pays off only on large windows
(starting its JVM and Python workers costs seconds: ``bench/spark_engine.py`` measures where),
so ``auto`` sends a window to Spark from ``row_threshold`` rows, and named deployments always.
Drift and prediction drift summarise into :mod:`monitors.drift.window`'s summaries; quality,
performance and fairness into a :class:`Fold` (start, add a batch, merge two partials), run here
over a DataFrame or a Parquet file's batches (:func:`fold_locally`) or by Spark's tasks
(:func:`monitors.spark_engine.spark_fold`): one fold, so both engines count with the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs

    from lineage.storage import ObjectStore

__all__ = [
    "ENGINES",
    "FIRST_SEEN",
    "EngineName",
    "Fold",
    "ObjectWindow",
    "SummaryEngine",
    "dictionary_codes",
    "fold_locally",
]

S = TypeVar("S")

EngineName = Literal["local", "spark"]
ENGINES: tuple[str, ...] = ("local", "spark", "auto")


@dataclass(frozen=True, slots=True)
class SummaryEngine:
    """The engine rule of a process (the settings ``monitor_engine``, ``spark_*``).

    Attributes:
        mode: ``local`` (always), ``spark`` (always) or ``auto`` (by size and deployment).
        row_threshold: Under ``auto``, windows of at least this many rows go to Spark.
        deployments: Under ``auto``, deployment names whose windows always go to Spark.
        master: The Spark master URL (``local[2]`` runs Spark inside this machine).
    """

    mode: Literal["local", "spark", "auto"] = "local"
    row_threshold: int = 5_000_000
    deployments: frozenset[str] = frozenset()
    master: str = "local[2]"

    def choose(self, *, rows: int, deployment: str | None = None) -> EngineName:
        """Return the engine for a window of ``rows`` rows of ``deployment``."""
        if self.mode == "auto":
            if deployment is not None and deployment in self.deployments:
                return "spark"
            return "spark" if rows >= self.row_threshold else "local"
        return self.mode


@dataclass(frozen=True, slots=True)
class Fold(Generic[S]):
    """A mergeable summary of a window: what a kind counts, whichever engine counts it.

    ``add`` folds one batch (a DataFrame holding ``columns``, maybe others, in any order and of
    any size) into a partial; ``merge`` joins two partials. A fold must give the same partial
    whatever the batches and the order of merging, up to floating-point summation order: that
    is what makes the Spark engine's findings the local engine's. Its functions travel to
    Spark's Python workers (cloudpickle), so they close over plain data only.
    """

    columns: tuple[str, ...]
    start: Callable[[], S]
    add: Callable[[S, pd.DataFrame], S]
    merge: Callable[[S, S], S]


BATCH_ROWS = 262_144
"""Rows per batch when a Parquet window streams (the drift engine's batch size too)."""

FIRST_SEEN = {b"warden.dictionary": b"first-seen"}
"""Arrow field metadata of a window's text column read as dictionary codes: in every chunk the
dictionary holds the values present, in the order they first occur, so counting the codes chunk
by chunk counts as a frame's ``value_counts`` does (:mod:`monitors.drift.window`)."""


def dictionary_codes(column: pa.ChunkedArray) -> tuple[Any, int]:
    """Return a dictionary column's codes, chunks laid end to end, nulls left out.

    Each chunk's codes are shifted past the previous chunks' dictionaries, so code ``k`` names
    the ``k``-th value of the chunks' dictionaries concatenated; also return how many values
    those hold. One pass over the whole column, whatever its number of chunks.
    """
    import numpy as np

    chunks = column.chunks
    sizes = np.array([len(chunk.dictionary) for chunk in chunks], dtype=np.int64)
    if not chunks:
        return np.empty(0, dtype=np.int64), 0
    lengths = np.array([len(chunk) for chunk in chunks], dtype=np.int64)
    shifts = np.repeat(np.cumsum(sizes) - sizes, lengths)
    codes = np.concatenate([_codes(chunk) for chunk in chunks]) + shifts
    if column.null_count:
        import pyarrow.compute as pc

        codes = codes[pc.is_valid(column).to_numpy(zero_copy_only=False)]
    return codes, int(sizes.sum())


def _codes(chunk: pa.DictionaryArray) -> Any:
    indices = chunk.indices
    if indices.null_count:  # its nulls would come out as NaN: any code does, they are dropped
        indices = indices.fill_null(0)
    return indices.to_numpy(zero_copy_only=False)


@dataclass(frozen=True, slots=True)
class ObjectWindow:
    """A window's Parquet objects in an artifact store (the data directory or an S3 bucket).

    Read in place through the store's Arrow filesystem (:meth:`ObjectStore.arrow_filesystem`):
    here object by object, on Spark one task per object (:mod:`monitors.spark_engine`).
    """

    store: ObjectStore
    keys: tuple[str, ...]

    def files(self) -> tuple[pyarrow.fs.FileSystem, list[str]]:
        """Return the store's Arrow filesystem and the objects' paths on it."""
        filesystem, root = self.store.arrow_filesystem()
        return filesystem, [f"{root}/{key}" for key in self.keys]


def read_batches(
    filesystem: pyarrow.fs.FileSystem,
    paths: list[str],
    columns: list[str] | None,
    *,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Yield the Parquet files' record batches (``columns`` only), one file open at a time."""
    import pyarrow.parquet as pq

    for path in paths:
        with filesystem.open_input_file(path) as handle:
            source = pq.ParquetFile(handle, pre_buffer=False, buffer_size=1 << 20)
            yield from source.iter_batches(
                batch_size=batch_rows, columns=columns, use_threads=False
            )


def fold_locally(
    fold: Fold[S], window: pd.DataFrame | Path | ObjectWindow, *, batch_rows: int = BATCH_ROWS
) -> S:
    """Fold the window here: a DataFrame as one batch, Parquet files batch by batch."""
    import pandas as pd

    columns = list(fold.columns)
    if isinstance(window, pd.DataFrame):  # as it is: a fold reads its columns by name
        return fold.add(fold.start(), window)
    if isinstance(window, ObjectWindow):
        filesystem, paths = window.files()
    else:
        import pyarrow.fs

        filesystem, paths = pyarrow.fs.LocalFileSystem(), [str(Path(window).absolute())]
    state = fold.start()
    for batch in read_batches(filesystem, paths, columns, batch_rows=batch_rows):
        state = fold.add(state, batch.to_pandas())
    return state
