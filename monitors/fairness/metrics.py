"""Fairness metrics: per-group rates and the gaps between groups, with bootstrap intervals.

Every metric is a function of the confusion counts per group, so a window is reduced once to
counts (:mod:`monitors.fairness.counts`, a fold either engine runs) and per scope to a
``(group, label, prediction)`` count table; a bootstrap replicate is one multinomial draw over
its cells (see :mod:`monitors.fairness` for why, and how fairlearn stays the reference).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from lineage.errors import InvalidInput
from monitors.fairness.config import FairnessConfig
from monitors.fairness.counts import FairnessCounts, count_rows, fairness_features

__all__ = [
    "DISPARITY_METRICS",
    "GROUP_METRICS",
    "LABEL_METRICS",
    "Disparity",
    "Estimate",
    "FairnessResult",
    "GroupResult",
    "compute_fairness",
    "fairness_from_counts",
]

MISSING = "<missing>"
GROUP_METRICS = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
DISPARITY_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)
LABEL_METRICS = frozenset(GROUP_METRICS[1:])
"""Group metrics that need labels (all but the selection rate)."""
_INT = npt.NDArray[np.int64]
_FLOAT = npt.NDArray[np.float64]
_CODES = npt.NDArray[np.integer[Any]]
"""Rows per block when counting: the block's keys stay in cache, no window-sized temporaries."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """One metric value with its bootstrap interval and the count it rests on.

    ``value`` is the point estimate on the window (``None`` when undefined, e.g. no labelled
    positives); ``sufficient`` says whether ``n`` reached ``min_group_size`` and so whether the
    value may be judged at all.
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    sufficient: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "sufficient": self.sufficient,
        }


@dataclass(frozen=True, slots=True)
class GroupResult:
    """The metrics of one group (``sex=Female`` or ``sex=Female&race=Black``)."""

    features: tuple[str, ...]
    values: tuple[str, ...]
    size: int
    metrics: dict[str, Estimate]

    @property
    def label(self) -> str:
        """Return ``feature=value`` pairs joined by ``&``."""
        return "&".join(f"{f}={v}" for f, v in zip(self.features, self.values, strict=True))

    @property
    def scope(self) -> str:
        """Return the finding scope, ``group:<label>``."""
        return f"group:{self.label}"


@dataclass(frozen=True, slots=True)
class Disparity:
    """The groups of one feature set and the gaps between them.

    ``excluded`` names, per disparity metric, the groups left out as too small to judge.
    """

    features: tuple[str, ...]
    groups: tuple[GroupResult, ...]
    metrics: dict[str, Estimate]
    excluded: dict[str, list[str]] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        """Return the finding scope, ``feature:<a>&<b>``."""
        return "feature:" + "&".join(self.features)


@dataclass(frozen=True, slots=True)
class FairnessResult:
    """Everything one fairness computation measured; ``to_dict`` is what baselines store."""

    rows: int
    labelled: int
    disparities: tuple[Disparity, ...]
    config: FairnessConfig

    def group_values(self) -> dict[str, dict[str, float | None]]:
        """Return ``{group scope: {metric: value}}``, the shape a reference is read in."""
        return {
            group.scope: {name: est.value for name, est in group.metrics.items()}
            for disparity in self.disparities
            for group in disparity.groups
        }

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; its ``groups`` entry can serve as a later reference."""
        return {
            "rows": self.rows,
            "labelled": self.labelled,
            "groups": self.group_values(),
            "disparities": [
                {
                    "features": list(d.features),
                    "metrics": {k: v.to_dict() for k, v in d.metrics.items()},
                    "excluded": d.excluded,
                    "groups": [
                        {
                            "values": list(g.values),
                            "size": g.size,
                            "metrics": {k: v.to_dict() for k, v in g.metrics.items()},
                        }
                        for g in d.groups
                    ],
                }
                for d in self.disparities
            ],
            "config": self.config.model_dump(mode="json"),
        }


def compute_fairness(
    *,
    sensitive: pd.DataFrame,
    y_pred: npt.ArrayLike,
    y_true: npt.ArrayLike | None,
    config: FairnessConfig,
) -> FairnessResult:
    """Measure group metrics and disparities of a window's predictions.

    Args:
        sensitive: The window's sensitive columns (other columns are ignored); a missing value
            is a group of its own, ``<missing>``.
        y_pred: The predicted classes, one per row.
        y_true: The labels, one per row, ``None``/NaN where not (yet) known; ``None`` when the
            window has no labels at all (then only selection rates and demographic parity).
        config: Which groups, intervals and thresholds.

    Raises:
        InvalidInput: A sensitive feature is not a column, or the lengths disagree.
    """
    features = fairness_features(config)
    for name in features:
        if name not in sensitive.columns:
            raise InvalidInput(
                f"sensitive feature {name!r} is not a column of the window; "
                f"the columns are {sorted(map(str, sensitive.columns))}",
                field="sensitive_features",
            )
    counts = count_rows(
        sensitive=sensitive,
        features=features,
        y_pred=y_pred,
        y_true=y_true,
        positive=config.positive_label,
    )
    return fairness_from_counts(counts, config=config)


def fairness_from_counts(counts: FairnessCounts, *, config: FairnessConfig) -> FairnessResult:
    """Measure group metrics and disparities from a window's merged counts.

    Every number, the bootstrap intervals included, depends on the counts alone (and the
    seed): a replicate is a multinomial draw over the merged count table's cells, so the
    intervals are the same however the rows were split or whichever engine counted them.
    """
    counts.check_positive(config.positive_label)
    names = list(counts.features)
    columns: dict[str, tuple[_INT, list[str]]] = {}
    for axis, (name, values) in enumerate(zip(names, counts.values, strict=True)):
        codes = counts.entries[:, axis]
        labels = [str(value) for value in values]
        if (codes == len(values)).any():
            labels.append(MISSING)
        columns[name] = (codes, labels)
    label = counts.entries[:, len(names)]
    predicted = counts.entries[:, len(names) + 1]
    tables = _count_tables(columns, names, config.scopes(), label, predicted, counts.counts)
    rng = np.random.default_rng(config.seed)
    disparities = tuple(
        _disparity(features, cells, values, counts.rows, config, rng)
        for features, (cells, values) in zip(config.scopes(), tables, strict=True)
    )
    return FairnessResult(
        rows=counts.rows,
        labelled=int(counts.counts[label != 2].sum()),
        disparities=disparities,
        config=config,
    )


def _group_codes(
    columns: Mapping[str, tuple[_CODES, list[str]]], features: tuple[str, ...]
) -> tuple[_INT, list[tuple[str, ...]]]:
    """Return a dense code per row for the joint groups of ``features`` and each code's values.

    Only groups that occur are kept (an intersection of rare values may be empty).
    """
    parts = [columns[name] for name in features]
    joint = np.ravel_multi_index(
        [codes for codes, _ in parts], [len(labels) for _, labels in parts]
    )
    present, dense = np.unique(joint, return_inverse=True)
    combos = np.unravel_index(present, [len(labels) for _, labels in parts])
    values = [
        tuple(labels[int(i)] for (_, labels), i in zip(parts, combo, strict=True))
        for combo in zip(*combos, strict=True)
    ]
    return dense.astype(np.int64), values


JOINT_CELLS = 1 << 22
"""Largest joint (features x label x prediction) table counted in one pass over the rows."""


def _weighted(key: _INT, weights: _INT, cells: int) -> _INT:
    """Return the summed weights per key (integer counts: exact in float64 below 2**53)."""
    return np.bincount(key, weights=weights, minlength=cells).astype(np.int64)


def _count_tables(
    columns: Mapping[str, tuple[_CODES, list[str]]],
    names: list[str],
    scopes: list[tuple[str, ...]],
    label: _INT,
    predicted: _INT,
    weights: _INT,
) -> list[tuple[_INT, list[tuple[str, ...]]]]:
    """Return each scope's ``(groups x 6)`` count table and its groups' values.

    Each position (an entry of the counts) stands for ``weights`` rows, counted once into the
    joint table of every sensitive feature, label state and prediction; each scope is that
    table summed over the other features. Groups without rows are dropped; groups are ordered
    by their features' codes (their values' sorted order). A joint table past ``JOINT_CELLS``
    (many high-cardinality features) is counted per scope instead.
    """
    sizes = [len(columns[name][1]) for name in names]
    if math.prod(sizes) * 6 > JOINT_CELLS:
        tables = []
        for features in scopes:
            codes, values = _group_codes(columns, features)
            cells = _weighted(codes * 6 + label * 2 + predicted, weights, len(values) * 6)
            tables.append((cells.reshape(len(values), 6), values))
        return tables
    key = np.zeros(label.size, dtype=np.int64)
    for name, size in zip(names, sizes, strict=True):
        key *= size
        key += columns[name][0]
    key *= 6
    key += label * 2 + predicted
    joint = _weighted(key, weights, math.prod(sizes) * 6).reshape(*sizes, 6)
    tables = []
    for features in scopes:
        kept = [names.index(name) for name in features]
        others = tuple(axis for axis in range(len(names)) if axis not in kept)
        table = joint.sum(axis=others) if others else joint
        ascending = sorted(kept)  # the summed table's axes; put them in the scope's order
        table = table.transpose([ascending.index(axis) for axis in kept] + [len(kept)])
        flat = table.reshape(-1, 6)
        present = np.flatnonzero(flat.sum(axis=1))
        combos = np.unravel_index(present, [sizes[axis] for axis in kept])
        labels = [columns[name][1] for name in features]
        values = [
            tuple(labels[f][int(i)] for f, i in enumerate(combo))
            for combo in zip(*combos, strict=True)
        ]
        tables.append((np.ascontiguousarray(flat[present]), values))
    return tables


def _rates(counts: _INT) -> dict[str, _FLOAT]:
    """Return the group metrics and their denominators from ``(..., groups, 3, 2)`` counts.

    Axis ``-2`` is the label state (0 negative, 1 positive, 2 unknown), axis ``-1`` the
    prediction (0, 1). Undefined rates (zero denominators) are NaN.
    """
    c = counts.astype(np.float64)
    rows = c.sum(axis=(-1, -2))
    negatives = c[..., 0, :].sum(axis=-1)
    positives = c[..., 1, :].sum(axis=-1)
    labelled = positives + negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "selection_rate": c[..., 1].sum(axis=-1) / rows,
            "true_positive_rate": c[..., 1, 1] / positives,
            "false_positive_rate": c[..., 0, 1] / negatives,
            "accuracy": (c[..., 1, 1] + c[..., 0, 0]) / labelled,
            "n:selection_rate": rows,
            "n:true_positive_rate": positives,
            "n:false_positive_rate": negatives,
            "n:accuracy": labelled,
        }


_NEEDS = {
    "demographic_parity_difference": ("selection_rate",),
    "demographic_parity_ratio": ("selection_rate",),
    "equalized_odds_difference": ("true_positive_rate", "false_positive_rate"),
}


def _gaps(
    rates: Mapping[str, _FLOAT], judged: Mapping[str, npt.NDArray[np.bool_]]
) -> dict[str, _FLOAT]:
    """Return the disparity metrics over the judged groups (last axis), NaN where undefined."""

    def spread(metric: str) -> tuple[_FLOAT, _FLOAT]:
        picked = rates[metric][..., judged[metric]]
        if picked.shape[-1] == 0:
            nan = np.full(picked.shape[:-1], np.nan)
            return nan, nan
        finite = np.isfinite(picked)
        high = np.where(finite, picked, -np.inf).max(axis=-1)
        low = np.where(finite, picked, np.inf).min(axis=-1)
        ok = finite.any(axis=-1)
        return np.where(ok, low, np.nan), np.where(ok, high, np.nan)

    sr_low, sr_high = spread("selection_rate")
    tpr_low, tpr_high = spread("true_positive_rate")
    fpr_low, fpr_high = spread("false_positive_rate")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(sr_high > 0, sr_low / sr_high, np.nan)
    return {
        "demographic_parity_difference": sr_high - sr_low,
        "demographic_parity_ratio": ratio,
        "equalized_odds_difference": np.fmax(tpr_high - tpr_low, fpr_high - fpr_low),
    }


def _intervals(samples: _FLOAT, confidence: float) -> list[tuple[float | None, float | None]]:
    """Return the percentile interval of each column of ``(replicates, k)`` samples.

    Undefined replicates (NaN) are left out, as ``np.quantile`` of the finite ones would.
    Columns without an undefined replicate (nearly all) go through one vectorised
    ``np.quantile``, the others one by one through ``np.nanquantile``: the same numbers.
    """
    tail = (1 - confidence) / 2
    columns = samples.reshape(samples.shape[0], -1)
    finite = np.isfinite(columns)
    result: list[tuple[float | None, float | None]] = [(None, None)] * columns.shape[1]
    whole = np.flatnonzero(finite.all(axis=0))
    if whole.size:
        bounds = np.quantile(columns[:, whole], [tail, 1 - tail], axis=0)
        for position, index in enumerate(whole):
            result[int(index)] = (float(bounds[0, position]), float(bounds[1, position]))
    partial = np.flatnonzero(finite.any(axis=0) & ~finite.all(axis=0))
    for index in partial:
        with np.errstate(all="ignore"):
            low, high = np.nanquantile(columns[:, index], [tail, 1 - tail])
        result[int(index)] = (float(low), float(high))
    return result


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _disparity(
    features: tuple[str, ...],
    table: _INT,
    values: list[tuple[str, ...]],
    rows: int,
    config: FairnessConfig,
    rng: np.random.Generator,
) -> Disparity:
    groups = len(values)
    cells = table.reshape(-1)
    point = _rates(cells.reshape(groups, 3, 2))
    judged = {m: point[f"n:{m}"] >= config.min_group_size for m in GROUP_METRICS}
    boot: dict[str, _FLOAT] | None = None
    if config.bootstrap_samples and rows:
        draws = rng.multinomial(rows, cells / rows, size=config.bootstrap_samples)
        boot = _rates(draws.reshape(config.bootstrap_samples, groups, 3, 2))

    unknown: list[tuple[float | None, float | None]] = [(None, None)] * groups
    bounds = {m: unknown for m in GROUP_METRICS}
    if boot is not None:  # every metric's intervals in one quantile call
        stacked = np.stack([boot[m] for m in GROUP_METRICS], axis=1)
        every = _intervals(stacked, config.confidence)
        bounds = {
            m: every[position * groups : (position + 1) * groups]
            for position, m in enumerate(GROUP_METRICS)
        }
    results = tuple(
        GroupResult(
            features=features,
            values=group_values,
            size=int(point["n:selection_rate"][g]),
            metrics={
                m: Estimate(
                    _finite(float(point[m][g])),
                    *bounds[m][g],
                    int(point[f"n:{m}"][g]),
                    bool(judged[m][g]),
                )
                for m in GROUP_METRICS
            },
        )
        for g, group_values in enumerate(values)
    )
    point_gaps = _gaps(point, judged)
    gap_bounds: dict[str, tuple[float | None, float | None]] = dict.fromkeys(_NEEDS, (None, None))
    if boot is not None:
        boot_gaps = _gaps(boot, judged)
        stacked_gaps = np.stack([boot_gaps[name] for name in _NEEDS], axis=1)
        gap_bounds = dict(zip(_NEEDS, _intervals(stacked_gaps, config.confidence), strict=True))
    metrics: dict[str, Estimate] = {}
    excluded: dict[str, list[str]] = {}
    for name, inputs in _NEEDS.items():
        counted = min(int(judged[m].sum()) for m in inputs)
        excluded[name] = sorted(
            {results[g].label for m in inputs for g in np.flatnonzero(~judged[m])}
        )
        if counted < 2:  # no gap between fewer than two judged groups: say so, guess nothing
            metrics[name] = Estimate(None, None, None, counted, False)
            continue
        low, high = gap_bounds[name]
        metrics[name] = Estimate(_finite(float(point_gaps[name])), low, high, counted, True)
    return Disparity(features=features, groups=results, metrics=metrics, excluded=excluded)
