"""Column summaries: the mergeable summary of one reference column, numeric or categorical.

* a numeric column keeps quantile bin edges (2,048 bins by default), the count strictly inside
  each bin, exact counts at heavy values ("atoms": values holding at least one quantile, such as
  the zeros of ``capital_gain``), moments, range and missing count; with few distinct values
  (≤ ``bins``) every value is an atom, so its counts are exact; with a small reference
  (≤ ``RAW_LIMIT`` rows) it also keeps the raw values, which the exact small-sample tests
  (Kolmogorov-Smirnov) need;
* a numeric column with more than ``RAW_LIMIT`` values and more than ``FREQUENCY_LIMIT``
  distinct ones also keeps its exact count in each of 16,384 equal-width cells over its range
  (:mod:`monitors.baseline.grid`), which a large window is counted into without sorting;
* a categorical column keeps category frequencies and its missing count.

Column types follow Evidently 0.7's inference so that drift methods match its defaults: floats
are numeric, integers with at most 10 distinct values categorical, strings, booleans and
categories categorical. Two summaries of one column merge exactly (counts, frequencies,
moments) or, for bins, at the combined quantiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from monitors.baseline.grid import ReferenceGrid, reference_cells

__all__ = [
    "BINS",
    "FREQUENCY_LIMIT",
    "INTEGER_CARDINALITY_LIMIT",
    "RAW_LIMIT",
    "SAMPLE_LIMIT",
    "CategoricalSummary",
    "ColumnSummary",
    "ColumnType",
    "FloatArray",
    "IntArray",
    "NumericSummary",
    "bin_totals",
    "column_type",
    "count_at_atoms",
    "merge_numeric",
    "numeric_array",
    "numeric_values",
    "plain_value",
]


BINS = 2048
"""Default number of quantile bins per numeric column."""
FREQUENCY_LIMIT = 64
"""A numeric column with at most this many distinct values keeps exact value frequencies."""
RAW_LIMIT = 1000
"""A reference with at most this many values keeps them (Evidently's small-sample boundary)."""
SAMPLE_LIMIT = 5000
"""Default size of the reference sample kept for Evidently's rendered page."""
INTEGER_CARDINALITY_LIMIT = 10
"""Integers with at most this many distinct values are categorical (as in Evidently 0.7)."""

ColumnType = Literal["numeric", "categorical"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def column_type(values: pd.Series) -> ColumnType:
    """Return the column type Evidently 0.7 would infer, so drift methods match its defaults."""
    name = values.dtype.name
    if name.startswith("float"):
        return "numeric"
    if name.startswith(("int", "uint", "Int", "UInt")):
        return "categorical" if values.nunique() <= INTEGER_CARDINALITY_LIMIT else "numeric"
    return "categorical"


def numeric_array(values: pd.Series) -> FloatArray:
    """Return a numeric column as float64, missing and unparsable values as NaN."""
    if values.dtype.kind in "fiu":
        return np.asarray(values.to_numpy(), dtype=np.float64)
    return np.asarray(
        pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan),
        dtype=np.float64,
    )


def numeric_values(values: pd.Series) -> FloatArray:
    """Return the finite values of a numeric column as float64 (missing and ±inf dropped)."""
    array = numeric_array(values)
    if math.isfinite(float(np.add.reduce(array))):  # one read, no mask: all finite
        return array
    return array[np.isfinite(array)]


def bin_totals(
    sorted_values: FloatArray, edges: FloatArray, atoms: FloatArray
) -> tuple[IntArray, FloatArray]:
    """Count and sum sorted values per bin of ``edges``, leaving out values equal to an atom.

    Bin ``i`` holds ``edges[i] <= v < edges[i + 1]`` (the last bin also holds ``edges[-1]``);
    values outside ``[edges[0], edges[-1]]`` are not counted. Sorting first makes this a few
    binary searches per edge instead of one per value.
    """
    positions = np.searchsorted(sorted_values, edges, side="left")
    positions[-1] = np.searchsorted(sorted_values, edges[-1], side="right")
    running = np.concatenate(([0.0], np.cumsum(sorted_values)))
    counts = np.diff(positions).astype(np.int64)
    sums = np.diff(running[positions])
    if atoms.size and counts.size:
        at_atoms = count_at_atoms(sorted_values, atoms)
        index = np.clip(np.searchsorted(edges, atoms, side="right") - 1, 0, counts.size - 1)
        np.subtract.at(counts, index, at_atoms)
        np.subtract.at(sums, index, at_atoms * atoms)
    return counts, sums


def _tail_ranks(count: int, bins: int) -> IntArray:
    """Return extra ranks that split the two outer quantile bins geometrically.

    Tails are where bins are widest (a long right tail spans most of the range in its last
    bin), so halving the outer bins again and again keeps distances accurate there.
    """
    step = count / bins
    offsets: list[int] = []
    size = step / 2
    while size >= 1:
        offsets.append(round(size))
        size /= 1.5
    ranks = np.asarray(offsets, dtype=np.int64)
    return np.unique(np.clip(np.concatenate((ranks, count - 1 - ranks)), 0, count - 1))


def count_at_atoms(sorted_values: FloatArray, atoms: FloatArray) -> IntArray:
    """Count sorted values exactly equal to each atom."""
    left = np.searchsorted(sorted_values, atoms, side="left")
    right = np.searchsorted(sorted_values, atoms, side="right")
    return (right - left).astype(np.int64)


@dataclass(slots=True)
class NumericSummary:
    """The mergeable summary of one numeric column.

    Attributes:
        count: Finite values seen.
        missing: Missing (or non-finite) values seen.
        minimum: Smallest finite value (``nan`` when ``count`` is 0).
        maximum: Largest finite value.
        mean: Mean of the finite values.
        m2: Sum of squared deviations from the mean (merged with Chan's formula).
        edges: Sorted, distinct bin edges from ``minimum`` to ``maximum``.
        bin_counts: Values inside each bin, atoms excluded (``len(edges) - 1`` entries).
        bin_sums: Sum of the values inside each bin, which makes the Wasserstein distance
            exact wherever the two CDFs do not cross inside a bin.
        atoms: Sorted values holding a point mass (each is one of the edges).
        atom_counts: Exact count at each atom.
        distinct: Number of distinct values, or ``None`` when above ``FREQUENCY_LIMIT``.
        values: The sorted raw values when ``count`` ≤ ``RAW_LIMIT``, else ``None``.
        dtype: The pandas dtype the reference had (schema checks compare it).
        cells: Exact counts in equal-width cells from ``minimum`` to ``maximum``
            (:mod:`monitors.baseline.grid`), or ``None`` (small, few distinct values, merged).
    """

    count: int
    missing: int
    minimum: float
    maximum: float
    mean: float
    m2: float
    edges: FloatArray
    bin_counts: IntArray
    bin_sums: FloatArray
    atoms: FloatArray
    atom_counts: IntArray
    distinct: int | None
    values: FloatArray | None
    dtype: str
    type: Literal["numeric"] = "numeric"
    cells: IntArray | None = None
    _grid: tuple[ReferenceGrid | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _chart: tuple[int, FloatArray, FloatArray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def grid(self) -> ReferenceGrid | None:
        """Return the grid of ``cells`` (``None`` without), built once per summary.

        A baseline serves many windows; its grid's CDF and boundaries need not be rebuilt for
        each of them.
        """
        if self._grid is None:
            self._grid = (ReferenceGrid.of(self.cells, low=self.minimum, high=self.maximum),)
        return self._grid[0]

    def chart_points(self, bins: int) -> tuple[FloatArray, FloatArray]:
        """Return the reference's quantile points for a ``bins``-bar chart and its CDF at them.

        Built once per summary, like the grid: they depend on the reference alone.
        """
        if self._chart is None or self._chart[0] != bins:
            points = np.unique(
                np.quantile(
                    np.concatenate(([self.minimum], self.edges, [self.maximum])),
                    np.linspace(0, 1, bins + 1),
                )
            )
            self._chart = (bins, points, self.cumulative(points) / self.count)
        return self._chart[1], self._chart[2]

    @property
    def std(self) -> float:
        """Return the population standard deviation (``np.std``, as Evidently normalises by)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    @property
    def missing_share(self) -> float:
        """Return the share of missing values."""
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    def frequencies(self) -> dict[float, int] | None:
        """Return exact value frequencies when the column has few distinct values."""
        if self.distinct is None:
            return None
        return {
            float(value): int(count)
            for value, count in zip(self.atoms, self.atom_counts, strict=True)
            if count
        }

    @classmethod
    def from_values(
        cls,
        values: FloatArray,
        *,
        missing: int,
        bins: int = BINS,
        dtype: str = "float64",
    ) -> NumericSummary:
        """Summarise finite values (any order) into quantile bins, atoms and moments."""
        ordered = np.sort(np.asarray(values, dtype=np.float64))
        count = int(ordered.size)
        if count == 0:
            empty = np.empty(0, dtype=np.float64)
            none = np.empty(0, dtype=np.int64)
            return cls(
                count=0, missing=missing, minimum=math.nan, maximum=math.nan, mean=math.nan,
                m2=0.0, edges=empty, bin_counts=none, bin_sums=empty, atoms=empty,
                atom_counts=none, distinct=0, values=None, dtype=dtype,
            )  # fmt: skip
        mean = float(ordered.mean())
        m2 = float(np.square(ordered - mean).sum())
        change = np.flatnonzero(np.diff(ordered)) + 1
        distinct = int(change.size + 1)
        if distinct <= bins:
            atoms = ordered[np.concatenate(([0], change))]
            edges = atoms
        else:
            uniform = np.linspace(0, count - 1, bins + 1).round().astype(np.int64)
            picks = ordered[uniform]
            repeated = picks[1:][picks[1:] == picks[:-1]]
            atoms = np.unique(repeated)
            edges = np.unique(np.concatenate((picks, ordered[_tail_ranks(count, bins)])))
        atom_counts = count_at_atoms(ordered, atoms)
        bin_counts, bin_sums = bin_totals(ordered, edges, atoms)
        many = count > RAW_LIMIT and distinct > FREQUENCY_LIMIT
        return cls(
            count=count,
            missing=missing,
            minimum=float(ordered[0]),
            maximum=float(ordered[-1]),
            mean=mean,
            m2=m2,
            edges=edges,
            bin_counts=bin_counts,
            bin_sums=bin_sums,
            atoms=atoms,
            atom_counts=atom_counts,
            distinct=distinct if distinct <= FREQUENCY_LIMIT else None,
            values=ordered if count <= RAW_LIMIT else None,
            dtype=dtype,
            cells=reference_cells(ordered, atoms, atom_counts) if many else None,
        )

    def cumulative(self, points: FloatArray) -> FloatArray:
        """Return the (approximate) number of values ≤ each point.

        Exact at every edge and atom; linear inside a bin, which is what "uniform within a
        quantile bin" means.
        """
        if self.count == 0:
            return np.zeros(points.shape, dtype=np.float64)
        if self.values is not None:
            return np.searchsorted(self.values, points, side="right").astype(np.float64)
        edges = self.edges
        inner = np.concatenate(([0.0], np.cumsum(self.bin_counts, dtype=np.float64)))
        continuous = np.interp(points, edges, inner, left=0.0, right=float(inner[-1]))
        atoms = np.cumsum(self.atom_counts, dtype=np.float64)
        index = np.searchsorted(self.atoms, points, side="right")
        at_atoms = np.where(index > 0, atoms[np.maximum(index - 1, 0)], 0.0) if atoms.size else 0.0
        return np.asarray(continuous + at_atoms, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "type": "numeric",
            "count": self.count,
            "missing": self.missing,
            "minimum": _json_float(self.minimum),
            "maximum": _json_float(self.maximum),
            "mean": _json_float(self.mean),
            "m2": self.m2,
            "edges": self.edges.tolist(),
            "bin_counts": self.bin_counts.tolist(),
            "bin_sums": self.bin_sums.tolist(),
            "atoms": self.atoms.tolist(),
            "atom_counts": self.atom_counts.tolist(),
            "distinct": self.distinct,
            "values": None if self.values is None else self.values.tolist(),
            "dtype": self.dtype,
            "cells": None if self.cells is None else self.cells.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericSummary:
        """Rebuild a summary from ``to_dict`` output."""
        return cls(
            count=int(data["count"]),
            missing=int(data["missing"]),
            minimum=_float(data["minimum"]),
            maximum=_float(data["maximum"]),
            mean=_float(data["mean"]),
            m2=float(data["m2"]),
            edges=np.asarray(data["edges"], dtype=np.float64),
            bin_counts=np.asarray(data["bin_counts"], dtype=np.int64),
            bin_sums=np.asarray(data["bin_sums"], dtype=np.float64),
            atoms=np.asarray(data["atoms"], dtype=np.float64),
            atom_counts=np.asarray(data["atom_counts"], dtype=np.int64),
            distinct=data["distinct"],
            values=None if data["values"] is None else np.asarray(data["values"], np.float64),
            dtype=str(data["dtype"]),
            cells=None if data.get("cells") is None else np.asarray(data["cells"], np.int64),
        )


@dataclass(slots=True)
class CategoricalSummary:
    """The mergeable summary of one categorical column.

    Attributes:
        frequencies: Count per category (keys are the original values: str, int or bool).
        missing: Missing values seen.
        dtype: The pandas dtype the reference had.
    """

    frequencies: dict[Any, int]
    missing: int
    dtype: str = "object"
    type: Literal["categorical"] = "categorical"

    @property
    def count(self) -> int:
        """Return the number of non-missing values."""
        return sum(self.frequencies.values())

    @property
    def missing_share(self) -> float:
        """Return the share of missing values."""
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    @classmethod
    def from_series(cls, values: pd.Series) -> CategoricalSummary:
        """Count the categories of a column (missing values counted apart)."""
        counts = values.value_counts(dropna=True, sort=False)
        frequencies = {plain_value(key): int(count) for key, count in counts.items() if count}
        return cls(
            frequencies=frequencies,
            missing=int(values.isna().sum()),
            dtype=values.dtype.name,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (frequencies as ``[value, count]`` pairs, keys keep type)."""
        return {
            "type": "categorical",
            "frequencies": [[key, count] for key, count in self.frequencies.items()],
            "missing": self.missing,
            "dtype": self.dtype,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalSummary:
        """Rebuild a summary from ``to_dict`` output."""
        return cls(
            frequencies={plain_value(key): int(count) for key, count in data["frequencies"]},
            missing=int(data["missing"]),
            dtype=str(data["dtype"]),
        )


ColumnSummary = NumericSummary | CategoricalSummary


def merge_numeric(left: NumericSummary, right: NumericSummary, *, bins: int) -> NumericSummary:
    """Merge two summaries of one numeric column: exact counts and moments, re-cut bins."""
    if right.count == 0:
        return left
    if left.count == 0:
        return right
    missing = left.missing + right.missing
    if left.values is not None and right.values is not None:
        merged = NumericSummary.from_values(
            np.concatenate([left.values, right.values]), missing=missing, bins=bins,
            dtype=left.dtype,
        )  # fmt: skip
        return merged
    count = left.count + right.count
    delta = right.mean - left.mean
    mean = left.mean + delta * right.count / count
    m2 = left.m2 + right.m2 + delta * delta * left.count * right.count / count
    atoms = np.union1d(left.atoms, right.atoms)
    points = np.union1d(np.union1d(left.edges, right.edges), atoms)
    atom_counts = np.zeros(atoms.size, dtype=np.int64)
    for side in (left, right):
        atom_counts[np.searchsorted(atoms, side.atoms)] += side.atom_counts
    total = left.cumulative(points) + right.cumulative(points)
    at_atoms = np.zeros(points.size, dtype=np.float64)
    at_atoms[np.searchsorted(points, atoms)] = atom_counts
    continuous = total - np.cumsum(at_atoms)
    distinct = None
    if left.distinct is not None and right.distinct is not None:
        union = atoms.size
        distinct = union if union <= FREQUENCY_LIMIT else None
    if distinct is None and points.size > bins + 1:
        levels = np.linspace(0.0, continuous[-1], bins + 1)
        keep = np.unique(np.concatenate((np.searchsorted(continuous, levels), [0])))
        keep = keep[keep < points.size]
        keep = np.union1d(keep, np.searchsorted(points, atoms))
        keep = np.union1d(keep, [points.size - 1])
        points = points[keep]
        continuous = continuous[keep]
    rounded = continuous.round()
    bin_counts = np.diff(rounded).astype(np.int64)
    if bin_counts.size:
        bin_counts[0] += int(rounded[0])
    bin_sums = bin_counts * (points[:-1] + points[1:]) / 2
    return NumericSummary(
        count=count,
        missing=missing,
        minimum=min(left.minimum, right.minimum),
        maximum=max(left.maximum, right.maximum),
        mean=mean,
        m2=m2,
        edges=points,
        bin_counts=bin_counts,
        bin_sums=bin_sums,
        atoms=atoms,
        atom_counts=atom_counts,
        distinct=distinct,
        values=None,
        dtype=left.dtype,
    )


def plain_value(value: Any) -> Any:
    """Turn a numpy scalar into a Python one so category keys compare and serialise alike."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)
