"""Fairness of a model's decisions across sensitive groups, with bootstrap confidence intervals.

For each sensitive feature and each configured intersection of them (``sex``, ``race``,
``sex&race``) this module measures, per group, the selection rate (share predicted positive), the
true- and false-positive rates and the accuracy, and across groups the demographic-parity
difference and ratio and the equalized-odds difference — the metrics and definitions of fairlearn
(``MetricFrame``, ``demographic_parity_difference``, ``demographic_parity_ratio``,
``equalized_odds_difference`` with their defaults ``method="between_groups"`` and
``agg="worst_case"``).

How it is computed, and why not with fairlearn itself:
    Every one of these metrics is a function of the confusion counts per group, so a window is
    reduced once to a ``(group, label, prediction)`` count table by ``numpy.bincount`` (label
    ``missing`` is its own state: selection rates use every row, label metrics only the labelled
    ones). fairlearn's ``MetricFrame`` does the same work in 12-20 s on a million rows; the count
    table takes milliseconds. Drawing ``n`` rows with replacement (the nonparametric bootstrap) is
    exactly a multinomial draw of ``n`` over the cells of that table with the observed cell shares
    as probabilities, so each bootstrap replicate costs one ``multinomial`` call over a few dozen
    cells instead of a resample of the window. fairlearn stays the reference: the tests compare
    every number with fairlearn computed directly on the real Adult data.

Groups too small to judge are marked, not guessed:
    A per-group metric is judged only when its own denominator (rows for the selection rate,
    labelled positives for TPR, labelled negatives for FPR, labelled rows for accuracy) reaches
    ``min_group_size``; otherwise its finding is ``insufficient`` with value ``None``. The
    differences are taken across the judged groups only, and name the groups they left out.

Verdicts:
    A difference at or below its threshold is ``ok``. Above it, the bootstrap interval decides:
    ``warn`` while the interval still reaches the threshold (the breach may be noise), ``alert``
    when the whole interval lies beyond it. The ratio is judged the same way from below. A group
    metric is judged against the same group's value in the reference (the training or evaluation
    data, stored in the baseline's extras): ``ok`` within ``max_group_shift``, ``warn`` when only
    the point estimate is farther, ``alert`` when the whole interval is. Without a reference a
    group finding is descriptive (``ok``, no threshold).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lineage.errors import InvalidInput
from monitors.findings import Finding, Status
from monitors.registry import Chart, KindResult, Model, MonitorContext, register_kind
from monitors.spec import Kind, MonitorSpec

__all__ = [
    "DISPARITY_METRICS",
    "GROUP_METRICS",
    "THRESHOLD_KEYS",
    "Disparity",
    "Estimate",
    "FairnessConfig",
    "FairnessResult",
    "GroupResult",
    "compute_fairness",
    "config_from_spec",
    "fairness_charts",
    "fairness_findings",
    "reference_fairness",
    "run_fairness",
]

MONITOR = Kind.FAIRNESS.value
MISSING = "<missing>"
GROUP_METRICS = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
DISPARITY_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)
_LABEL_METRICS = frozenset(GROUP_METRICS[1:])
THRESHOLD_KEYS = {
    "demographic_parity_difference": "max_demographic_parity_difference",
    "demographic_parity_ratio": "min_demographic_parity_ratio",
    "equalized_odds_difference": "max_equalized_odds_difference",
    "group_shift": "max_group_shift",
}
"""``MonitorSpec.thresholds`` keys this kind reads, and the config field each sets."""
_OPTION_KEYS = ("intersections", "min_group_size", "bootstrap_samples", "confidence", "seed")
_INT = npt.NDArray[np.int64]
_FLOAT = npt.NDArray[np.float64]


class FairnessConfig(BaseModel):
    """Configure a fairness computation: which groups, how sure, and what counts as unfair.

    Attributes:
        sensitive_features: Columns whose groups are compared, each on its own.
        intersections: Feature combinations compared as joint groups; ``None`` means all the
            sensitive features together when there are at least two (``sex&race``).
        min_group_size: The smallest denominator a group metric is judged on.
        bootstrap_samples: Bootstrap replicates for the intervals (seeded, so reruns agree).
        confidence: The central coverage of the percentile intervals.
        seed: The bootstrap seed.
        positive_label: The prediction (and label) value that counts as the favourable outcome.
        max_demographic_parity_difference: Largest acceptable gap in selection rates.
        min_demographic_parity_ratio: Smallest acceptable ratio of selection rates (the US
            "four-fifths rule" uses 0.8).
        max_equalized_odds_difference: Largest acceptable gap in TPR or FPR.
        max_group_shift: Largest acceptable change of a group metric against the reference.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitive_features: tuple[str, ...] = Field(min_length=1)
    intersections: tuple[tuple[str, ...], ...] | None = None
    min_group_size: int = Field(default=30, ge=1)
    bootstrap_samples: int = Field(default=300, ge=0, le=10_000)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 0
    positive_label: int | str | bool = 1
    max_demographic_parity_difference: float = Field(default=0.1, ge=0, le=1)
    min_demographic_parity_ratio: float = Field(default=0.8, ge=0, le=1)
    max_equalized_odds_difference: float = Field(default=0.1, ge=0, le=1)
    max_group_shift: float = Field(default=0.1, ge=0, le=1)

    @field_validator("intersections")
    @classmethod
    def _at_least_two(
        cls, value: tuple[tuple[str, ...], ...] | None
    ) -> tuple[tuple[str, ...], ...] | None:
        for combination in value or ():
            if len(combination) < 2 or len(set(combination)) != len(combination):
                raise ValueError(
                    f"intersection {list(combination)} needs two or more distinct features; "
                    "list single features in 'sensitive_features'"
                )
        return value

    def scopes(self) -> list[tuple[str, ...]]:
        """Return every feature set to compare: each feature alone, then the intersections."""
        singles = [(name,) for name in dict.fromkeys(self.sensitive_features)]
        if self.intersections is not None:
            return singles + [tuple(c) for c in self.intersections]
        features = tuple(dict.fromkeys(self.sensitive_features))
        return singles + ([features] if len(features) > 1 else [])


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
    for name in {f for scope in config.scopes() for f in scope}:
        if name not in sensitive.columns:
            raise InvalidInput(
                f"sensitive feature {name!r} is not a column of the window; "
                f"the columns are {sorted(map(str, sensitive.columns))}",
                field="sensitive_features",
            )
    rows = len(sensitive)
    predicted = _as_binary(y_pred, rows, config.positive_label, field_name="prediction")
    label = (
        np.full(rows, 2, dtype=np.int64)
        if y_true is None
        else _as_label_state(y_true, rows, config.positive_label)
    )
    rng = np.random.default_rng(config.seed)
    names = dict.fromkeys(f for scope in config.scopes() for f in scope)
    columns = {name: _factorize(sensitive[name]) for name in names}
    disparities = tuple(
        _disparity(columns, features, label, predicted, config, rng) for features in config.scopes()
    )
    return FairnessResult(
        rows=rows,
        labelled=int(np.count_nonzero(label != 2)),
        disparities=disparities,
        config=config,
    )


def _as_binary(values: npt.ArrayLike, rows: int, positive: object, *, field_name: str) -> _INT:
    array = np.asarray(values)
    if array.shape != (rows,):
        raise InvalidInput(
            f"{field_name} has shape {array.shape} but the window has {rows} rows; "
            "give one value per row",
            field=field_name,
        )
    if array.dtype.kind == "f" and not np.all(np.isnan(array) | (array == np.round(array))):
        raise InvalidInput(
            f"{field_name} holds fractional values, which look like scores; fairness compares "
            "decisions: give the predicted classes (or threshold the scores first)",
            field=field_name,
        )
    chosen = np.asarray(array == positive, dtype=np.int64)
    if array.dtype.kind in "OUS" and rows and not chosen.any():
        seen = sorted({str(value) for value in array[:1000]})[:5]
        raise InvalidInput(
            f"positive_label {positive!r} never appears among the predictions (e.g. {seen}); "
            "set positive_label to the favourable class",
            field="positive_label",
        )
    return chosen


def _as_label_state(values: npt.ArrayLike, rows: int, positive: object) -> _INT:
    """Return 1 for the positive label, 0 for any other label, 2 where the label is unknown."""
    array = np.asarray(values, dtype=object)
    if array.shape != (rows,):
        raise InvalidInput(
            f"labels have shape {array.shape} but the window has {rows} rows; "
            "give one label per row (None where unknown)",
            field="label",
        )
    state = np.asarray(array == positive, dtype=np.int64)
    state[np.asarray(pd.isna(array), dtype=bool)] = 2
    return state


def _factorize(column: pd.Series) -> tuple[_INT, list[str]]:
    """Return sorted category codes of one column, a missing value being ``<missing>``."""
    codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=True)
    labels = [str(value) for value in uniques]
    codes = np.asarray(codes, dtype=np.int64)
    if (codes < 0).any():
        codes[codes < 0] = len(labels)
        labels.append(MISSING)
    return codes, labels


def _group_codes(
    columns: Mapping[str, tuple[_INT, list[str]]], features: tuple[str, ...]
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


def _interval(samples: _FLOAT, confidence: float) -> tuple[float | None, float | None]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None, None
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _disparity(
    columns: Mapping[str, tuple[_INT, list[str]]],
    features: tuple[str, ...],
    label: _INT,
    predicted: _INT,
    config: FairnessConfig,
    rng: np.random.Generator,
) -> Disparity:
    codes, values = _group_codes(columns, features)
    groups = len(values)
    cells = np.bincount(codes * 6 + label * 2 + predicted, minlength=groups * 6)
    point = _rates(cells.reshape(groups, 3, 2))
    judged = {m: point[f"n:{m}"] >= config.min_group_size for m in GROUP_METRICS}
    boot: dict[str, _FLOAT] | None = None
    if config.bootstrap_samples and len(codes):
        draws = rng.multinomial(len(codes), cells / len(codes), size=config.bootstrap_samples)
        boot = _rates(draws.reshape(config.bootstrap_samples, groups, 3, 2))

    def estimate(value: float, samples: _FLOAT | None, n: int, sufficient: bool) -> Estimate:
        low, high = (None, None) if samples is None else _interval(samples, config.confidence)
        return Estimate(_finite(value), low, high, n, sufficient)

    results = tuple(
        GroupResult(
            features=features,
            values=group_values,
            size=int(point["n:selection_rate"][g]),
            metrics={
                m: estimate(
                    float(point[m][g]),
                    None if boot is None else boot[m][:, g],
                    int(point[f"n:{m}"][g]),
                    bool(judged[m][g]),
                )
                for m in GROUP_METRICS
            },
        )
        for g, group_values in enumerate(values)
    )
    point_gaps = _gaps(point, judged)
    boot_gaps = None if boot is None else _gaps(boot, judged)
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
        metrics[name] = estimate(
            float(point_gaps[name]),
            None if boot_gaps is None else boot_gaps[name],
            counted,
            True,
        )
    return Disparity(features=features, groups=results, metrics=metrics, excluded=excluded)


def _judge(estimate: Estimate, threshold: float, *, upper: bool) -> Status:
    """Judge a disparity: within the threshold ``ok``, beyond it ``warn``, surely beyond ``alert``.

    ``upper`` bounds the value from above (differences), otherwise from below (the ratio). With no
    interval (``bootstrap_samples=0``) a breach of the point estimate is an alert.
    """
    if not estimate.sufficient or estimate.value is None:
        return Status.INSUFFICIENT
    if (estimate.value <= threshold) if upper else (estimate.value >= threshold):
        return Status.OK
    edge = estimate.low if upper else estimate.high
    if edge is None or ((edge > threshold) if upper else (edge < threshold)):
        return Status.ALERT
    return Status.WARN


def _judge_shift(estimate: Estimate, reference: float | None, limit: float) -> Status:
    """Judge a group metric against the reference: distance of the point, then of the interval."""
    if not estimate.sufficient or estimate.value is None:
        return Status.INSUFFICIENT
    if reference is None:
        return Status.OK
    if abs(estimate.value - reference) <= limit:
        return Status.OK
    low = estimate.low if estimate.low is not None else estimate.value
    high = estimate.high if estimate.high is not None else estimate.value
    distance = max(low - reference, reference - high, 0.0)
    return Status.ALERT if distance > limit else Status.WARN


def _extremes(disparity: Disparity, metric: str) -> dict[str, str]:
    judged = [
        g
        for g in disparity.groups
        if g.metrics[metric].sufficient and g.metrics[metric].value is not None
    ]
    if not judged:
        return {}
    key = lambda g: g.metrics[metric].value  # noqa: E731
    return {"lowest": min(judged, key=key).label, "highest": max(judged, key=key).label}


def fairness_findings(
    result: FairnessResult,
    *,
    reference: Mapping[str, Mapping[str, float | None]] | None = None,
) -> list[Finding]:
    """Turn a fairness result into findings: one per disparity metric and per group metric.

    Args:
        result: What :func:`compute_fairness` measured on the window.
        reference: ``FairnessResult.to_dict()["groups"]`` of the reference data (the baseline's
            extras); group metrics are then judged by their shift from it.

    Returns:
        Disparity findings scoped ``feature:<a>[&<b>]`` (the gap belongs to a feature set, so a
        bare ``dataset`` scope would collide between ``sex`` and ``race``), then group findings
        scoped ``group:<a>=<x>[&<b>=<y>]``. Label metrics are left out when the window has no
        labels at all; equalized odds is then ``insufficient`` with that reason.
    """
    config = result.config
    thresholds = {
        "demographic_parity_difference": (config.max_demographic_parity_difference, True),
        "demographic_parity_ratio": (config.min_demographic_parity_ratio, False),
        "equalized_odds_difference": (config.max_equalized_odds_difference, True),
    }
    findings: list[Finding] = []
    detail: dict[str, Any]
    for disparity in result.disparities:
        for name in DISPARITY_METRICS:
            estimate = disparity.metrics[name]
            threshold, upper = thresholds[name]
            detail = {
                "low": estimate.low,
                "high": estimate.high,
                "confidence": config.confidence,
                "groups_judged": estimate.n,
                "excluded_groups": disparity.excluded[name],
                "min_group_size": config.min_group_size,
            }
            if name == "equalized_odds_difference":
                if result.labelled == 0:
                    detail["reason"] = "the window has no labels yet"
            else:
                detail.update(_extremes(disparity, "selection_rate"))
            status = _judge(estimate, threshold, upper=upper)
            findings.append(
                Finding(
                    monitor=MONITOR,
                    metric=name,
                    scope=disparity.scope,
                    value=estimate.value if status is not Status.INSUFFICIENT else None,
                    threshold=threshold,
                    status=status,
                    detail=detail,
                )
            )
    for disparity in result.disparities:
        for group in disparity.groups:
            baseline = (reference or {}).get(group.scope, {})
            for name in GROUP_METRICS:
                if name in _LABEL_METRICS and result.labelled == 0:
                    continue
                estimate = group.metrics[name]
                expected = baseline.get(name)
                status = _judge_shift(estimate, expected, config.max_group_shift)
                detail = {"n": estimate.n}
                if status is Status.INSUFFICIENT:
                    detail["reason"] = (
                        f"{estimate.n} rows behind this rate, fewer than "
                        f"min_group_size={config.min_group_size}"
                    )
                else:
                    detail.update(low=estimate.low, high=estimate.high)
                if expected is not None:
                    detail["reference"] = expected
                    if estimate.value is not None:
                        detail["shift"] = estimate.value - expected
                findings.append(
                    Finding(
                        monitor=MONITOR,
                        metric=name,
                        scope=group.scope,
                        value=estimate.value if status is not Status.INSUFFICIENT else None,
                        threshold=config.max_group_shift if expected is not None else None,
                        status=status,
                        detail=detail,
                    )
                )
    return findings


def fairness_charts(
    result: FairnessResult,
    *,
    reference: Mapping[str, Mapping[str, float | None]] | None = None,
) -> list[Chart]:
    """Return interval charts per feature set: selection rate, and TPR once labels exist.

    Groups too small to judge are left out of a chart (their findings say so) rather than
    drawn as if their value meant something; the title counts them.
    """
    metrics = ["selection_rate"] + (["true_positive_rate"] if result.labelled else [])
    charts = []
    for disparity in result.disparities:
        for metric in metrics:
            shown = [
                g
                for g in disparity.groups
                if g.metrics[metric].sufficient and g.metrics[metric].value is not None
            ]
            if not shown:
                continue
            hidden = len(disparity.groups) - len(shown)
            estimates = [g.metrics[metric] for g in shown]
            title = (
                f"{metric.replace('_', ' ').capitalize()} by {' & '.join(disparity.features)}"
                f" ({result.config.confidence:.0%} interval; mark: reference)"
                + (f"; {hidden} group(s) too small to judge left out" if hidden else "")
            )
            charts.append(
                Chart(
                    title=title,
                    kind="intervals",
                    data={
                        "labels": [g.label for g in shown],
                        "values": [e.value for e in estimates],
                        "lower": [e.value if e.low is None else e.low for e in estimates],
                        "upper": [e.value if e.high is None else e.high for e in estimates],
                        "reference": [
                            (reference or {}).get(g.scope, {}).get(metric) for g in shown
                        ],
                    },
                )
            )
    return charts


def config_from_spec(spec: MonitorSpec) -> FairnessConfig:
    """Read a fairness config from a monitor spec, refusing what this kind does not understand.

    ``spec.sensitive_features`` and ``spec.positive_label`` carry over; ``spec.thresholds`` may
    hold the keys of :data:`THRESHOLD_KEYS`; ``spec.options`` may hold ``intersections`` (a list
    of feature lists), ``min_group_size``, ``bootstrap_samples``, ``confidence`` and ``seed``.

    Raises:
        InvalidInput: No sensitive features, an unknown key, or a value out of range.
    """
    if not spec.sensitive_features:
        raise InvalidInput(
            "fairness needs sensitive_features, the columns whose groups it compares "
            "(e.g. ['sex', 'race'])",
            field="sensitive_features",
        )
    for section, given, known in (
        ("thresholds", spec.thresholds, THRESHOLD_KEYS),
        ("options", spec.options, _OPTION_KEYS),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InvalidInput(
                f"unknown {section} {unknown} for fairness; use {sorted(known)}", field=section
            )
    fields = {THRESHOLD_KEYS[key]: value for key, value in spec.thresholds.items()}
    try:
        return FairnessConfig.model_validate(
            {
                "sensitive_features": tuple(spec.sensitive_features),
                "positive_label": spec.positive_label,
                **fields,
                **spec.options,
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "options"
        keys = {v: k for k, v in THRESHOLD_KEYS.items()}
        where = f"thresholds.{keys[name]}" if name in keys else f"options.{name}"
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None


def _predictions(
    spec: MonitorSpec, frame: pd.DataFrame, model: Model | None, features: list[str] | None
) -> npt.ArrayLike:
    if spec.prediction_column is not None:
        return frame[spec.prediction_column].to_numpy()
    if model is None:
        raise InvalidInput(
            "fairness needs the model's decisions: set prediction_column, or run with the model",
            field="prediction_column",
        )
    columns = features or [str(c) for c in frame.columns]
    return np.asarray(model.predict(frame[columns]))


def reference_fairness(
    frame: pd.DataFrame, *, spec: MonitorSpec, model: Model | None = None
) -> dict[str, Any]:
    """Return the ``baseline.extras["fairness"]`` section for reference (training/eval) rows.

    The frame needs the sensitive columns, the label column when ``spec`` names one, and the
    prediction column, or else ``model`` to predict from the frame's feature columns.
    """
    config = config_from_spec(spec)
    predicted = _predictions(spec, frame, model, getattr(model, "feature_names_in_", None))
    labels = None if spec.label_column is None else frame[spec.label_column].to_numpy()
    return compute_fairness(
        sensitive=frame, y_pred=predicted, y_true=labels, config=config
    ).to_dict()


@register_kind(Kind.FAIRNESS)
def run_fairness(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Run fairness: group metrics with intervals, disparities, judged as the module says.

    Reads ``spec.sensitive_features``, ``prediction_column`` (or predicts with
    ``context.model``), ``label_column`` (optional: without labels only selection rates and
    demographic parity) and ``positive_label``; thresholds and options as in
    :func:`config_from_spec`; the reference from ``baseline.extras["fairness"]`` (built by
    :func:`reference_fairness`).
    """
    config = config_from_spec(spec)
    available = set(context.window_columns())
    wanted = {f for scope in config.scopes() for f in scope}
    for name, field_name in [
        *((feature, "sensitive_features") for feature in sorted(wanted)),
        (spec.prediction_column, "prediction_column"),
        (spec.label_column, "label_column"),
    ]:
        if name is not None and name not in available:
            raise InvalidInput(
                f"the window has no column {name!r} (set in {field_name}); "
                f"its columns are {sorted(available)}",
                field=field_name,
            )
    columns = sorted(wanted | {c for c in (spec.prediction_column, spec.label_column) if c})
    if spec.prediction_column is None:
        columns = sorted(set(columns) | set(context.feature_names or available))
    frame = context.frame(columns)
    predicted = _predictions(spec, frame, context.model, context.feature_names)
    labels = None if spec.label_column is None else frame[spec.label_column].to_numpy()
    context.report_progress(0.1, f"fairness over {len(frame)} rows")
    result = compute_fairness(sensitive=frame, y_pred=predicted, y_true=labels, config=config)
    reference = context.baseline.extras.get("fairness", {}).get("groups")
    return KindResult(
        findings=fairness_findings(result, reference=reference),
        report={**result.to_dict(), "reference": reference},
        charts=fairness_charts(result, reference=reference),
    )
