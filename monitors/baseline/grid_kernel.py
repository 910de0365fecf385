"""The compiled counting loop of :func:`monitors.baseline.grid.count_cells` for large arrays.

numpy needs four passes and a ``bincount`` per block (about 3 ns a value; ``bincount`` alone
scans for the range, then increments one table entry at a time). This loop reads each value
once, skips a non-finite one (one well-predicted test per sixteen values), scales, clamps and
truncates it without a branch and increments one of sixteen interleaved ``uint32`` tables
(``WAYS``, one 64-byte line per cell): consecutive values go to different tables, so an
increment never waits on a recent one to the same cell, which with four tables made a column
whose values crowd into few cells (lognormal, exponential) twice as slow as a uniform one.
About 1.4-1.8 ns a value on the benchmark's columns (2.4-3.1 where a shifted window puts many
values beyond the range) against numpy's 2.2-2.9. Only a 4,096-value
block whose first or last slot was hit is read again, for the exact count and mass beyond the
range, as numpy's path does per block.

Imported (with numba) only when a large array is counted, never at import time of the package;
its first use in a process costs about 1.8 s of CPU (numba's import and the compilation), or
about 0.9 s when the compiled loop is loaded from numba's on-disk cache (kept when a cache
directory is writable).
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["BLOCK", "WAYS", "count_into"]

WAYS = 16
"""Interleaved count tables (consecutive values go to different tables)."""
BLOCK = 4096
"""Values per block: only a block with a value beyond the range is read again."""
_CHUNK = 1 << 31
"""Most values one call counts, so no ``uint32`` table entry can overflow."""

_scratch = threading.local()


def _compile(function: Any) -> Any:
    options: dict[str, Any] = {"nogil": True, "boundscheck": False, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # no writable cache directory: compile in memory each process
        return numba.njit(**options)(function)


def _count(
    values: npt.NDArray[np.float64],
    low: float,
    high: float,
    scale: float,
    offset: float,
    block: int,
    tables: npt.NDArray[np.uint32],
    slots: npt.NDArray[np.int64],
) -> tuple[int, int, float, int, float]:  # pragma: no cover - compiled by numba
    size = values.size
    last = tables.shape[0] - 1
    top = float(last)
    tables[:] = 0
    missing = 0
    below = 0
    below_mass = 0.0
    above = 0
    above_mass = 0.0
    first_fix = 0
    last_fix = 0
    for start in range(0, size, block):
        # A slice per block, its loops from 0: with the block's offsets in the indices the
        # same loop took 20 % longer.
        part = values[start : min(start + block, size)]
        length = part.size
        under = tables[0].sum()
        over = tables[last].sum()
        block_missing = missing
        grouped = length // WAYS * WAYS
        for i in range(0, grouped, WAYS):
            check = 0.0
            for k in range(WAYS):
                check += part[i + k] - part[i + k]
            if check == 0.0:
                for k in range(WAYS):
                    tables[int(min(max(part[i + k] * scale + offset, 0.0), top)), k] += 1
            else:
                for k in range(WAYS):
                    v = part[i + k]
                    if v - v == 0.0:
                        tables[int(min(max(v * scale + offset, 0.0), top)), k] += 1
                    else:
                        missing += 1
        for j in range(grouped, length):
            v = part[j]
            if v - v == 0.0:
                tables[int(min(max(v * scale + offset, 0.0), top)), 0] += 1
            else:
                missing += 1
        hit_under = tables[0].sum() - under
        hit_over = tables[last].sum() - over
        if hit_under or hit_over:
            # Exactly, as numpy's path does, without a branch per value (a shifted window has
            # many beyond the range) and in two sums a side, so no add waits on the one before.
            # A block with a non-finite value (rare) takes the branching loop instead.
            count_under = count_over = 0
            under_0 = under_1 = over_0 = over_1 = 0.0
            if missing == block_missing:
                for i in range(0, length - 1, 2):
                    v0 = part[i]
                    v1 = part[i + 1]
                    count_under += int(v0 < low) + int(v1 < low)
                    count_over += int(v0 > high) + int(v1 > high)
                    under_0 += min(v0 - low, 0.0)
                    under_1 += min(v1 - low, 0.0)
                    over_0 += max(v0 - high, 0.0)
                    over_1 += max(v1 - high, 0.0)
                if length % 2:
                    v0 = part[length - 1]
                    count_under += int(v0 < low)
                    count_over += int(v0 > high)
                    under_0 += min(v0 - low, 0.0)
                    over_0 += max(v0 - high, 0.0)
            else:
                for j in range(length):
                    v0 = part[j]
                    if v0 - v0 == 0.0:
                        if v0 < low:
                            count_under += 1
                            under_0 += v0 - low
                        elif v0 > high:
                            count_over += 1
                            over_0 += v0 - high
            if hit_under:
                below += count_under
                below_mass -= under_0 + under_1
                first_fix += int(hit_under) - count_under
            if hit_over:
                above += count_over
                above_mass += over_0 + over_1
                last_fix += int(hit_over) - count_over
    for cell in range(1, last):
        counted = 0
        for way in range(WAYS):
            counted += tables[cell, way]
        slots[cell] += counted
    slots[1] += first_fix
    slots[last - 1] += last_fix
    return missing, below, below_mass, above, above_mass


_count_compiled = _compile(_count)


def count_into(
    values: npt.NDArray[np.float64],
    *,
    low: float,
    high: float,
    scale: float,
    slots: npt.NDArray[np.int64],
) -> tuple[int, int, float, int, float]:
    """Add ``values``' counts to ``slots[1:-1]``; return missing, below, its mass, above, its mass.

    ``slots`` has two more entries than there are cells (the first and last stay as they are).
    Non-finite values are skipped and counted as missing.
    """
    tables: npt.NDArray[np.uint32] | None = getattr(_scratch, "tables", None)
    if tables is None or tables.shape[0] != slots.size:
        tables = np.empty((slots.size, WAYS), dtype=np.uint32)
        _scratch.tables = tables
    offset = 1.0 - low * scale
    missing = below = above = 0
    below_mass = above_mass = 0.0
    array = np.ascontiguousarray(values, dtype=np.float64)
    for start in range(0, max(int(array.size), 1), _CHUNK):
        part = _count_compiled(
            array[start : start + _CHUNK], low, high, scale, offset, BLOCK, tables, slots
        )
        missing += int(part[0])
        below += int(part[1])
        below_mass += float(part[2])
        above += int(part[3])
        above_mass += float(part[4])
    return missing, below, below_mass, above, above_mass
