"""Equal-width cells: what a large window is counted into in one pass.

Counting a window into the reference's quantile bins needs a sort or a binary search per value;
counting it into equal-width cells needs only ``floor((v - low) · scale)`` and a ``bincount``.
So a numeric reference with many values and many distinct values also keeps its exact count in
each of ``CELLS`` equal-width cells between its minimum and maximum (counted once, when the
baseline is built, and stored with it). A window counted into the same cells gives both CDFs
exactly at every cell boundary; inside a cell both are taken as linear. An integral of
``|F_ref - F_cur|`` is then off by at most ``Σ width · (p + q)`` over the cells, i.e.
``2 · (high - low) / CELLS``; in practice the two shapes inside a cell differ only by noise and
the error is far smaller (the drift tests and ``bench.drift`` measure it against scipy).

No cells are kept when one cell would hold more than ``MAX_CELL_MASS`` of the reference's mass
away from its heavy values (a far outlier stretching the range): such references keep the exact
sort-and-search path, as do small references and columns with few distinct values.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "BLOCK",
    "CELLS",
    "COMPILED_MIN",
    "MAX_CELL_MASS",
    "CellCounts",
    "ReferenceGrid",
    "count_cells",
    "reference_cells",
]

CELLS = 16_384
"""Equal-width cells per numeric column between the reference's minimum and maximum."""
MAX_CELL_MASS = 0.01
"""Largest share of the reference's mass (heavy values aside) one cell may hold."""
BLOCK = 65_536
"""Values per block of the vectorised count (its temporaries stay in the CPU cache)."""
COMPILED_MIN = 1 << 18
"""From this many values an array is counted by the compiled loop (:mod:`.grid_kernel`).

One streamed Parquet batch (``BATCH_ROWS``) is that large; smaller arrays (small windows)
keep numpy's passes, so numba is neither imported nor compiled for them.
"""

_scratch = threading.local()


def _block_buffers() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Return this thread's two block buffers, allocated once.

    Fresh buffers per call cost more than the arithmetic in them: each is a new mapping whose
    pages fault in one by one, for every column of every window.
    """
    buffers: tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]] | None = getattr(
        _scratch, "buffers", None
    )
    if buffers is None:
        buffers = (np.empty(BLOCK, dtype=np.float64), np.empty(BLOCK, dtype=np.intp))
        _scratch.buffers = buffers
    return buffers


@dataclass(slots=True)
class CellCounts:
    """Finite values counted into cells, with the exact count and mass beyond the range.

    Attributes:
        counts: Values per cell; a value equal to ``high`` is in the last cell.
        missing: Values skipped as not finite (NaN, ±inf).
        below: Values under ``low``.
        below_mass: ``Σ (low - v)`` over them.
        above: Values over ``high``.
        above_mass: ``Σ (v - high)`` over them.
    """

    counts: npt.NDArray[np.int64]
    missing: int = 0
    below: int = 0
    below_mass: float = 0.0
    above: int = 0
    above_mass: float = 0.0


def count_cells(
    values: npt.NDArray[np.float64], *, low: float, high: float, scale: float, cells: int
) -> CellCounts:
    """Count the finite values into ``cells`` equal-width cells from ``low`` to ``high``, by block.

    Scale, clip, truncate, count: no sort, no search. Slot 0 of a block's count gathers values
    under ``low`` and the last slot those at or over ``high``; only a block with either looks at
    those values again, exactly, and puts back the ones that rounding put on the wrong side of a
    boundary. Non-finite values are skipped (``missing``). From ``COMPILED_MIN`` values one
    compiled loop does it all in one read (:mod:`monitors.baseline.grid_kernel`), with the same
    counts; below that, numpy's passes over blocks that stay in cache and ``bincount``.
    """
    slots = np.zeros(cells + 2, dtype=np.int64)
    result = CellCounts(counts=slots[1:-1])
    if values.size >= COMPILED_MIN:
        from monitors.baseline.grid_kernel import count_into

        totals = count_into(values, low=low, high=high, scale=scale, slots=slots)
        (result.missing, result.below, result.below_mass, result.above, result.above_mass) = totals
        return result
    with np.errstate(invalid="ignore"):  # inf + -inf: not finite, as meant
        total = float(np.add.reduce(values)) if values.size else 0.0
    if not math.isfinite(total):
        finite = values[np.isfinite(values)]
        result.missing = int(values.size - finite.size)
        values = finite
    size = int(values.size)
    offset = 1.0 - low * scale
    scaled, index = _block_buffers()
    for start in range(0, size, BLOCK):
        block = values[start : start + BLOCK]
        out, where = scaled[: block.size], index[: block.size]
        np.multiply(block, scale, out=out)
        np.add(out, offset, out=out)
        np.clip(out, 0.0, cells + 1.0, out=out)
        np.copyto(where, out, casting="unsafe")
        counted = np.bincount(where, minlength=cells + 2)
        if counted[0]:
            beyond = block[block < low]
            result.below += int(beyond.size)
            result.below_mass += beyond.size * low - float(beyond.sum())
            counted[1] += counted[0] - beyond.size
        if counted[-1]:
            beyond = block[block > high]
            result.above += int(beyond.size)
            result.above_mass += float(beyond.sum()) - beyond.size * high
            counted[-2] += counted[-1] - beyond.size
        slots += counted
    return result


def reference_cells(
    ordered: npt.NDArray[np.float64],
    atoms: npt.NDArray[np.float64],
    atom_counts: npt.NDArray[np.int64],
    cells: int = CELLS,
) -> npt.NDArray[np.int64] | None:
    """Return the exact count per cell of sorted reference values, or ``None`` (see above)."""
    low, high = float(ordered[0]), float(ordered[-1])
    scale = _scale(low, high, cells)
    if scale is None:
        return None
    counts = count_cells(ordered, low=low, high=high, scale=scale, cells=cells).counts
    heavy = np.clip(((atoms - low) * scale).astype(np.int64), 0, cells - 1)
    spread = counts - np.bincount(heavy, weights=atom_counts, minlength=cells)
    if float(spread.max()) > MAX_CELL_MASS * ordered.size:
        return None
    return counts


def _scale(low: float, high: float, cells: int) -> float | None:
    if not high > low:
        return None
    scale = cells / (high - low)
    finite = np.isfinite(scale) and np.isfinite(low * scale) and np.isfinite(high * scale)
    return float(scale) if finite else None


@dataclass(frozen=True, slots=True)
class ReferenceGrid:
    """A reference's cells, ready to compare a window's cell counts with.

    Attributes:
        low: The reference's minimum (left boundary of the first cell).
        high: The reference's maximum (right boundary of the last cell, included in it).
        scale: Cells per unit of the column.
        cdf: The reference's CDF at each cell boundary (``cells + 1`` values, 0 to 1).
        boundaries: The cell boundaries, ``low`` to ``high``.
        widths: Each cell's width (``numpy.diff`` of the boundaries).
    """

    low: float
    high: float
    scale: float
    cdf: npt.NDArray[np.float64]
    boundaries: npt.NDArray[np.float64]
    widths: npt.NDArray[np.float64]

    @classmethod
    def of(
        cls, counts: npt.NDArray[np.int64] | None, *, low: float, high: float
    ) -> ReferenceGrid | None:
        """Return the grid of a reference's cell counts (``None`` without counts)."""
        if counts is None or counts.size == 0:
            return None
        scale = _scale(low, high, int(counts.size))
        if scale is None:
            return None
        total = float(counts.sum())
        cdf = np.concatenate(([0.0], np.cumsum(counts, dtype=np.float64))) / total
        boundaries = low + np.arange(counts.size + 1, dtype=np.float64) / scale
        boundaries[-1] = high
        return cls(
            low=low, high=high, scale=scale, cdf=cdf, boundaries=boundaries,
            widths=np.diff(boundaries),
        )  # fmt: skip

    @property
    def cells(self) -> int:
        """Return the number of cells."""
        return int(self.cdf.size - 1)

    def window_cdf(
        self, counts: npt.NDArray[np.int64], below: int, count: int
    ) -> npt.NDArray[np.float64]:
        """Return a window's CDF at each cell boundary from its cell counts.

        Summed as integers (exact, and ``cumsum`` into ``float64`` costs twice as much).
        """
        cdf = np.empty(counts.size + 1, dtype=np.float64)
        cdf[0] = below
        np.add(np.cumsum(counts), below, out=cdf[1:])
        cdf /= count
        return cdf
