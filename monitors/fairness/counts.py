"""A window's rows reduced to fairness counts, folded per batch on either engine.

The counts are the rows per combination of every sensitive feature's value, label state and
prediction that occurs (:class:`FairnessCounts`); every group metric, gap and bootstrap interval
is computed from them (:mod:`monitors.fairness.metrics`). A feature's values are kept in their
sorted order, a missing value last, so two batches' counts merge by value, and the groups come
out in one order however the window was split (a categorical column's categories are sorted
too, so it counts as its values would).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from lineage.errors import InvalidInput
from monitors.engine import Fold
from monitors.fairness.config import FairnessConfig

__all__ = [
    "FairnessCounts",
    "count_rows",
    "fairness_features",
    "fairness_fold",
    "merge_counts",
]

_INT = npt.NDArray[np.int64]
_CODES = npt.NDArray[np.integer[Any]]
_BYTES = npt.NDArray[np.uint8]
SEEN = 5
"""Prediction values named when ``positive_label`` never appears among them."""
BLOCK = 65_536
"""Rows whose keys are built at once when a batch is counted."""
DENSE_CELLS = 1 << 22
"""Largest joint (features x label x prediction) table a batch is counted into densely."""


@dataclass(frozen=True, slots=True)
class FairnessCounts:
    """Rows per occurring (feature values..., label state, prediction) combination.

    Attributes:
        features: The sensitive features, in the order of ``entries``' first columns.
        values: Per feature, its distinct values in sorted order; code ``len(values)`` is
            a missing value.
        entries: One row per occurring combination: a code per feature, the label state
            (0 negative, 1 positive, 2 unknown) and the prediction (0, 1).
        counts: Rows of each entry.
        rows: Rows counted.
        text: Whether the predictions were text (then ``positive_label`` must occur).
        positive_seen: Whether a prediction equalled ``positive_label``.
        seen: The first ``SEEN`` prediction values in text order (for the error message).
    """

    features: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    entries: _INT
    counts: _INT
    rows: int = 0
    text: bool = False
    positive_seen: bool = False
    seen: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def empty(cls, features: tuple[str, ...]) -> FairnessCounts:
        """Return the counts of no rows."""
        return cls(
            features=features,
            values=tuple(() for _ in features),
            entries=np.zeros((0, len(features) + 2), dtype=np.int64),
            counts=np.zeros(0, dtype=np.int64),
        )

    def check_positive(self, positive: object) -> None:
        """Refuse text predictions among which ``positive`` never appears."""
        if self.text and self.rows and not self.positive_seen:
            raise InvalidInput(
                f"positive_label {positive!r} never appears among the predictions (e.g. "
                f"{list(self.seen)}); set positive_label to the favourable class",
                field="positive_label",
            )


def _text_sorted(values: Any) -> list[Any]:
    """Sort distinct values as pandas' factorize does; mixed types by type, then text."""
    distinct = set(values)
    try:
        return sorted(distinct)
    except TypeError:
        return sorted(distinct, key=lambda value: (type(value).__name__, str(value)))


def _codes(column: pd.Series) -> tuple[_CODES, tuple[Any, ...]]:
    """Return a code per row into the column's sorted distinct values (missing: their count)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = list(column.cat.categories.tolist())
        order = _text_sorted(categories)
        codes: _CODES = column.cat.codes.to_numpy()
        if order == categories and not (codes.size and codes.min() < 0):
            return codes, tuple(order)  # already the sorted places: no gather over the rows
        position = np.array(
            [order.index(value) for value in categories] + [len(order)],
            dtype=np.min_scalar_type(len(order)),
        )  # the categories' sorted places, in their own small type; -1 (missing) is the last
        return position[codes], tuple(order)
    factorized, uniques = pd.factorize(column, sort=True, use_na_sentinel=True)
    values = tuple(uniques.tolist())
    codes = np.asarray(factorized, dtype=np.intp)
    codes[codes < 0] = len(values)
    return codes, values


def _as_binary(values: npt.ArrayLike, rows: int, positive: object) -> tuple[_BYTES, bool]:
    """Return 1 where a prediction is ``positive``, and whether the predictions are text."""
    array = np.asarray(values)
    if array.shape != (rows,):
        raise InvalidInput(
            f"prediction has shape {array.shape} but the window has {rows} rows; "
            "give one value per row",
            field="prediction",
        )
    if array.dtype.kind == "f" and not np.all(np.isnan(array) | (array == np.round(array))):
        raise InvalidInput(
            "prediction holds fractional values, which look like scores; fairness compares "
            "decisions: give the predicted classes (or threshold the scores first)",
            field="prediction",
        )
    chosen = np.asarray(array == positive, dtype=np.bool_).view(np.uint8)
    return chosen, array.dtype.kind in "OUS"


def _as_label_state(values: npt.ArrayLike, rows: int, positive: object) -> _BYTES:
    """Return 1 for the positive label, 0 for any other label, 2 where the label is unknown.

    One byte per row: a window-sized ``int64`` array costs more in fresh pages than in compares.
    """
    numeric = np.asarray(values)
    if (
        numeric.shape == (rows,)
        and numeric.dtype.kind in "biuf"
        and isinstance(positive, int | bool)
    ):  # numbers compare without boxing every label; NaN is unknown
        state = np.asarray(numeric == positive, dtype=np.bool_).view(np.uint8)
        if numeric.dtype.kind == "f":
            state[np.isnan(numeric)] = 2
        return state
    array = np.asarray(values, dtype=object)
    if array.shape != (rows,):
        raise InvalidInput(
            f"labels have shape {array.shape} but the window has {rows} rows; "
            "give one label per row (None where unknown)",
            field="label",
        )
    state = np.asarray(array == positive, dtype=np.bool_).view(np.uint8)
    state[np.asarray(pd.isna(array), dtype=bool)] = 2
    return state


def _count_keys(parts: list[tuple[_CODES, int]], outcome: _BYTES, cells: int) -> _INT:
    """Count rows by the key ``((c1 · s2 + c2) · s3 + …) · 6 + outcome``, block by block.

    ``parts`` are code columns with their sizes. A block's keys are built in the smallest
    unsigned type that holds ``cells`` (one byte for a few dozen groups; every partial key is
    below the final one, so nothing overflows), then widened for ``bincount`` into a reused
    buffer: no window-sized temporary, and its fresh pages, is ever allocated.
    """
    counts = np.zeros(cells, dtype=np.int64)
    rows = int(outcome.size)
    size = min(rows, BLOCK)
    small = np.empty(size, dtype=np.min_scalar_type(max(cells - 1, 0)))
    wide = np.empty(size, dtype=np.intp)
    for start in range(0, rows, BLOCK):
        stop = min(start + BLOCK, rows)
        key, index = small[: stop - start], wide[: stop - start]
        key.fill(0)
        for codes, radix in parts:
            np.multiply(key, radix, out=key, casting="unsafe")
            np.add(key, codes[start:stop], out=key, casting="unsafe")
        np.multiply(key, 6, out=key, casting="unsafe")
        np.add(key, outcome[start:stop], out=key, casting="unsafe")
        np.copyto(index, key)
        counts += np.bincount(index, minlength=cells)
    return counts


def _aggregate(entries: _INT, counts: _INT) -> tuple[_INT, _INT]:
    """Return the distinct entries (sorted) and their summed counts."""
    if not len(entries):
        return entries, counts
    distinct, where = np.unique(entries, axis=0, return_inverse=True)
    summed = np.bincount(where.reshape(-1), weights=counts, minlength=len(distinct))
    return distinct.astype(np.int64), summed.astype(np.int64)


def count_rows(
    *,
    sensitive: pd.DataFrame,
    features: tuple[str, ...],
    y_pred: npt.ArrayLike,
    y_true: npt.ArrayLike | None,
    positive: object,
) -> FairnessCounts:
    """Count one batch of rows (``sensitive`` holds the features' columns)."""
    rows = len(sensitive)
    predicted, text = _as_binary(y_pred, rows, positive)
    label = (
        np.full(rows, 2, dtype=np.uint8)
        if y_true is None
        else _as_label_state(y_true, rows, positive)
    )
    coded = [_codes(sensitive[name]) for name in features]
    sizes = [len(values) + 1 for _, values in coded]  # the last code of each: missing
    outcome = label * np.uint8(2)
    outcome += predicted
    cells = math.prod(sizes) * 6
    if cells <= DENSE_CELLS:
        dense = _count_keys(
            [(codes, size) for (codes, _), size in zip(coded, sizes, strict=True)], outcome, cells
        )
        present = np.flatnonzero(dense)
        counts = dense[present]
    else:  # many features of many values: only the occurring keys
        key = np.zeros(rows, dtype=np.int64)
        for (codes, _), size in zip(coded, sizes, strict=True):
            key *= size
            key += codes
        key *= 6
        key += outcome
        present, counts = np.unique(key, return_counts=True)
    *groups, outcomes = np.unravel_index(present, [*sizes, 6])
    entries = np.stack([*groups, outcomes // 2, outcomes % 2], axis=1).astype(np.int64)
    seen: tuple[str, ...] = ()
    if text:
        seen = tuple(_text_sorted(str(value) for value in np.unique(np.asarray(y_pred)))[:SEEN])
    return FairnessCounts(
        features=features,
        values=tuple(values for _, values in coded),
        entries=entries.reshape(-1, len(features) + 2),
        counts=counts.astype(np.int64),
        rows=rows,
        text=text,
        positive_seen=bool(predicted.any()),
        seen=seen,
    )


def merge_counts(a: FairnessCounts, b: FairnessCounts) -> FairnessCounts:
    """Return the counts of both: values united in sorted order, entries re-coded and summed."""
    values = tuple(
        _text_sorted((*left, *right)) for left, right in zip(a.values, b.values, strict=True)
    )
    parts = []
    for counts in (a, b):
        recoded = counts.entries.copy()
        for axis, (old, new) in enumerate(zip(counts.values, values, strict=True)):
            where = {value: index for index, value in enumerate(new)}
            mapping = np.array([where[value] for value in old] + [len(new)], dtype=np.int64)
            recoded[:, axis] = mapping[counts.entries[:, axis]]
        parts.append(recoded)
    entries, summed = _aggregate(np.concatenate(parts), np.concatenate([a.counts, b.counts]))
    return FairnessCounts(
        features=a.features,
        values=tuple(tuple(v) for v in values),
        entries=entries,
        counts=summed,
        rows=a.rows + b.rows,
        text=a.text or b.text,
        positive_seen=a.positive_seen or b.positive_seen,
        seen=tuple(_text_sorted((*a.seen, *b.seen))[:SEEN]),
    )


def _add(
    config: FairnessConfig,
    columns: tuple[str, str | None],
    state: FairnessCounts,
    batch: pd.DataFrame,
) -> FairnessCounts:
    prediction, label = columns
    part = count_rows(
        sensitive=batch,
        features=state.features,
        y_pred=batch[prediction].to_numpy(),
        y_true=None if label is None else batch[label].to_numpy(),
        positive=config.positive_label,
    )
    return merge_counts(state, part)


def fairness_features(config: FairnessConfig) -> tuple[str, ...]:
    """Return every sensitive feature of the config's scopes, in first-use order."""
    return tuple(dict.fromkeys(f for scope in config.scopes() for f in scope))


def fairness_fold(
    config: FairnessConfig, *, prediction_column: str, label_column: str | None
) -> Fold[FairnessCounts]:
    """Return the fold counting a window's sensitive columns, predictions and labels."""
    features = fairness_features(config)
    wanted = (*features, prediction_column, *([label_column] if label_column else []))
    return Fold(
        columns=tuple(dict.fromkeys(wanted)),
        start=partial(FairnessCounts.empty, features),
        add=partial(_add, config, (prediction_column, label_column)),
        merge=merge_counts,
    )
