"""The mergeable counts behind the performance monitor, folded per batch on either engine.

Every performance metric is a function of counts that add across batches: the rows per
``(label, prediction)`` pair (the confusion matrix), the moments of the absolute and squared
errors (MAE, RMSE and their intervals, merged with Chan's formula), and per label the rows at
each distinct score (ROC AUC by the Mann-Whitney statistic, ties averaged, exactly as ranking
every row). The task (classification or regression) is inferred from the merged counts as it was
from the rows: a float column with more than 20 distinct values means regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from monitors.engine import Fold
from monitors.spec import Task

__all__ = ["DISTINCT", "Moments", "PerformanceCounts", "performance_fold"]

DISTINCT = 20
"""A float label or prediction column with more distinct values than this is a regression."""

_FLOAT = npt.NDArray[np.float64]
_INT = npt.NDArray[np.int64]
ScoreTable = tuple[_FLOAT, _INT]
"""Sorted distinct scores and the rows at each."""


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, mean and summed squared deviation of some values (mergeable without drift)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: _FLOAT) -> Moments:
        """Return the moments of ``values`` (two passes, as numpy's ``std``)."""
        if not values.size:
            return cls()
        mean = float(values.mean())
        return cls(values.size, mean, float(((values - mean) ** 2).sum()))

    def merge(self, other: Moments) -> Moments:
        """Return the moments of both sets of values (Chan et al.)."""
        if not other.n:
            return self
        if not self.n:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return Moments(
            n,
            self.mean + delta * other.n / n,
            self.m2 + other.m2 + delta * delta * self.n * other.n / n,
        )

    def std(self) -> float:
        """Return the sample standard deviation (``ddof=1``)."""
        return math.sqrt(self.m2 / (self.n - 1))


@dataclass(frozen=True, slots=True)
class PerformanceCounts:
    """The fold's partial: what the labelled rows of some batches add up to.

    Attributes:
        rows: Rows with both a label and a prediction.
        kinds: The numpy dtype kinds of the label and prediction columns (``""`` before a row).
        distinct: The distinct labels and predictions while a column has at most ``DISTINCT``
            (``None`` past that: only a float column's count matters).
        pairs: Rows per ``(label, prediction)``; ``None`` once the task is surely regression.
        absolute: Moments of the absolute errors (``None`` for non-numeric columns).
        squared: Moments of the squared errors.
        scores: Per label, its rows at each distinct score; ``None`` without a score column or
            once there are more than two labels (ROC AUC is for two classes).
    """

    rows: int = 0
    kinds: tuple[str, str] = ("", "")
    distinct: tuple[frozenset[Any] | None, frozenset[Any] | None] = (frozenset(), frozenset())
    pairs: dict[tuple[Any, Any], int] | None = None
    absolute: Moments | None = None
    squared: Moments | None = None
    scores: dict[Any, ScoreTable] | None = None

    def task(self, given: Task | None) -> Task:
        """Return ``given``, else the task the labels and predictions look like."""
        if given is not None:
            return given
        for kind, values in zip(self.kinds, self.distinct, strict=True):
            if kind == "f" and values is None:
                return "regression"
        return "classification"


def _kind(left: str, right: str) -> str:
    return "f" if "f" in (left, right) else left or right


def _union(left: frozenset[Any] | None, right: frozenset[Any] | None) -> frozenset[Any] | None:
    if left is None or right is None:
        return None
    both = left | right
    return both if len(both) <= DISTINCT else None


def _merge_tables(left: ScoreTable, right: ScoreTable) -> ScoreTable:
    values, where = np.unique(np.concatenate([left[0], right[0]]), return_inverse=True)
    counts = np.bincount(where, weights=np.concatenate([left[1], right[1]]))
    return values, counts.astype(np.int64)


def _merge_scores(
    left: dict[Any, ScoreTable] | None, right: dict[Any, ScoreTable] | None
) -> dict[Any, ScoreTable] | None:
    if left is None or right is None:
        return None
    merged = dict(left)
    for label, table in right.items():
        merged[label] = _merge_tables(merged[label], table) if label in merged else table
    return merged if len(merged) <= 2 else None


def _merge(task: Task | None, a: PerformanceCounts, b: PerformanceCounts) -> PerformanceCounts:
    pairs: dict[tuple[Any, Any], int] | None = None
    if a.pairs is not None and b.pairs is not None:
        pairs = dict(a.pairs)
        for key, count in b.pairs.items():
            pairs[key] = pairs.get(key, 0) + count
    absolute = squared = None
    if a.absolute is not None and b.absolute is not None:
        absolute = a.absolute.merge(b.absolute)
    if a.squared is not None and b.squared is not None:
        squared = a.squared.merge(b.squared)
    merged = PerformanceCounts(
        rows=a.rows + b.rows,
        kinds=(_kind(a.kinds[0], b.kinds[0]), _kind(a.kinds[1], b.kinds[1])),
        distinct=(_union(a.distinct[0], b.distinct[0]), _union(a.distinct[1], b.distinct[1])),
        pairs=pairs,
        absolute=absolute,
        squared=squared,
        scores=_merge_scores(a.scores, b.scores),
    )
    if merged.task(task) == "regression":  # the pairs are no longer needed, and may be many
        merged = replace(merged, pairs=None)
    return merged


def _distinct(values: pd.Series) -> frozenset[Any] | None:
    if values.dtype.kind != "f":
        return frozenset()
    unique = pd.unique(values.to_numpy())
    return frozenset(unique.tolist()) if unique.size <= DISTINCT else None


def _pairs(labels: pd.Series, predictions: pd.Series) -> dict[tuple[Any, Any], int]:
    truth, truth_values = pd.factorize(labels)
    guess, guess_values = pd.factorize(predictions)
    cells = np.bincount(truth * len(guess_values) + guess, minlength=0)
    present = np.flatnonzero(cells)
    truth_list, guess_list = list(truth_values.tolist()), list(guess_values.tolist())
    return {
        (truth_list[cell // len(guess_values)], guess_list[cell % len(guess_values)]): int(
            cells[cell]
        )
        for cell in present
    }


def _scores(labels: pd.Series, scores: pd.Series) -> dict[Any, ScoreTable] | None:
    codes, values = pd.factorize(labels)
    if len(values) > 2:
        return None
    numbers = scores.to_numpy(np.float64)
    tables: dict[Any, ScoreTable] = {}
    for code, label in enumerate(values.tolist()):
        distinct, counts = np.unique(numbers[codes == code], return_counts=True)
        tables[label] = (distinct, counts.astype(np.int64))
    return tables


def _add(
    columns: tuple[str, str, str | None],
    task: Task | None,
    state: PerformanceCounts,
    batch: pd.DataFrame,
) -> PerformanceCounts:
    label_column, prediction_column, score_column = columns
    batch = batch[[c for c in dict.fromkeys(columns) if c is not None]]  # filter these alone
    labelled = batch[batch[label_column].notna() & batch[prediction_column].notna()]
    labels, predictions = labelled[label_column], labelled[prediction_column]
    numeric = labels.dtype.kind in "biuf" and predictions.dtype.kind in "biuf"
    absolute = squared = None
    if numeric or task == "regression":
        errors = predictions.to_numpy(np.float64) - labels.to_numpy(np.float64)
        absolute, squared = Moments.of(np.abs(errors)), Moments.of(errors**2)
    part = PerformanceCounts(
        rows=len(labelled),
        kinds=(labels.dtype.kind, predictions.dtype.kind),
        distinct=(_distinct(labels), _distinct(predictions)),
        pairs=None if task == "regression" else _pairs(labels, predictions),
        absolute=absolute,
        squared=squared,
        scores=None if score_column is None else _scores(labels, labelled[score_column]),
    )
    return _merge(task, state, part)


def performance_fold(
    *,
    label_column: str,
    prediction_column: str,
    score_column: str | None = None,
    task: Task | None = None,
) -> Fold[PerformanceCounts]:
    """Return the fold counting a window's labelled rows for the performance metrics."""
    columns = (label_column, prediction_column, score_column)
    start = PerformanceCounts(
        pairs=None if task == "regression" else {},
        absolute=Moments(),
        squared=Moments(),
        scores=None if score_column is None else {},
    )
    return Fold(
        columns=tuple(dict.fromkeys(c for c in columns if c is not None)),
        start=partial(replace, start),
        add=partial(_add, columns, task),
        merge=partial(_merge, task),
    )
