"""Explanations: SHAP importance, attribution drift, and local explanations (shap's one home).

Global importance of a window, its drift against the training baseline, and the explanation of
one inference. This is the only module that imports shap, lazily, inside the functions.

Which explainer:
    Models are scikit-learn Pipelines (encoding steps, then a tree model) or bare estimators.
    TreeSHAP cannot read string categoricals, so the final estimator is explained on the
    *transformed* features (``pipeline[:-1].transform``) with ``shap.TreeExplainer`` in its
    default ``tree_path_dependent`` mode: exact, needs no background data, and explains the
    model's margin (log-odds for a gradient-boosted classifier), so base value + contributions =
    the model's ``decision_function``. When the final estimator is not a tree model, a
    model-agnostic ``PermutationExplainer`` explains the *whole* model on its input features
    (categoricals travel through shap's masker as codes), against at most ``background_size``
    background rows and on at most ``max_agnostic_rows`` rows: it is orders of magnitude slower
    and compiles numba code on first use, so it belongs in the worker. The result says which
    method ran.

Back to feature names:
    Each transformed column is mapped to the input feature it came from (its own name; or the
    name without a ``transformer__`` prefix; or the longest input name it starts with followed
    by ``_``, as one-hot columns are named) and SHAP values of columns from one input feature are
    summed, which keeps additivity. A model whose columns cannot be traced is explained by the
    model-agnostic fallback, which works on the input features directly.

Importance and its drift:
    Global importance is the mean absolute SHAP value per input feature over a seeded sample of
    the window (at most ``sample_size`` rows). The reference importance is computed once on the
    training data and stored in the baseline's extras under ``"explanations"``. Attribution drift
    is judged by NDCG, as Amazon SageMaker Clarify defines it and Azure ML uses it: rank the
    features by their importance in the window; the gain of the feature at rank ``i`` is its
    importance in the *reference*; ``DCG = sum_i gain_i / log2(i + 1)`` over the top ``k``
    (every feature by default) and ``NDCG = DCG / IDCG``, where IDCG ranks by the reference
    itself. NDCG is 1 when the window ranks the features as the reference did and falls when
    features that mattered drop in rank; both services flag values below 0.9. Beside it, each
    feature's share of total importance is compared with its reference share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lineage.errors import InvalidInput
from monitors.findings import Finding, Status
from monitors.registry import Chart, KindResult, MonitorContext, register_kind
from monitors.spec import Kind, MonitorSpec

__all__ = [
    "THRESHOLD_KEYS",
    "Contributions",
    "ExplanationConfig",
    "Importance",
    "attribution_ndcg",
    "config_from_spec",
    "explain_one",
    "explanation_charts",
    "explanation_findings",
    "global_importance",
    "reference_importance",
    "run_explanations",
]

MONITOR = Kind.EXPLANATIONS.value
THRESHOLD_KEYS = {
    "attribution_ndcg": "min_attribution_ndcg",
    "attribution_share_shift": "max_share_shift",
}
"""``MonitorSpec.thresholds`` keys this kind reads, and the config field each sets."""
_OPTION_KEYS = (
    "background_size",
    "max_agnostic_rows",
    "ndcg_top_k",
    "permutations",
    "sample_size",
    "seed",
)
Method = Literal["tree", "permutation"]
_FLOAT = npt.NDArray[np.float64]


class ExplanationConfig(BaseModel):
    """Configure an explanations run: how much to explain and when attributions have drifted.

    Attributes:
        sample_size: Window rows explained (a seeded sample when the window is larger).
        background_size: Background rows for the model-agnostic fallback.
        max_agnostic_rows: Rows explained when the fallback runs (it is slow).
        permutations: Feature orderings the fallback averages per row (each costs
            ``2 * features + 1`` model calls on the background).
        seed: The sampling seed.
        min_attribution_ndcg: NDCG below this is an alert (SageMaker and Azure ML use 0.9).
        max_share_shift: A feature whose share of total importance moves more than this warns.
        ndcg_top_k: Rank positions NDCG counts; ``None`` counts every feature.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_size: int = Field(default=10_000, ge=1, le=10_000)
    background_size: int = Field(default=100, ge=1, le=100)
    max_agnostic_rows: int = Field(default=200, ge=1, le=1_000)
    permutations: int = Field(default=3, ge=1, le=50)
    seed: int = 0
    min_attribution_ndcg: float = Field(default=0.9, ge=0, le=1)
    max_share_shift: float = Field(default=0.1, ge=0, le=1)
    ndcg_top_k: int | None = Field(default=None, ge=1)


@dataclass(frozen=True, slots=True)
class Importance:
    """Global feature importance: mean |SHAP| per input feature, most important first.

    Attributes:
        values: Mean absolute SHAP value per feature, in decreasing order.
        rows: Rows explained.
        method: ``tree`` (TreeSHAP) or ``permutation`` (model-agnostic fallback).
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
            values=_ranked({str(k): float(v) for k, v in data["values"].items()}),
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


def _ranked(values: Mapping[str, float]) -> dict[str, float]:
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
        values=_ranked({n: float(v) for n, v in zip(explainable.inputs, importance, strict=True)}),
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


def attribution_ndcg(
    *,
    reference: Mapping[str, float],
    current: Mapping[str, float],
    top_k: int | None = None,
) -> float:
    """Return the NDCG of the window's feature ranking against the reference importance.

    Rank features by ``current`` (ties by name); the gain at rank ``i`` (from 1) is the
    feature's ``reference`` importance (0 if the reference lacks it), discounted by
    ``log2(i + 1)``; divide by the same sum for the reference's own ranking. Only the top
    ``top_k`` ranks count (all by default). NDCG is 1 for an identical ranking and 1 when the
    reference carries no importance at all (nothing to lose).
    """
    gains = {name: max(float(value), 0.0) for name, value in reference.items()}
    names = set(gains) | set(current)
    ranked = sorted(names, key=lambda n: (-float(current.get(n, 0.0)), n))
    ideal = sorted(names, key=lambda n: (-gains.get(n, 0.0), n))
    k = len(names) if top_k is None else min(top_k, len(names))

    def dcg(order: list[str]) -> float:
        return sum(gains.get(n, 0.0) / math.log2(i + 2) for i, n in enumerate(order[:k]))

    best = dcg(ideal)
    return 1.0 if best <= 0 else dcg(ranked) / best


def explanation_findings(
    current: Importance,
    *,
    reference: Importance | None,
    config: ExplanationConfig | None = None,
) -> list[Finding]:
    """Judge a window's importance against the reference.

    Returns:
        ``attribution_ndcg`` on scope ``dataset`` (``alert`` below ``min_attribution_ndcg``,
        ``insufficient`` without a reference), then ``attribution_share_shift`` per feature on
        scope ``feature:<name>`` (window share minus reference share; ``warn`` beyond
        ``max_share_shift``; without a reference it reports the share, unjudged).
    """
    config = config or ExplanationConfig()
    findings: list[Finding] = []
    ranks = {name: i + 1 for i, name in enumerate(current.values)}
    if reference is None:
        findings.append(
            Finding(
                monitor=MONITOR,
                metric="attribution_ndcg",
                scope="dataset",
                value=None,
                threshold=config.min_attribution_ndcg,
                status=Status.INSUFFICIENT,
                detail={
                    "reason": "the baseline has no reference importance; rebuild it with "
                    "the explanations section",
                    "rows": current.rows,
                    "method": current.method,
                },
            )
        )
        for name, share in current.shares().items():
            findings.append(
                Finding(
                    monitor=MONITOR,
                    metric="attribution_share",
                    scope=f"feature:{name}",
                    value=share,
                    threshold=None,
                    status=Status.OK,
                    detail={"mean_abs_shap": current.values[name], "rank": ranks[name]},
                )
            )
        return findings
    ndcg = attribution_ndcg(
        reference=reference.values, current=current.values, top_k=config.ndcg_top_k
    )
    findings.append(
        Finding(
            monitor=MONITOR,
            metric="attribution_ndcg",
            scope="dataset",
            value=ndcg,
            threshold=config.min_attribution_ndcg,
            status=Status.OK if ndcg >= config.min_attribution_ndcg else Status.ALERT,
            detail={
                "top_k": config.ndcg_top_k,
                "rows": current.rows,
                "method": current.method,
                "reference_rows": reference.rows,
                "reference_top": list(reference.values)[:5],
                "current_top": list(current.values)[:5],
            },
        )
    )
    now, before = current.shares(), reference.shares()
    reference_ranks = {name: i + 1 for i, name in enumerate(reference.values)}
    for name in _ranked({**{n: 0.0 for n in before}, **current.values}):
        shift = now.get(name, 0.0) - before.get(name, 0.0)
        findings.append(
            Finding(
                monitor=MONITOR,
                metric="attribution_share_shift",
                scope=f"feature:{name}",
                value=shift,
                threshold=config.max_share_shift,
                status=Status.WARN if abs(shift) > config.max_share_shift else Status.OK,
                detail={
                    "share": now.get(name, 0.0),
                    "reference_share": before.get(name, 0.0),
                    "mean_abs_shap": current.values.get(name, 0.0),
                    "reference_mean_abs_shap": reference.values.get(name, 0.0),
                    "rank": ranks.get(name),
                    "reference_rank": reference_ranks.get(name),
                },
            )
        )
    return findings


def explanation_charts(current: Importance, reference: Importance | None) -> list[Chart]:
    """Return the importance bars of the window and, with a reference, the shares side by side."""
    charts = [
        Chart(
            title=f"Feature importance, mean |SHAP| over {current.rows} rows ({current.method})",
            kind="bars",
            data={"labels": list(current.values), "values": list(current.values.values())},
        )
    ]
    if reference is not None:
        now, before = current.shares(), reference.shares()
        names = list(dict.fromkeys([*reference.values, *current.values]))
        charts.append(
            Chart(
                title="Share of total importance: reference (training) vs window",
                kind="distribution",
                data={
                    "labels": names,
                    "reference": [before.get(n, 0.0) for n in names],
                    "current": [now.get(n, 0.0) for n in names],
                },
            )
        )
    return charts


def config_from_spec(spec: MonitorSpec) -> ExplanationConfig:
    """Read an explanations config from a monitor spec, refusing what this kind does not know.

    ``spec.thresholds`` may hold the keys of :data:`THRESHOLD_KEYS`; ``spec.options`` may hold
    ``sample_size``, ``background_size``, ``max_agnostic_rows``, ``permutations``, ``seed`` and
    ``ndcg_top_k``.

    Raises:
        InvalidInput: An unknown key or a value out of range.
    """
    for section, given, known in (
        ("thresholds", spec.thresholds, THRESHOLD_KEYS),
        ("options", spec.options, _OPTION_KEYS),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InvalidInput(
                f"unknown {section} {unknown} for explanations; use {sorted(known)}",
                field=section,
            )
    fields = {THRESHOLD_KEYS[key]: value for key, value in spec.thresholds.items()}
    try:
        return ExplanationConfig.model_validate({**fields, **spec.options})
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "options"
        keys = {v: k for k, v in THRESHOLD_KEYS.items()}
        where = f"thresholds.{keys[name]}" if name in keys else f"options.{name}"
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None


def reference_importance(
    frame: pd.DataFrame, *, model: Any, spec: MonitorSpec | None = None
) -> dict[str, Any]:
    """Return the ``baseline.extras["explanations"]`` section: importance on reference rows.

    Computed once when the baseline is built (typically on the training data), with the same
    sample sizes as the monitor's spec, so runs compare like with like.
    """
    config = config_from_spec(spec) if spec is not None else ExplanationConfig()
    return global_importance(model=model, frame=frame, config=config).to_dict()


@register_kind(Kind.EXPLANATIONS)
def run_explanations(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Run explanations: the window's importance and its drift from the reference importance.

    Needs ``context.model``; reads the model's input columns (``context.feature_names``, else
    the model's ``feature_names_in_``, else ``spec.columns``) and the reference from
    ``baseline.extras["explanations"]`` (built by :func:`reference_importance`). Thresholds and
    options as in :func:`config_from_spec`. Heavy: run it in the worker, never in a request.
    """
    config = config_from_spec(spec)
    model = context.model
    if model is None:
        raise InvalidInput(
            "explanations needs the model under watch; run it where the registered model "
            "version is loaded (the worker)",
            field="model",
        )
    available = context.window_columns()
    features = (
        context.feature_names
        or [str(c) for c in getattr(model, "feature_names_in_", [])]
        or spec.columns
        or available
    )
    missing = [name for name in features if name not in available]
    if missing:
        raise InvalidInput(
            f"the window lacks the model's input columns {missing}; log every feature",
            field="columns",
        )
    frame = context.frame(list(features))
    context.report_progress(0.1, f"explaining {min(len(frame), config.sample_size)} rows")
    current = global_importance(model=model, frame=frame, config=config)
    context.report_progress(0.9, "comparing with the reference importance")
    stored = context.baseline.extras.get("explanations")
    reference = Importance.from_dict(stored) if stored else None
    findings = explanation_findings(current, reference=reference, config=config)
    ndcg = next(f for f in findings if f.metric == "attribution_ndcg")
    return KindResult(
        findings=findings,
        report={
            "importance": current.to_dict(),
            "reference": None if reference is None else reference.to_dict(),
            "attribution_ndcg": ndcg.value,
            "thresholds": {key: getattr(config, name) for key, name in THRESHOLD_KEYS.items()},
            "ndcg": "rank by window importance; gain = reference importance; "
            "DCG = sum gain_i / log2(i + 1) over the top k; NDCG = DCG / ideal DCG",
        },
        charts=explanation_charts(current, reference),
    )
