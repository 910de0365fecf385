"""SHAP values of a model: global importance of a window and the explanation of one inference.

The only module that imports shap (lazily, inside the functions). Which explainer runs, and how
transformed columns are traced back to input features, is described in
:mod:`monitors.explanations`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from lineage.errors import InvalidInput
from monitors.explanations.config import ExplanationConfig

__all__ = ["Contributions", "Importance", "Method", "explain_one", "global_importance", "ranked"]


Method = Literal["tree", "permutation", "logged"]
_FLOAT = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Importance:
    """Global feature importance: mean |SHAP| per input feature, most important first.

    Attributes:
        values: Mean absolute SHAP value per feature, in decreasing order.
        rows: Rows explained.
        method: ``tree`` (TreeSHAP), ``permutation`` (model-agnostic fallback) or ``logged``
            (the serving app's own attributions, sent with each record).
        base_value: The explainer's expected model output.
    """

    values: dict[str, float]
    rows: int
    method: Method
    base_value: float

    def shares(self) -> dict[str, float]:
        """Return each feature's share of the total importance (all zero if the total is)."""
        total = sum(self.values.values())
        return {k: (v / total if total > 0 else 0.0) for k, v in self.values.items()}

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, the form stored in a baseline's extras."""
        return {
            "values": dict(self.values),
            "rows": self.rows,
            "method": self.method,
            "base_value": self.base_value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Importance:
        """Read an importance stored by :meth:`to_dict`."""
        return cls(
            values=ranked({str(k): float(v) for k, v in data["values"].items()}),
            rows=int(data["rows"]),
            method=data["method"],
            base_value=float(data["base_value"]),
        )


@dataclass(frozen=True, slots=True)
class Contributions:
    """A local explanation: how each input feature moved one prediction from the base value.

    ``base_value + sum(contributions.values()) == output``, the model's margin for the row
    (log-odds for a gradient-boosted classifier); ``output_class`` names the class explained
    when the model has several outputs.
    """

    base_value: float
    contributions: dict[str, float]
    output: float
    method: Method
    output_class: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "base_value": self.base_value,
            "contributions": dict(self.contributions),
            "output": self.output,
            "method": self.method,
            "output_class": self.output_class,
        }


def ranked(values: Mapping[str, float]) -> dict[str, float]:
    """Order features by decreasing value, ties by name, so rankings are deterministic."""
    return dict(sorted(values.items(), key=lambda item: (-item[1], item[0])))


@dataclass(frozen=True, slots=True)
class _Explainable:
    """A model split into the part that encodes and the estimator TreeSHAP explains."""

    model: Any
    transform: Callable[[pd.DataFrame], _FLOAT]
    estimator: Any
    inputs: list[str]
    sources: list[str]

    def fold(self, values: _FLOAT) -> _FLOAT:
        """Sum ``(rows, transformed column, outputs)`` SHAP values per input feature."""
        matrix = np.zeros((len(self.sources), len(self.inputs)))
        index = {name: i for i, name in enumerate(self.inputs)}
        for column, source in enumerate(self.sources):
            matrix[column, index[source]] = 1.0
        return np.asarray(np.einsum("nfc,fg->ngc", values, matrix), dtype=np.float64)


def _source(name: str, inputs: list[str]) -> str | None:
    if name in inputs:
        return name
    bare = name.split("__", 1)[1] if "__" in name else name
    if bare in inputs:
        return bare
    prefixes = [feature for feature in inputs if bare.startswith(f"{feature}_")]
    return max(prefixes, key=len) if prefixes else None


def _dense(matrix: Any) -> _FLOAT:
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    if isinstance(matrix, pd.DataFrame):
        matrix = matrix.to_numpy()
    return np.asarray(matrix, dtype=np.float64)


def _explainable(model: Any, columns: list[str]) -> _Explainable:
    """Split a Pipeline (or take a bare estimator) and trace its columns to input features.

    When a transformed column cannot be traced, ``sources`` is empty and only the
    model-agnostic explainer (which works on the input features) can run.
    """
    if hasattr(model, "get_raw_model"):  # an MLflow pyfunc wrapper around the real model
        model = model.get_raw_model()
    inputs = [str(c) for c in getattr(model, "feature_names_in_", columns)]
    steps = getattr(model, "steps", None)
    if not steps:
        return _Explainable(
            model=model,
            transform=lambda frame: _dense(frame[inputs]),
            estimator=model,
            inputs=inputs,
            sources=inputs,
        )
    encoder = model[:-1]
    try:
        sources = [_source(str(name), inputs) for name in encoder.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        sources = []
    return _Explainable(
        model=model,
        transform=lambda frame: _dense(encoder.transform(frame[inputs])),
        estimator=steps[-1][1],
        inputs=inputs,
        sources=[] if None in sources else [s for s in sources if s is not None],
    )


def _tree_shap(explainable: _Explainable, rows: pd.DataFrame) -> tuple[_FLOAT, _FLOAT] | None:
    """Return TreeSHAP values ``(rows, inputs, outputs)`` and base values, or ``None``.

    ``None`` means the estimator is not a tree model (or its columns cannot be traced back).
    """
    import shap

    if not explainable.sources:
        return None
    try:
        explainer = shap.TreeExplainer(explainable.estimator)
    except shap.utils._exceptions.InvalidModelError:
        return None
    values = np.asarray(explainer.shap_values(explainable.transform(rows)), dtype=np.float64)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    if values.ndim == 2:
        values = values[:, :, np.newaxis]
    if values.shape[2] == 2:  # probability trees of a binary classifier: explain class 1
        values, base = values[:, :, 1:], base[1:]
    return explainable.fold(values), base


def _margin(model: Any) -> Callable[[pd.DataFrame], _FLOAT]:
    for name in ("decision_function", "predict_proba", "predict"):
        function = getattr(model, name, None)
        if function is not None:
            return lambda frame: np.asarray(function(frame), dtype=np.float64)
    raise InvalidInput(
        f"{type(model).__name__} has no decision_function, predict_proba or predict; "
        "register a scikit-learn compatible model",
        field="model",
    )


def _permutation_shap(
    explainable: _Explainable,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    *,
    seed: int,
    permutations: int,
) -> tuple[_FLOAT, _FLOAT]:
    """Explain the whole model on its input features with shap's PermutationExplainer.

    shap's maskers need numbers, so categorical columns travel as codes and are decoded back
    to their values (missing stays missing) before the model sees them.
    """
    import shap

    inputs = explainable.inputs
    both = pd.concat([background[inputs], rows[inputs]], ignore_index=True)
    encoded = np.empty((len(both), len(inputs)))
    categories: dict[int, npt.NDArray[np.object_]] = {}
    for j, name in enumerate(inputs):
        column = both[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            encoded[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            codes, uniques = pd.factorize(column)
            categories[j] = np.asarray(uniques, dtype=object)
            encoded[:, j] = codes
    dtypes = both.dtypes
    margin = _margin(explainable.model)

    def predict(matrix: _FLOAT) -> _FLOAT:
        columns: dict[str, Any] = {}
        for j, name in enumerate(inputs):
            if j in categories:
                codes = matrix[:, j].astype(np.int64)
                values = categories[j][np.clip(codes, 0, None)]
                columns[name] = np.where(codes >= 0, values, np.nan)
            else:
                columns[name] = pd.Series(matrix[:, j]).astype(dtypes.iloc[j])
        return margin(pd.DataFrame(columns))

    masker = shap.maskers.Independent(encoded[: len(background)], max_samples=len(background))
    explainer = shap.PermutationExplainer(predict, masker, seed=seed)
    explained = explainer(
        encoded[len(background) :],
        max_evals=permutations * (2 * len(inputs) + 1),
        silent=True,
    )
    values = np.asarray(explained.values, dtype=np.float64)
    base = np.asarray(explained.base_values, dtype=np.float64).reshape(len(rows), -1)[0]
    if values.ndim == 2:
        values = values[:, :, np.newaxis]
    if values.shape[2] == 2:  # class probabilities of a binary classifier: explain class 1
        values, base = values[:, :, 1:], base[1:]
    return values, base


def _sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= size else frame.sample(n=size, random_state=seed)


def global_importance(
    *,
    model: Any,
    frame: pd.DataFrame,
    config: ExplanationConfig | None = None,
) -> Importance:
    """Measure mean |SHAP| per input feature on a seeded sample of ``frame``.

    Args:
        model: A fitted scikit-learn Pipeline or estimator (or an MLflow pyfunc around one).
        frame: Rows with the model's input columns (other columns are ignored); also the
            source of background rows for the model-agnostic fallback.
        config: Sample sizes and seed.

    Raises:
        InvalidInput: An input column is missing, or ``frame`` is empty.
    """
    config = config or ExplanationConfig()
    explainable = _explainable(model, [str(c) for c in frame.columns])
    _require_columns(frame, explainable.inputs)
    if frame.empty:
        raise InvalidInput("no rows to explain; give a non-empty window", field="window")
    rows = _sample(frame, config.sample_size, config.seed)
    tree = _tree_shap(explainable, rows)
    method: Method = "tree"
    if tree is None:
        method = "permutation"
        tree = _permutation_shap(
            explainable,
            _sample(rows, config.max_agnostic_rows, config.seed),
            _sample(frame, config.background_size, config.seed + 1),
            seed=config.seed,
            permutations=config.permutations,
        )
    values, base = tree
    importance = np.abs(values).sum(axis=2).mean(axis=0)
    return Importance(
        values=ranked({n: float(v) for n, v in zip(explainable.inputs, importance, strict=True)}),
        rows=len(values),
        method=method,
        base_value=float(base.mean()),
    )


def explain_one(
    model: Any,
    row: Mapping[str, Any] | pd.DataFrame,
    *,
    background: pd.DataFrame | None = None,
    seed: int = 0,
) -> Contributions:
    """Explain one inference: each input feature's contribution to the model's margin.

    Args:
        model: A fitted scikit-learn Pipeline or estimator (or an MLflow pyfunc around one).
        row: The logged features of one inference, as a mapping or a one-row DataFrame.
        background: Reference rows (at most 100 are used), needed only when the model is not a
            tree model.
        seed: The seed of the model-agnostic fallback.

    Raises:
        InvalidInput: The row is not exactly one row, misses an input column, or a non-tree
            model comes without background rows.
    """
    frame = row if isinstance(row, pd.DataFrame) else pd.DataFrame([dict(row)])
    if len(frame) != 1:
        raise InvalidInput(
            f"explain_one explains one row, got {len(frame)}; pass a single inference",
            field="row",
        )
    explainable = _explainable(model, [str(c) for c in frame.columns])
    _require_columns(frame, explainable.inputs)
    explained = _tree_shap(explainable, frame)
    method: Method = "tree"
    if explained is None:
        if background is None or background.empty:
            raise InvalidInput(
                f"{type(explainable.estimator).__name__} is not a tree model, so explaining it "
                "needs background rows for the model-agnostic explainer; pass reference rows",
                field="background",
            )
        _require_columns(background, explainable.inputs)
        method = "permutation"
        explained = _permutation_shap(
            explainable, frame, _sample(background, 100, seed), seed=seed, permutations=10
        )
    values, base = explained
    outputs = base + values[0].sum(axis=0)
    chosen = int(np.argmax(outputs)) if len(outputs) > 1 else 0
    return Contributions(
        base_value=float(base[chosen]),
        contributions={
            n: float(v) for n, v in zip(explainable.inputs, values[0, :, chosen], strict=True)
        },
        output=float(outputs[chosen]),
        method=method,
        output_class=chosen if len(outputs) > 1 else None,
    )


def _require_columns(frame: pd.DataFrame, inputs: list[str]) -> None:
    missing = [name for name in inputs if name not in frame.columns]
    if missing:
        raise InvalidInput(
            f"the model reads columns {missing} that the data lacks; "
            "send every feature the model was trained on",
            field="columns",
        )
