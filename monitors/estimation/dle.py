"""Direct loss estimation (DLE): a regressor's MAE and RMSE before labels arrive.

A regressor's error is larger in some parts of the input space than in others (expensive cars
are priced less precisely than cheap ones). On the labelled reference, a second model (the loss
model, gradient-boosted trees) learns the absolute and the squared error of each row from the
model's inputs and its prediction; on a window, the mean of its predicted absolute errors is the
estimated MAE and the root of the mean predicted squared error the estimated RMSE. Bands are
three sampling errors from the reference's error spread, as NannyML draws them.

The loss model is scikit-learn's ``HistGradientBoostingRegressor`` with LightGBM's default shape
(NannyML's DLE uses ``LGBMRegressor`` with its defaults; the tests check the two agree within
1 % of the metric on every chunk). It is fitted in the worker, never in a request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from lineage.errors import InvalidInput

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor

__all__ = [
    "REGRESSION_METRICS",
    "RegressionReference",
    "estimate_regression",
    "fit_regression",
    "realised_regression",
]

REGRESSION_METRICS = ("mae", "rmse")
BAND = 3.0
_MAX_CATEGORIES = 250
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RegressionReference:
    """The fitted loss models and what the bands and trust checks need of the reference.

    Attributes:
        features: The model inputs the loss model reads (besides the prediction).
        categories: Per categorical input, its reference categories in code order.
        ranges: Per numeric input (and the prediction), the reference's lowest and highest value.
        absolute: The loss model of the absolute error.
        squared: The loss model of the squared error.
        components: Sampling-error components (``mae``: error spread; ``rmse``: spread and mean
            of the squared error).
        realised: MAE and RMSE measured on the reference.
        rows: Reference rows fitted on.
    """

    features: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    ranges: dict[str, tuple[float, float]]
    absolute: HistGradientBoostingRegressor
    squared: HistGradientBoostingRegressor
    components: dict[str, list[float]]
    realised: dict[str, float]
    rows: int


def _is_categorical(series: pd.Series) -> bool:
    return series.dtype.name in ("object", "string", "category", "bool")


def _design(
    frame: pd.DataFrame,
    features: Sequence[str],
    categories: dict[str, tuple[str, ...]],
    prediction: Floats,
) -> pd.DataFrame:
    """Encode the inputs as the loss model reads them: categories as codes, unknown as missing."""
    columns: dict[str, Any] = {}
    for name in features:
        series = frame[name]
        if name in categories:
            index = {value: code for code, value in enumerate(categories[name])}
            text = series.astype("object").tolist()
            columns[name] = np.fromiter(
                (index.get("(missing)" if pd.isna(v) else str(v), np.nan) for v in text),
                dtype=np.float64,
                count=len(text),
            )
        else:
            columns[name] = pd.to_numeric(series, errors="coerce").to_numpy(np.float64)
    columns["__prediction__"] = prediction
    return pd.DataFrame(columns, index=frame.index)


def _one_thread() -> Any:
    """Keep the trees' OpenMP to one thread (spinning threads were 60x slower when busy).

    The worker runs beside other work: on a loaded two-core machine a 4,000-row fit took 34 s
    with OpenMP's default threads and 0.6 s with one.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _loss_model(categorical: list[bool], seed: int) -> HistGradientBoostingRegressor:
    from sklearn.ensemble import HistGradientBoostingRegressor

    # LightGBM's default shape: 100 trees of at most 31 leaves, at least 20 rows a leaf.
    return HistGradientBoostingRegressor(
        max_iter=100, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20,
        l2_regularization=0.0, max_bins=255, early_stopping=False,
        categorical_features=np.asarray(categorical, dtype=bool) if any(categorical) else None,
        random_state=seed,
    )  # fmt: skip


def fit_regression(
    frame: pd.DataFrame,
    *,
    features: Sequence[str],
    label_column: str,
    prediction_column: str,
    seed: int = 0,
) -> RegressionReference:
    """Fit the loss models on a labelled reference.

    Raises:
        InvalidInput: A column is missing, or too few rows have both a label and a prediction.
    """
    for name, field_name in (
        *((f, "features") for f in features),
        (label_column, "label_column"),
        (prediction_column, "prediction_column"),
    ):
        if name not in frame.columns:
            raise InvalidInput(f"the reference has no column {name!r}", field=field_name)
    labelled = frame[frame[label_column].notna() & frame[prediction_column].notna()]
    if len(labelled) < 100:
        raise InvalidInput(
            f"the reference has {len(labelled)} rows with a label and a prediction; the loss "
            "model needs at least 100 (thousands give a trustworthy estimate)",
            field="label_column",
        )
    truth = pd.to_numeric(labelled[label_column]).to_numpy(np.float64)
    predicted = pd.to_numeric(labelled[prediction_column]).to_numpy(np.float64)
    categories: dict[str, tuple[str, ...]] = {}
    ranges: dict[str, tuple[float, float]] = {}
    for name in features:
        series = labelled[name]
        if _is_categorical(series):
            values = series.astype("object").where(series.notna(), "(missing)").astype(str)
            categories[name] = tuple(sorted(values.unique())[:_MAX_CATEGORIES])
        else:
            numbers = pd.to_numeric(series, errors="coerce").dropna()
            if len(numbers):
                ranges[name] = (float(numbers.min()), float(numbers.max()))
    ranges[prediction_column] = (float(predicted.min()), float(predicted.max()))
    design = _design(labelled, features, categories, predicted)
    categorical = [name in categories for name in design.columns]
    errors = truth - predicted
    with _one_thread():
        absolute = _loss_model(categorical, seed).fit(design, np.abs(errors))
        squared = _loss_model(categorical, seed).fit(design, errors**2)
    squares = errors**2
    return RegressionReference(
        features=tuple(features),
        categories=categories,
        ranges=ranges,
        absolute=absolute,
        squared=squared,
        components={
            "mae": [float(np.abs(errors).std())],
            "rmse": [float(squares.std()), float(squares.mean())],
        },
        realised={"mae": float(np.abs(errors).mean()), "rmse": math.sqrt(float(squares.mean()))},
        rows=len(labelled),
    )


def realised_regression(
    labels: Sequence[float] | Floats, predictions: Sequence[float] | Floats
) -> dict[str, float]:
    """Return MAE and RMSE measured on labelled rows."""
    errors = np.asarray(labels, dtype=np.float64) - np.asarray(predictions, dtype=np.float64)
    return {"mae": float(np.abs(errors).mean()), "rmse": math.sqrt(float((errors**2).mean()))}


def _outside(reference: RegressionReference, frame: pd.DataFrame, prediction: str) -> float:
    """Share of rows with an input outside what the loss model saw (range or category)."""
    rows = len(frame)
    if not rows:
        return 0.0
    outside = np.zeros(rows, dtype=bool)
    for name, (low, high) in reference.ranges.items():
        column = prediction if name == prediction else name
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
        outside |= (values < low) | (values > high)
    for name, known in reference.categories.items():
        text = frame[name].astype("object").where(frame[name].notna(), "(missing)").astype(str)
        outside |= ~text.isin(known).to_numpy()
    return float(outside.mean())


def estimate_regression(
    reference: RegressionReference, frame: pd.DataFrame, *, prediction_column: str
) -> dict[str, Any]:
    """Estimate MAE and RMSE of a window from its inputs and predictions (no labels).

    Returns:
        ``{"rows", "metrics": {name: {"value", "sampling_error", "lower", "upper"}},
        "outside_reference"}``; ``outside_reference`` is the share of rows with an input or a
        prediction outside the reference's range or categories (where the loss model guesses).
    """
    missing = [n for n in (*reference.features, prediction_column) if n not in frame.columns]
    if missing:
        raise InvalidInput(f"the window has no column {missing[0]!r}", field="columns")
    usable = frame[frame[prediction_column].notna()]
    rows = len(usable)
    predicted = pd.to_numeric(usable[prediction_column]).to_numpy(np.float64)
    metrics: dict[str, dict[str, float | None]] = {}
    if rows == 0:
        for name in REGRESSION_METRICS:
            metrics[name] = {"value": None, "sampling_error": None, "lower": None, "upper": None}
        return {"rows": 0, "metrics": metrics, "outside_reference": 0.0}
    design = _design(usable, reference.features, reference.categories, predicted)
    with _one_thread():
        absolute = np.maximum(reference.absolute.predict(design), 0.0)
        squared = np.maximum(reference.squared.predict(design), 0.0)
    mae = float(absolute.mean())
    rmse = math.sqrt(float(squared.mean()))
    mae_error = reference.components["mae"][0] / math.sqrt(rows)
    spread, mean = reference.components["rmse"]
    rmse_error = math.sqrt(spread**2 / (4 * rows * mean)) if mean > 0 else 0.0
    for name, value, error in (("mae", mae, mae_error), ("rmse", rmse, rmse_error)):
        metrics[name] = {
            "value": value,
            "sampling_error": error,
            "lower": max(value - BAND * error, 0.0),
            "upper": value + BAND * error,
        }
    return {
        "rows": rows,
        "metrics": metrics,
        "outside_reference": _outside(reference, usable, prediction_column),
    }
