"""Window summaries: a window's columns counted into the baseline's bins, streamed from files.

A window is never compared value by value with the reference. A numeric column whose reference
has a uniform grid (:mod:`monitors.baseline.grid`: many distinct values, a large reference) is
counted into its equal-width cells in one pass (a compiled loop from 262,144 values, numpy's
passes over cached blocks below), non-finite values skipped in the same pass, plus the exact count
and mass beyond the reference range; other numeric columns are
sorted once per batch and counted into the quantile bins (and exact counts at heavy values).
Small windows also keep raw values for exact tests. Categorical columns are counted from their
codes. Parquet windows stream in batches, so memory stays bounded by the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from monitors.baseline.column_summary import (
    FREQUENCY_LIMIT,
    CategoricalSummary,
    FloatArray,
    IntArray,
    NumericSummary,
    bin_totals,
    count_at_atoms,
    numeric_array,
    numeric_values,
    plain_value,
)
from monitors.baseline.grid import BLOCK, COMPILED_MIN, CellCounts, ReferenceGrid, count_cells
from monitors.baseline.summary import Baseline
from monitors.engine import BATCH_ROWS, FIRST_SEEN, dictionary_codes
from monitors.kinds import Progress

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "BATCH_ROWS",
    "EXACT_KS_LIMIT",
    "CategoricalWindow",
    "NumericWindow",
    "WindowSummary",
    "merge_window",
    "summarise_window",
    "window_from_dict",
    "window_to_dict",
]

EXACT_KS_LIMIT = 10_000
"""Up to this many window values KS p-values are exact (scipy's ``auto`` boundary)."""


@dataclass(slots=True)
class NumericWindow:
    """The running summary of one numeric window column against its reference bins."""

    reference: NumericSummary
    count: int = 0
    missing: int = 0
    bin_counts: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    bin_sums: FloatArray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    atom_counts: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    below: int = 0
    below_mass: float = 0.0
    above: int = 0
    above_mass: float = 0.0
    grid_le: IntArray | None = None
    grid_lt: IntArray | None = None
    frequencies: dict[float, int] | None = field(default_factory=dict)
    raw: list[FloatArray] | None = field(default_factory=list)
    cells: IntArray | None = None
    grid: ReferenceGrid | None = None

    def __post_init__(self) -> None:
        reference = self.reference
        self.grid = reference.grid()
        if self.grid is not None:
            self.cells = np.zeros(self.grid.cells, dtype=np.int64)
            self.frequencies = None
            return
        edges = self.reference.edges
        self.bin_counts = np.zeros(max(edges.size - 1, 0), dtype=np.int64)
        self.bin_sums = np.zeros(max(edges.size - 1, 0), dtype=np.float64)
        self.atom_counts = np.zeros(self.reference.atoms.size, dtype=np.int64)
        if self.reference.distinct is None:
            self.frequencies = None
        if self.reference.values is not None:
            self.grid_le = np.zeros(np.unique(self.reference.values).size, dtype=np.int64)
            self.grid_lt = np.zeros_like(self.grid_le)

    def add(self, finite: FloatArray, missing: int) -> None:
        """Fold a batch of finite values (and how many were missing) into the summary."""
        self.missing += missing
        if finite.size == 0:
            return
        if self.grid is not None:
            self._add_to_cells(finite, self.grid)
            return
        ordered = np.sort(finite)
        size = int(ordered.size)
        self.count += size
        reference = self.reference
        if reference.edges.size:
            low, high = float(reference.edges[0]), float(reference.edges[-1])
            below = int(np.searchsorted(ordered, low, side="left"))
            start = int(np.searchsorted(ordered, high, side="right"))
            self.below += below
            self.below_mass += below * low - float(ordered[:below].sum())
            self.above += size - start
            self.above_mass += float(ordered[start:].sum()) - (size - start) * high
            if self.bin_counts.size:
                counts, sums = bin_totals(ordered, reference.edges, reference.atoms)
                self.bin_counts += counts
                self.bin_sums += sums
            self.atom_counts += count_at_atoms(ordered, reference.atoms)
        if self.grid_le is not None and self.grid_lt is not None and reference.values is not None:
            grid = np.unique(reference.values)
            self.grid_le += np.searchsorted(ordered, grid, side="right")
            self.grid_lt += np.searchsorted(ordered, grid, side="left")
        if self.frequencies is not None:
            change = np.flatnonzero(np.diff(ordered)) + 1
            if change.size + 1 + len(self.frequencies) > 2 * FREQUENCY_LIMIT:
                self.frequencies = None
            else:
                starts = np.concatenate(([0], change))
                counts = np.diff(np.concatenate((starts, [size])))
                for value, count in zip(ordered[starts], counts, strict=True):
                    key = float(value)
                    self.frequencies[key] = self.frequencies.get(key, 0) + int(count)
                if len(self.frequencies) > FREQUENCY_LIMIT:
                    self.frequencies = None
        if self.raw is not None:
            if self.count > EXACT_KS_LIMIT:
                self.raw = None
            else:
                self.raw.append(ordered)

    def add_values(self, values: FloatArray) -> None:
        """Fold a batch of values, missing and ±inf included, into the summary.

        A column with reference cells is counted as it is, non-finite values skipped in the
        same pass (no separate finiteness pass, no filtered copy); others are filtered first.
        """
        if self.grid is None:
            finite = values[np.isfinite(values)]
            self.add(finite, int(values.size - finite.size))
            return
        counted = count_cells(
            values, low=self.grid.low, high=self.grid.high, scale=self.grid.scale,
            cells=self.grid.cells,
        )  # fmt: skip
        self._add_counted(counted, values, int(values.size) - counted.missing)

    def _add_to_cells(self, finite: FloatArray, grid: ReferenceGrid) -> None:
        """Count a batch into the reference's cells (:func:`monitors.baseline.grid.count_cells`)."""
        counted = count_cells(
            finite, low=grid.low, high=grid.high, scale=grid.scale, cells=grid.cells
        )
        self._add_counted(counted, finite, int(finite.size))

    def _add_counted(self, counted: CellCounts, values: FloatArray, finite: int) -> None:
        assert self.cells is not None
        self.cells += counted.counts
        self.missing += counted.missing
        self.below += counted.below
        self.below_mass += counted.below_mass
        self.above += counted.above
        self.above_mass += counted.above_mass
        self.count += finite
        if self.raw is not None:
            if self.count > EXACT_KS_LIMIT:
                self.raw = None
            else:
                kept = values if finite == values.size else values[np.isfinite(values)]
                self.raw.append(np.array(kept, dtype=np.float64))

    def raw_values(self) -> FloatArray | None:
        """Return every window value when the window was small enough to keep them."""
        if self.raw is None:
            return None
        if not self.raw:
            return np.empty(0, dtype=np.float64)
        return np.sort(np.concatenate(self.raw))


@dataclass(slots=True)
class CategoricalWindow:
    """The running category counts of one categorical window column."""

    frequencies: dict[Any, int] = field(default_factory=dict)
    missing: int = 0

    @property
    def count(self) -> int:
        """Return the non-missing values counted."""
        return sum(self.frequencies.values())

    def add(self, counts: Iterable[tuple[Any, int]], missing: int) -> None:
        """Fold a batch's category counts into the summary."""
        self.missing += missing
        for key, count in counts:
            if count:
                value = plain_value(key)
                self.frequencies[value] = self.frequencies.get(value, 0) + int(count)


WindowSummary = NumericWindow | CategoricalWindow


def window_to_dict(summary: WindowSummary) -> dict[str, Any]:
    """Return a JSON-ready partial summary (without the reference, which the reader has).

    Category keys keep their type as ``[key, count]`` pairs; a partial computed elsewhere (a
    Spark task) travels this way and is rebuilt with :func:`window_from_dict`.
    """
    if isinstance(summary, CategoricalWindow):
        return {
            "type": "categorical",
            "frequencies": [[key, count] for key, count in summary.frequencies.items()],
            "missing": summary.missing,
        }
    return {
        "type": "numeric",
        "count": summary.count,
        "missing": summary.missing,
        "cells": None if summary.cells is None else summary.cells.tolist(),
        "bin_counts": summary.bin_counts.tolist(),
        "bin_sums": summary.bin_sums.tolist(),
        "atom_counts": summary.atom_counts.tolist(),
        "below": summary.below,
        "below_mass": summary.below_mass,
        "above": summary.above,
        "above_mass": summary.above_mass,
        "grid_le": None if summary.grid_le is None else summary.grid_le.tolist(),
        "grid_lt": None if summary.grid_lt is None else summary.grid_lt.tolist(),
        "frequencies": (
            None
            if summary.frequencies is None
            else [[k, v] for k, v in summary.frequencies.items()]
        ),
        "raw": None if summary.raw is None else [part.tolist() for part in summary.raw],
    }


def window_from_dict(
    data: dict[str, Any], reference: NumericSummary | CategoricalSummary
) -> WindowSummary:
    """Rebuild a partial summary written by :func:`window_to_dict` against its reference."""
    if data["type"] == "categorical":
        return CategoricalWindow(
            frequencies={plain_value(key): int(count) for key, count in data["frequencies"]},
            missing=int(data["missing"]),
        )
    if not isinstance(reference, NumericSummary):
        raise ValueError("a numeric window summary needs a numeric reference")
    summary = NumericWindow(reference=reference)
    summary.count = int(data["count"])
    summary.missing = int(data["missing"])
    cells = data["cells"]
    summary.cells = None if cells is None else np.asarray(cells, dtype=np.int64)
    summary.bin_counts = np.asarray(data["bin_counts"], dtype=np.int64)
    summary.bin_sums = np.asarray(data["bin_sums"], dtype=np.float64)
    summary.atom_counts = np.asarray(data["atom_counts"], dtype=np.int64)
    summary.below = int(data["below"])
    summary.below_mass = float(data["below_mass"])
    summary.above = int(data["above"])
    summary.above_mass = float(data["above_mass"])
    for name in ("grid_le", "grid_lt"):
        grid = data[name]
        setattr(summary, name, None if grid is None else np.asarray(grid, dtype=np.int64))
    frequencies = data["frequencies"]
    summary.frequencies = (
        None if frequencies is None else {float(k): int(v) for k, v in frequencies}
    )
    raw = data["raw"]
    summary.raw = None if raw is None else [np.asarray(part, dtype=np.float64) for part in raw]
    return summary


def merge_window(left: WindowSummary, right: WindowSummary) -> WindowSummary:
    """Merge two partial summaries of one column (two shares of a window) into ``left``.

    Counts, bins, atoms and frequencies add exactly; the result equals summarising both shares
    in one pass (sums up to floating-point order): frequencies and raw values are dropped at
    the same limits the streaming pass drops them.
    """
    if isinstance(left, CategoricalWindow) and isinstance(right, CategoricalWindow):
        left.add(right.frequencies.items(), right.missing)
        return left
    if not isinstance(left, NumericWindow) or not isinstance(right, NumericWindow):
        raise ValueError("cannot merge a numeric and a categorical window summary")
    left.count += right.count
    left.missing += right.missing
    if left.cells is not None and right.cells is not None:
        left.cells = left.cells + right.cells
    left.bin_counts = left.bin_counts + right.bin_counts
    left.bin_sums = left.bin_sums + right.bin_sums
    left.atom_counts = left.atom_counts + right.atom_counts
    left.below += right.below
    left.below_mass += right.below_mass
    left.above += right.above
    left.above_mass += right.above_mass
    if left.grid_le is not None and right.grid_le is not None:
        left.grid_le = left.grid_le + right.grid_le
    if left.grid_lt is not None and right.grid_lt is not None:
        left.grid_lt = left.grid_lt + right.grid_lt
    if left.frequencies is None or right.frequencies is None:
        left.frequencies = None
    else:
        for key, count in right.frequencies.items():
            left.frequencies[key] = left.frequencies.get(key, 0) + count
        if len(left.frequencies) > FREQUENCY_LIMIT:
            left.frequencies = None
    if left.raw is None or right.raw is None or left.count > EXACT_KS_LIMIT:
        left.raw = None
    else:
        left.raw.extend(right.raw)
    return left


def new_window_summary(reference: NumericSummary | CategoricalSummary) -> WindowSummary:
    if isinstance(reference, NumericSummary):
        return NumericWindow(reference=reference)
    return CategoricalWindow()


def _add_series(summary: WindowSummary, values: pd.Series) -> None:
    if isinstance(summary, NumericWindow):
        if summary.grid is not None:
            summary.add_values(numeric_array(values))
            return
        finite = numeric_values(values)
        summary.add(finite, len(values) - int(finite.size))
    elif isinstance(values.dtype, pd.CategoricalDtype):
        categories = values.cat.categories
        counted = count_codes(values.cat.codes.to_numpy(), len(categories))
        summary.add(zip(categories.tolist(), counted[1:].tolist(), strict=True), int(counted[0]))
    else:
        counts = values.value_counts(dropna=False, sort=False)
        present = [(key, count) for key, count in counts.items() if not _is_missing(key)]
        summary.add(present, int(counts.sum()) - sum(count for _, count in present))


FEW_CODES = 16
"""Up to this many codes (the missing code included) a column is counted by comparisons."""
COMPILED_CODES = 65_536
"""Fewer categories than this are counted by the compiled loop (its tables stay small)."""


def count_codes(codes: npt.NDArray[np.integer[Any]], size: int) -> IntArray:
    """Return how often each code occurs, the missing code ``-1`` first: ``size + 1`` counts.

    From ``COMPILED_MIN`` codes (fewer than ``COMPILED_CODES`` categories) one compiled loop
    counts them (:func:`monitors.baseline.grid_kernel.count_codes_into`, half the cost of the
    passes below on the benchmark's columns). Below that, few codes are counted one comparison
    pass each, on the narrow codes as they are (a
    vectorised compare and count of one-byte codes costs a fraction of ``bincount``'s scattered
    increment per value). More are widened for ``bincount`` one block at a time into a reused
    buffer, not all at once (a window-sized ``intp`` copy of one-byte codes costs more in fresh
    pages than in counting).
    """
    counts = np.zeros(size + 1, dtype=np.int64)
    if codes.size >= COMPILED_MIN and size < COMPILED_CODES:
        from monitors.baseline.grid_kernel import count_codes_into

        count_codes_into(codes, counts)
        return counts
    few = size + 1 <= FEW_CODES
    wide: npt.NDArray[Any] = np.empty(
        min(int(codes.size), BLOCK), dtype=np.bool_ if few else np.intp
    )
    for start in range(0, int(codes.size), BLOCK):
        block = codes[start : start + BLOCK]
        buffer = wide[: block.size]
        if few:
            for code in range(-1, size):
                counts[code + 1] += np.count_nonzero(np.equal(block, code, out=buffer))
            continue
        np.add(block, 1, out=buffer, casting="unsafe")
        counts += np.bincount(buffer, minlength=size + 1)
    return counts


def _is_missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def add_arrow_batch(summary: WindowSummary, array: Any) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(summary, NumericWindow):
        if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
            summary.add_values(array.cast(pa.float64()).to_numpy(zero_copy_only=False))
        else:
            _add_series(summary, array.to_pandas())
        return
    if pa.types.is_dictionary(array.type):
        indices = array.indices.to_numpy(zero_copy_only=False)
        if array.null_count:
            indices = indices[array.is_valid().to_numpy(zero_copy_only=False)]
        counts = np.bincount(indices.astype(np.int64), minlength=len(array.dictionary))
        keys = array.dictionary.to_pylist()
        pairs = zip(keys, counts.tolist(), strict=True)
        summary.add(((key, count) for key, count in pairs if key is not None), array.null_count)
        return
    counted = pc.value_counts(array)
    pairs = zip(
        counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
    )
    summary.add(((key, count) for key, count in pairs if key is not None), array.null_count)


def _add_column(summary: WindowSummary, column: pa.ChunkedArray, field: pa.Field) -> None:
    """Fold a read window's column exactly as its pandas conversion would fold.

    Numbers into numeric summaries and text into categorical ones are counted from Arrow
    (the same float64 values; the same counts in the same first-seen order), text read as
    codes (:data:`monitors.engine.FIRST_SEEN`) chunk by chunk from its codes; any other
    pairing (integer categories, whose nulls pandas turns into floats; booleans; dates;
    dictionaries as stored) converts this one column and folds it as a frame's.
    """
    import pyarrow as pa

    kind = column.type
    if isinstance(summary, CategoricalWindow) and field.metadata == FIRST_SEEN:
        _add_codes(summary, column)
        return
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    if (numeric and isinstance(summary, NumericWindow)) or (
        text and isinstance(summary, CategoricalWindow)
    ):
        try:
            add_arrow_batch(summary, column)
            return
        except pa.ArrowInvalid:  # an integer beyond float64's exact range: convert as pandas
            pass
    _add_series(summary, column.to_pandas())


def _add_codes(summary: CategoricalWindow, column: pa.ChunkedArray) -> None:
    """Count text read as codes whose dictionaries list values in first-seen order."""
    import pyarrow as pa

    codes, values = dictionary_codes(column)
    counts = np.bincount(codes, minlength=values)
    keys = pa.concat_arrays([c.dictionary for c in column.chunks]).to_pylist() if values else []
    summary.add(zip(keys, counts.tolist(), strict=True), column.null_count)


def summarise_window(
    baseline: Baseline,
    window: pd.DataFrame | pa.Table | Path,
    columns: list[str],
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> dict[str, WindowSummary]:
    """Summarise the window's ``columns`` against the baseline's bins, streaming files.

    Columns absent from the window get an empty summary (judged ``insufficient``);
    ``progress`` hears the share of a file's rows read after each batch. A window read as an
    Arrow table gives the summaries its pandas conversion would.
    """
    summaries = {name: new_window_summary(baseline.column(name)) for name in columns}
    if isinstance(window, pd.DataFrame):
        for name in columns:
            if name in window.columns:
                _add_series(summaries[name], window[name])
        return summaries
    if not isinstance(window, Path):
        for name in columns:
            if name in window.column_names:
                _add_column(summaries[name], window.column(name), window.field(name))
        return summaries
    import pyarrow.parquet as pq

    # No pre-buffering: it reads whole row groups ahead, and memory would follow their size.
    source = pq.ParquetFile(window, pre_buffer=False, buffer_size=1 << 20)
    present = [name for name in columns if name in source.schema_arrow.names]
    if not present:
        return summaries
    total = max(int(source.metadata.num_rows), 1)
    read = 0
    for batch in source.iter_batches(batch_size=batch_rows, columns=present, use_threads=False):
        for name in present:
            add_arrow_batch(summaries[name], batch.column(name))
        read += batch.num_rows
        if progress is not None:
            progress(read / total, f"read {read:,} of {total:,} rows")
    return summaries
