"""The compiled counting loop of :func:`monitors.baseline.grid.count_cells` for large arrays.

numpy needs four passes and a ``bincount`` per block (about 3 ns a value: ``bincount`` alone
scans for the range and then increments one table entry at a time, each waiting on the last
increment of the same entry). This loop reads each value once, skips a non-finite one (one
well-predicted test per four values), scales, clamps and truncates it without a branch and
increments one of four interleaved ``uint32`` tables, so consecutive increments of one cell do
not wait on each other: about 1.1 ns a value. Values under ``low`` or over ``high`` are looked
at again exactly, as in the numpy path, only in the 65,536-value blocks whose first or last
slot was hit.

Imported (with numba) only when a large array is counted, never at import time of the package;
the loop is compiled on first use in a process (about 0.3 s, plus numba's import) or loaded
from numba's on-disk cache when its directory is writable.
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["WAYS", "count_into"]

WAYS = 4
"""Interleaved count tables (consecutive values go to different tables)."""
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
    last = tables.shape[1] - 1
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
        end = min(start + block, size)
        under = tables[0, 0] + tables[1, 0] + tables[2, 0] + tables[3, 0]
        over = tables[0, last] + tables[1, last] + tables[2, last] + tables[3, last]
        grouped = start + (end - start) // 4 * 4
        for i in range(start, grouped, 4):
            v0 = values[i]
            v1 = values[i + 1]
            v2 = values[i + 2]
            v3 = values[i + 3]
            if (v0 - v0) + (v1 - v1) + (v2 - v2) + (v3 - v3) == 0.0:
                tables[0, int(min(max(v0 * scale + offset, 0.0), top))] += 1
                tables[1, int(min(max(v1 * scale + offset, 0.0), top))] += 1
                tables[2, int(min(max(v2 * scale + offset, 0.0), top))] += 1
                tables[3, int(min(max(v3 * scale + offset, 0.0), top))] += 1
            else:
                for j in range(i, i + 4):
                    v = values[j]
                    if v - v == 0.0:
                        tables[0, int(min(max(v * scale + offset, 0.0), top))] += 1
                    else:
                        missing += 1
        for j in range(grouped, end):
            v = values[j]
            if v - v == 0.0:
                tables[0, int(min(max(v * scale + offset, 0.0), top))] += 1
            else:
                missing += 1
        hit_under = tables[0, 0] + tables[1, 0] + tables[2, 0] + tables[3, 0] - under
        hit_over = tables[0, last] + tables[1, last] + tables[2, last] + tables[3, last] - over
        if hit_under:
            count = 0
            total = 0.0
            for j in range(start, end):
                v = values[j]
                if v < low and v - v == 0.0:
                    count += 1
                    total += v
            below += count
            below_mass += count * low - total
            first_fix += int(hit_under) - count
        if hit_over:
            count = 0
            total = 0.0
            for j in range(start, end):
                v = values[j]
                if v > high and v - v == 0.0:
                    count += 1
                    total += v
            above += count
            above_mass += total - count * high
            last_fix += int(hit_over) - count
    for cell in range(1, last):
        slots[cell] += tables[0, cell] + tables[1, cell] + tables[2, cell] + tables[3, cell]
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
    block: int,
) -> tuple[int, int, float, int, float]:
    """Add ``values``' counts to ``slots[1:-1]``; return missing, below, its mass, above, its mass.

    ``slots`` has two more entries than there are cells (the first and last stay as they are).
    Non-finite values are skipped and counted as missing.
    """
    tables: npt.NDArray[np.uint32] | None = getattr(_scratch, "tables", None)
    if tables is None or tables.shape[1] != slots.size:
        tables = np.empty((WAYS, slots.size), dtype=np.uint32)
        _scratch.tables = tables
    offset = 1.0 - low * scale
    missing = below = above = 0
    below_mass = above_mass = 0.0
    array = np.ascontiguousarray(values, dtype=np.float64)
    for start in range(0, max(int(array.size), 1), _CHUNK):
        part = _count_compiled(
            array[start : start + _CHUNK], low, high, scale, offset, block, tables, slots
        )
        missing += int(part[0])
        below += int(part[1])
        below_mass += float(part[2])
        above += int(part[3])
        above_mass += float(part[4])
    return missing, below, below_mass, above, above_mass
