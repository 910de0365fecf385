"""Confidence-based performance estimation (CBPE): classification metrics before labels arrive.

If a model's scores are calibrated probabilities, a row scored 0.8 is right four times in five, so
the expected confusion matrix of a window follows from its scores alone: a positive prediction
with calibrated probability ``p`` adds ``p`` to the true positives and ``1 - p`` to the false
positives. :func:`fit_classification` calibrates the scores on the labelled reference (isotonic
regression, kept only where it lowers the expected calibration error out of sample, as NannyML
decides) and records the reference's sampling-error components; :func:`estimate_classification`
turns a window's scores and predictions into accuracy, precision, recall, F1 and ROC AUC with a
band of three sampling errors. More than two classes are estimated one-vs-rest and
macro-averaged, each class's scores calibrated on its own and the rows renormalised.

Everything fitted is plain JSON (:class:`ClassificationReference.to_dict`), so it lives in a
stored baseline and a run needs no reference data. Formulas and defaults follow NannyML 0.13
(the tests check them against it chunk by chunk).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from lineage.errors import InvalidInput

__all__ = [
    "BAND",
    "CLASSIFICATION_METRICS",
    "ClassificationReference",
    "class_key",
    "estimate_classification",
    "fit_classification",
    "realised_classification",
]

BAND = 3.0
"""Sampling errors either side of an estimate that make its band (NannyML's range)."""
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
_SPLITS, _TEST_SHARE, _SPLIT_SEED, _ECE_BINS = 10, 0.1, 42, 10

Floats = npt.NDArray[np.float64]
Values = Sequence[Any] | npt.NDArray[Any] | pd.Series
"""Labels or predictions: a list, an array or a pandas Series."""
Scores = Sequence[float] | npt.NDArray[Any] | pd.Series
Estimate = dict[str, float | None]


def class_key(value: Any) -> str:
    """Return the text a class is known by (``1``, ``1.0`` and ``"1"`` are one class)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class _Calibration:
    """An isotonic step function as its breakpoints; empty means scores are kept as they are."""

    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, scores: Floats) -> Floats:
        if not self.x:
            return scores
        # Isotonic regression predicts by linear interpolation between its thresholds and
        # clips outside them, which is exactly np.interp.
        interpolated: Floats = np.interp(scores, np.asarray(self.x), np.asarray(self.y))
        return interpolated


@dataclass(frozen=True, slots=True)
class ClassificationReference:
    """What CBPE keeps of the labelled reference (JSON-ready through :meth:`to_dict`).

    Attributes:
        classes: The classes, sorted by their text; two classes make a binary model.
        positive: The positive class of a binary model (``None`` for more than two classes).
        rows: Reference rows fitted on.
        calibrations: Per class (only the positive class for a binary model), the isotonic
            breakpoints, or none where calibration did not help.
        components: Sampling-error components per metric, from the reference's labels.
        realised: Each metric as measured on the reference (what an estimate is judged against).
        score_range: Per calibrated class, the lowest and highest reference score.
        calibration_error: Expected calibration error of the reference scores after calibration.
    """

    classes: tuple[str, ...]
    positive: str | None
    rows: int
    calibrations: dict[str, _Calibration]
    components: dict[str, list[Any]]
    realised: dict[str, float | None]
    score_range: dict[str, tuple[float, float]]
    calibration_error: float | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def binary(self) -> bool:
        """Whether the model has two classes (one score column) rather than more."""
        return self.positive is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form stored in ``baseline.extras["performance_estimate"]``."""
        return {
            "method": "cbpe",
            "classes": list(self.classes),
            "positive": self.positive,
            "rows": self.rows,
            "calibrations": {
                name: {"x": list(c.x), "y": list(c.y)} for name, c in self.calibrations.items()
            },
            "components": self.components,
            "realised": self.realised,
            "score_range": {name: list(pair) for name, pair in self.score_range.items()},
            "calibration_error": self.calibration_error,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassificationReference:
        """Read back what :meth:`to_dict` wrote."""
        if data.get("method") != "cbpe":
            raise InvalidInput("the stored estimation reference is not CBPE", field="baseline")
        return cls(
            classes=tuple(str(c) for c in data["classes"]),
            positive=None if data.get("positive") is None else str(data["positive"]),
            rows=int(data["rows"]),
            calibrations={
                str(name): _Calibration(tuple(map(float, c["x"])), tuple(map(float, c["y"])))
                for name, c in data["calibrations"].items()
            },
            components={str(k): list(v) for k, v in data["components"].items()},
            realised=dict(data["realised"]),
            score_range={
                str(name): (float(pair[0]), float(pair[1]))
                for name, pair in data["score_range"].items()
            },
            calibration_error=data.get("calibration_error"),
            notes=tuple(data.get("notes") or ()),
        )


def _ece(truth: Floats, scores: Floats, bins: int = _ECE_BINS) -> float:
    """Expected calibration error over equal-count bins of sorted scores (NannyML's form)."""
    count = truth.size
    if count <= 2 * bins:
        bins = count // 2
    if bins < 1:
        return math.nan
    order = np.argsort(scores, kind="quicksort")
    scores, truth = scores[order], truth[order]
    width = count // bins
    edges = list(range(0, count + 1, width))
    edges[-1] = count
    total = 0.0
    for left, right in itertools.pairwise(edges):
        share = (right - left) / count
        total += share * abs(float(scores[left:right].mean()) - float(truth[left:right].mean()))
    return total


def _fit_isotonic(scores: Floats, truth: Floats) -> _Calibration:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(scores, truth)
    return _Calibration(
        tuple(float(v) for v in model.X_thresholds_), tuple(float(v) for v in model.y_thresholds_)
    )


def _needs_calibration(truth: Floats, scores: Floats) -> bool:
    """Say whether isotonic calibration lowers the calibration error on held-out folds."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedShuffleSplit

    if np.unique(truth).size < 2 or roc_auc_score(truth, scores) > 0.999:
        return False
    splits = StratifiedShuffleSplit(
        n_splits=_SPLITS, test_size=_TEST_SHARE, random_state=_SPLIT_SEED
    )
    held_truth, held_raw, held_calibrated = [], [], []
    for train, test in splits.split(scores, truth):
        calibration = _fit_isotonic(scores[train], truth[train])
        held_truth.append(truth[test])
        held_raw.append(scores[test])
        held_calibrated.append(calibration.apply(scores[test]))
    observed = np.concatenate(held_truth)
    before = _ece(observed, np.concatenate(held_raw))
    after = _ece(observed, np.concatenate(held_calibrated))
    return bool(before > after)


def _auc_components(truth: Floats, scores: Floats) -> tuple[float, float]:
    """Spread of the per-positive Mann-Whitney terms and the positive share (NannyML)."""
    if truth.mean() > 0.5:
        truth, scores = 1 - truth, 1 - scores
    order = np.argsort(scores, kind="quicksort")
    truth = truth[order]
    ranks = np.flatnonzero(truth == 1)
    positives = ranks.size
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return math.nan, 0.0
    # Rank 0 is dropped as NannyML drops it (it takes the unique non-zero positive ranks).
    ranks = ranks[ranks > 0]
    below = (ranks - np.arange(ranks.size)) / negatives
    return float(below.var()), positives / truth.size


def _binary_components(truth: Floats, predicted: Floats, scores: Floats) -> dict[str, list[Any]]:
    """Sampling-error components of a binary model (std and relevant share per metric)."""
    rows = truth.size
    tp = (truth == predicted) & (predicted == 1)
    fp = (truth != predicted) & (predicted == 1)
    fn = (truth != predicted) & (predicted == 0)
    n_tp, n_fp, n_fn = int(tp.sum()), int(fp.sum()), int(fn.sum())
    components: dict[str, list[Any]] = {
        "accuracy": [float((truth == predicted).std()), 1.0],
    }
    precision = np.r_[np.ones(n_tp), np.zeros(n_fp)]
    components["precision"] = [
        float(precision.std()) if precision.size else math.nan,
        float(predicted.sum()) / rows,
    ]
    recall = np.r_[np.ones(n_tp), np.zeros(n_fn)]
    components["recall"] = [
        float(recall.std()) if recall.size else math.nan,
        float(truth.sum()) / rows,
    ]
    relevant = n_tp + n_fp + n_fn
    if relevant:
        correcting = relevant / ((n_fn + n_fp) * 0.5 + n_tp)
        f1 = np.r_[np.ones(n_tp), np.zeros(n_fn + n_fp)] * correcting
        components["f1"] = [float(f1.std()), relevant / rows]
    else:
        components["f1"] = [math.nan, 0.0]
    spread, share = _auc_components(truth, scores)
    components["roc_auc"] = [math.sqrt(spread) if math.isfinite(spread) else math.nan, share]
    return components


def _multiclass_components(
    truth: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64], scores: Floats, size: int
) -> dict[str, list[Any]]:
    """Per-class variance and share per metric (one-vs-rest), plus accuracy's spread."""
    components: dict[str, list[Any]] = {
        "accuracy": [float((truth == predicted).std()), 1.0],
        "precision": [],
        "recall": [],
        "f1": [],
        "roc_auc": [],
    }
    rows = truth.size
    for k in range(size):
        t, p = (truth == k).astype(np.float64), (predicted == k).astype(np.float64)
        tp = (t == p) & (p == 1)
        fp = (t != p) & (p == 1)
        fn = (t != p) & (p == 0)
        n_tp, n_fp, n_fn = int(tp.sum()), int(fp.sum()), int(fn.sum())
        precision = np.r_[np.ones(n_tp), np.zeros(n_fp)]
        recall = np.r_[np.ones(n_tp), np.zeros(n_fn)]
        f1 = np.r_[np.ones(n_tp), np.zeros(n_fn + n_fp)]
        components["precision"].append(
            [float(precision.var()) if precision.size else math.nan, float(p.sum()) / rows]
        )
        components["recall"].append(
            [float(recall.var()) if recall.size else math.nan, float(t.sum()) / rows]
        )
        components["f1"].append([float(f1.var()) if f1.size else math.nan, f1.size / rows])
        components["roc_auc"].append(list(_auc_components(t, scores[:, k])))
    return components


def _sampling_error(reference: ClassificationReference, metric: str, rows: int) -> float | None:
    """Return one metric's sampling error for a window of ``rows`` rows."""
    parts = reference.components.get(metric)
    if not parts or rows <= 0:
        return None
    if metric == "accuracy":
        value = float(parts[0]) / math.sqrt(rows)
    elif reference.binary:
        spread, share = float(parts[0]), float(parts[1])
        value = spread / math.sqrt(rows * share) if share > 0 else math.nan
    else:
        variances = [float(v) / (rows * float(s)) if float(s) > 0 else math.nan for v, s in parts]
        value = math.sqrt(sum(variances)) / len(variances)
        if metric == "roc_auc":
            value *= 1.2  # NannyML's allowance for the correlation between classes
    return value if math.isfinite(value) else None


def _estimate_auc(calibrated: Floats, raw: Floats) -> float | None:
    """Expected ROC AUC: rank by the raw score, count calibrated probabilities as hits."""
    order = np.argsort(raw, kind="quicksort")[::-1]
    hits = calibrated[order]
    tps = np.asarray(np.r_[0.0, np.cumsum(hits)], dtype=np.float64).round(5)
    fps = np.asarray(np.r_[0.0, np.arange(1, hits.size + 1) - np.cumsum(hits)]).round(5)
    if tps[-1] <= 0 or fps[-1] <= 0:
        return None
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def _binary_estimates(
    predicted: Floats, probability: Floats, raw: Floats
) -> dict[str, float | None]:
    tp = float(np.where(predicted == 1, probability, 0.0).sum())
    fp = float(np.where(predicted == 1, 1 - probability, 0.0).sum())
    fn = float(np.where(predicted == 0, probability, 0.0).sum())
    correct = np.where(predicted == 1, probability, 1 - probability)
    return {
        "accuracy": float(correct.mean()),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": tp / (tp + 0.5 * (fp + fn)) if tp + 0.5 * (fp + fn) else 0.0,
        "roc_auc": _estimate_auc(probability, raw),
    }


def _prepare_scores(scores: Scores, rows: int, size: int, binary: bool) -> Floats:
    values = np.asarray(scores, dtype=np.float64)
    expected = (rows,) if binary else (rows, size)
    if values.shape != expected:
        raise InvalidInput(
            f"scores have shape {values.shape}; expected {expected} "
            "(a positive-class score per row, or one probability per class and row)",
            field="score_column",
        )
    if not np.isfinite(values).all():
        raise InvalidInput("every row needs a finite score to estimate from", field="score_column")
    return values


def _codes(values: Values, classes: Sequence[str], field_name: str) -> npt.NDArray[np.int64]:
    index = {name: position for position, name in enumerate(classes)}
    keys = [class_key(v) for v in values]
    unknown = sorted({k for k in keys if k not in index})
    if unknown:
        raise InvalidInput(
            f"classes {unknown[:5]} are not among the reference's classes {list(classes)}",
            field=field_name,
        )
    return np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))


def realised_classification(
    labels: Values,
    predictions: Values,
    scores: Scores,
    *,
    classes: Sequence[str],
    positive: str | None,
) -> dict[str, float | None]:
    """Return the metrics measured on labelled rows, defined as the estimates are."""
    from sklearn.metrics import roc_auc_score

    size = len(classes)
    truth = _codes(labels, classes, "label_column")
    guess = _codes(predictions, classes, "prediction_column")
    values = np.asarray(scores, dtype=np.float64)
    result: dict[str, float | None] = {"accuracy": float((truth == guess).mean())}
    chosen = [classes.index(positive)] if positive is not None else list(range(size))
    per: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
    for k in chosen:
        tp = float(((guess == k) & (truth == k)).sum())
        fp = float(((guess == k) & (truth != k)).sum())
        fn = float(((guess != k) & (truth == k)).sum())
        per["precision"].append(tp / (tp + fp) if tp + fp else 0.0)
        per["recall"].append(tp / (tp + fn) if tp + fn else 0.0)
        per["f1"].append(tp / (tp + 0.5 * (fp + fn)) if tp + fp + fn else 0.0)
    for name, items in per.items():
        result[name] = float(np.mean(items))
    if np.unique(truth).size < 2:
        result["roc_auc"] = None
    elif positive is not None:
        result["roc_auc"] = float(roc_auc_score(truth == chosen[0], values))
    elif np.unique(truth).size < size:
        result["roc_auc"] = None
    else:
        result["roc_auc"] = float(
            roc_auc_score(truth, values, multi_class="ovr", average="macro", labels=range(size))
        )
    return result


def fit_classification(
    labels: Values,
    predictions: Values,
    scores: Scores,
    *,
    classes: Sequence[Any] | None = None,
    positive_label: Any = 1,
) -> ClassificationReference:
    """Calibrate the reference's scores and keep what estimating a window needs.

    Args:
        labels: The reference's true classes.
        predictions: The model's predicted classes on the reference.
        scores: The positive class's score per row (two classes), or a ``(rows, classes)``
            array of class probabilities in the order of ``classes``.
        classes: The classes (default: every label and prediction seen, sorted as text).
        positive_label: The positive class of a binary model.

    Raises:
        InvalidInput: Labels are missing, a class is unknown or the scores do not fit.
    """
    if len(labels) != len(predictions):
        raise InvalidInput("labels and predictions differ in length", field="label_column")
    if len(labels) < 2 * _ECE_BINS:
        raise InvalidInput(
            f"the reference has {len(labels)} labelled rows; calibrating scores needs at least "
            f"{2 * _ECE_BINS} (thousands give a trustworthy estimate)",
            field="label_column",
        )
    known = (
        sorted({class_key(v) for v in (*labels, *predictions)})
        if classes is None
        else sorted(map(class_key, classes))
    )
    binary = len(known) <= 2
    positive = class_key(positive_label) if binary else None
    if binary:
        assert positive is not None
        if positive not in known:
            known = sorted({*known, positive})
        if len(known) < 2:
            known = sorted({*known, f"not {positive}"})
    truth = _codes(labels, known, "label_column")
    guess = _codes(predictions, known, "prediction_column")
    values = _prepare_scores(scores, truth.size, len(known), binary)
    notes: list[str] = []
    calibrations: dict[str, _Calibration] = {}
    if binary:
        assert positive is not None
        k = known.index(positive)
        hit = (truth == k).astype(np.float64)
        calibrations[positive] = (
            _fit_isotonic(values, hit) if _needs_calibration(hit, values) else _Calibration()
        )
        components = _binary_components(hit, (guess == k).astype(np.float64), values)
        calibrated = calibrations[positive].apply(values)
        error = _ece(hit, calibrated)
        ranges = {positive: (float(values.min()), float(values.max()))}
    else:
        columns = []
        for k, name in enumerate(known):
            hit = (truth == k).astype(np.float64)
            calibrations[name] = (
                _fit_isotonic(values[:, k], hit)
                if _needs_calibration(hit, values[:, k])
                else _Calibration()
            )
            columns.append(calibrations[name].apply(values[:, k]))
        components = _multiclass_components(truth, guess, values, len(known))
        calibrated_matrix = _normalise(np.column_stack(columns))
        error = float(
            np.mean(
                [
                    _ece((truth == k).astype(np.float64), calibrated_matrix[:, k])
                    for k in range(len(known))
                ]
            )
        )
        ranges = {
            name: (float(values[:, k].min()), float(values[:, k].max()))
            for k, name in enumerate(known)
        }
    if not any(c.x for c in calibrations.values()):
        notes.append("the reference scores were already calibrated: used as they are")
    realised = realised_classification(
        labels, predictions, values, classes=known, positive=positive
    )
    return ClassificationReference(
        classes=tuple(known),
        positive=positive,
        rows=int(truth.size),
        calibrations=calibrations,
        components=_finite(components),
        realised=realised,
        score_range=ranges,
        calibration_error=None if not math.isfinite(error) else float(error),
        notes=tuple(notes),
    )


def _finite(components: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Replace NaN (not JSON) by ``None`` inside the component lists."""

    def clean(value: Any) -> Any:
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return {name: clean(parts) for name, parts in components.items()}


def _normalise(matrix: Floats) -> Floats:
    totals = matrix.sum(axis=1, keepdims=True)
    uniform = np.full_like(matrix, 1.0 / matrix.shape[1])
    normalised: Floats = np.divide(matrix, totals, out=uniform, where=totals != 0)
    return normalised


def estimate_classification(
    reference: ClassificationReference,
    predictions: Values,
    scores: Scores,
) -> dict[str, Any]:
    """Estimate each metric of a window from its predictions and scores (no labels).

    Returns:
        ``{"rows", "metrics": {name: {"value", "sampling_error", "lower", "upper"}},
        "outside_score_range"}``; ``lower``/``upper`` are the estimate ± three sampling
        errors, clipped to [0, 1]; ``outside_score_range`` is the share of the window's
        scores outside the reference's range (where the calibration extrapolates).
    """
    classes = list(reference.classes)
    guess = _codes(predictions, classes, "prediction_column")
    rows = guess.size
    values = _prepare_scores(scores, rows, len(classes), reference.binary)
    if rows == 0:
        empty: Estimate = {"value": None, "sampling_error": None, "lower": None, "upper": None}
        return {
            "rows": 0,
            "metrics": {name: dict(empty) for name in CLASSIFICATION_METRICS},
            "outside_score_range": 0.0,
        }
    if reference.binary:
        positive = reference.positive
        assert positive is not None
        k = classes.index(positive)
        low, high = reference.score_range[positive]
        outside = float(((values < low) | (values > high)).mean()) if rows else 0.0
        probability = reference.calibrations[positive].apply(values)
        point = _binary_estimates((guess == k).astype(np.float64), probability, values)
    else:
        columns = [
            reference.calibrations[name].apply(values[:, k]) for k, name in enumerate(classes)
        ]
        calibrated = _normalise(np.column_stack(columns))
        outside_rows = np.zeros(rows, dtype=bool)
        for k, name in enumerate(classes):
            low, high = reference.score_range[name]
            outside_rows |= (values[:, k] < low) | (values[:, k] > high)
        outside = float(outside_rows.mean()) if rows else 0.0
        per = [
            _binary_estimates((guess == k).astype(np.float64), calibrated[:, k], values[:, k])
            for k in range(len(classes))
        ]
        point = {
            name: _mean([p[name] for p in per]) for name in ("precision", "recall", "f1", "roc_auc")
        }
        point["accuracy"] = float(calibrated[np.arange(rows), guess].mean()) if rows else None
    metrics: dict[str, Estimate] = {}
    for name in CLASSIFICATION_METRICS:
        value = point.get(name)
        error = _sampling_error(reference, name, rows)
        lower = upper = None
        if value is not None and error is not None:
            lower, upper = max(value - BAND * error, 0.0), min(value + BAND * error, 1.0)
        metrics[name] = {"value": value, "sampling_error": error, "lower": lower, "upper": upper}
    return {"rows": rows, "metrics": metrics, "outside_score_range": outside}


def _mean(values: list[float | None]) -> float | None:
    if any(v is None for v in values) or not values:
        return None
    return float(np.mean([float(v) for v in values if v is not None]))
