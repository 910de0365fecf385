"""Evaluate a candidate version against the champion on the same held-out data.

Both models score the very same rows; performance (accuracy, precision, recall, F1 and ROC AUC
with 95 % intervals, from :func:`monitors.performance.compute_performance`, and the selection
rate) and fairness (selection rate per group, demographic-parity difference and ratio,
equalized-odds difference, from :func:`monitors.fairness.compute_fairness`) are stored side by
side with the candidate version in an :class:`Evaluation` row, together with the differences
``candidate - champion``. Promotion gates (policies) read these rows; people read them before they
approve. Models are loaded only through :class:`~retrain.deployers.VerifiedModelLoader`, so both
are hash-checked first. After a pipeline run the reader and both models are project code: the
runner has them run in the sandbox (:func:`retrain.step.score_holdout`) and scores the
predictions it returns with :func:`score_predictions`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Field, Session, col, select

from governance import Actor, append
from lineage.errors import InvalidInput
from lineage.model_versions import get_model_version
from lineage.models import ModelVersion
from lineage.tables import Record
from retrain.champions import current_champion
from retrain.deployers import VerifiedModelLoader

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Evaluation",
    "evaluate_version",
    "latest_evaluation",
    "measure",
    "predict",
    "record_evaluation",
    "resolve_pair",
    "score_model",
    "score_pair",
    "score_predictions",
]

_FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)


class Evaluation(Record, table=True):
    """A candidate version and the champion scored on the same held-out rows."""

    __tablename__ = "retrain_evaluation"

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    model_name: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    candidate_version_id: uuid.UUID = Field(foreign_key="lineage_model_version.id", index=True)
    champion_version_id: uuid.UUID | None = Field(
        default=None, foreign_key="lineage_model_version.id"
    )
    holdout: str = Field(sa_column=sa.Column(sa.String(2048), nullable=False))
    rows: int = Field(nullable=False)
    sensitive_features: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    performance: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    fairness: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    evaluated_by: uuid.UUID | None = Field(default=None)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def score_model(
    *,
    model: Any,
    model_version: ModelVersion,
    holdout: pd.DataFrame,
    target: str,
    sensitive_features: Sequence[str],
) -> tuple[dict[str, float | None], dict[str, Any], dict[str, list[float | None]]]:
    """Return ``(performance, fairness, intervals)`` of one model on the held-out rows.

    Performance is :func:`monitors.performance.compute_performance` (the numbers the performance
    monitor reports later, so a gate and a monitor agree), plus the selection rate; ``intervals``
    holds its 95 % intervals.
    """
    y_pred, scores = predict(
        model=model, feature_schema=model_version.feature_schema, holdout=holdout, target=target
    )
    return measure(
        y_true=holdout[target].astype(int).to_numpy(),
        y_pred=y_pred,
        scores=scores,
        sensitive=holdout[list(sensitive_features)] if sensitive_features else None,
        sensitive_features=sensitive_features,
    )


def predict(
    *, model: Any, feature_schema: dict[str, Any], holdout: pd.DataFrame, target: str
) -> tuple[Any, Any]:
    """Return ``(predictions, positive-class scores or None)`` of a model on held-out rows.

    Run where the model may be loaded: model files are code, so the worker calls this only
    inside the sandbox (:func:`retrain.step.score_holdout`).
    """
    features = list(feature_schema) or [c for c in holdout.columns if c != target]
    inputs = holdout[features].copy()
    for column, kind in feature_schema.items():
        if kind in ("float", "integer"):
            inputs[column] = inputs[column].astype("float64")
    y_pred = model.predict(inputs)
    scores = model.predict_proba(inputs)[:, 1] if hasattr(model, "predict_proba") else None
    return y_pred, scores


def measure(
    *,
    y_true: Any,
    y_pred: Any,
    scores: Any,
    sensitive: pd.DataFrame | None,
    sensitive_features: Sequence[str],
) -> tuple[dict[str, float | None], dict[str, Any], dict[str, list[float | None]]]:
    """Return ``(performance, fairness, intervals)`` from labels, predictions and scores."""
    import numpy as np
    import pandas as pd

    from monitors.fairness import FairnessConfig, compute_fairness
    from monitors.performance import compute_performance

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred)
    scored = pd.DataFrame({"label": y_true, "prediction": y_pred})
    if scores is not None:
        scored["score"] = np.asarray(scores, dtype="float64")
    measured = compute_performance(
        scored,
        label_column="label",
        prediction_column="prediction",
        score_column="score" if "score" in scored.columns else None,
        task="classification",
    )
    performance: dict[str, float | None] = {
        name: _finite(metric["value"]) for name, metric in measured["metrics"].items()
    }
    performance["selection_rate"] = float(y_pred.mean())
    intervals: dict[str, list[float | None]] = {
        name: [_finite(metric["lower"]), _finite(metric["upper"])]
        for name, metric in measured["metrics"].items()
    }
    fairness: dict[str, Any] = {}
    if sensitive_features and sensitive is not None:
        result = compute_fairness(
            sensitive=sensitive[list(sensitive_features)],
            y_pred=y_pred,
            y_true=y_true,
            config=FairnessConfig(
                sensitive_features=tuple(sensitive_features), bootstrap_samples=200
            ),
        )
        for disparity in result.disparities:
            key = "&".join(disparity.features)
            fairness[key] = {
                "metrics": {
                    name: _finite(estimate.value)
                    for name, estimate in disparity.metrics.items()
                    if name in _FAIRNESS_METRICS
                },
                "selection_rate": {
                    group.label: _finite(group.metrics["selection_rate"].value)
                    for group in disparity.groups
                    if "selection_rate" in group.metrics
                },
                "intervals": {
                    group.label: [_finite(estimate.low), _finite(estimate.high)]
                    for group in disparity.groups
                    if (estimate := group.metrics.get("selection_rate")) is not None
                    and estimate.low is not None
                    and estimate.high is not None
                },
                "metric_intervals": {
                    name: [_finite(estimate.low), _finite(estimate.high)]
                    for name, estimate in disparity.metrics.items()
                    if name in _FAIRNESS_METRICS
                    and estimate.low is not None
                    and estimate.high is not None
                },
            }
    return performance, fairness, intervals


def _difference(candidate: Any, champion: Any) -> Any:
    if isinstance(candidate, dict) and isinstance(champion, dict):
        return {k: _difference(candidate[k], champion.get(k)) for k in candidate if k in champion}
    if isinstance(candidate, int | float) and isinstance(champion, int | float):
        return float(candidate) - float(champion)
    return None


def resolve_pair(
    *,
    session: Session,
    project_id: uuid.UUID,
    model_name: str,
    version: str,
    champion_version: str | None = None,
) -> tuple[ModelVersion, ModelVersion | None]:
    """Return the candidate version and the champion to compare it with (``None`` if none).

    The champion is the latest promoted version unless ``champion_version`` names one; a
    candidate that is itself the champion is compared with nothing.
    """
    candidate = get_model_version(
        session=session, project_id=project_id, name=model_name, version=version
    )
    champion = (
        get_model_version(
            session=session, project_id=project_id, name=model_name, version=champion_version
        )
        if champion_version
        else current_champion(session=session, project_id=project_id, model_name=model_name)
    )
    if champion is not None and champion.id == candidate.id:
        champion = None
    return candidate, champion


def _check_holdout(holdout: pd.DataFrame, target: str, sensitive_features: Sequence[str]) -> None:
    if holdout.empty or target not in holdout.columns:
        raise InvalidInput(
            f"the held-out data must be non-empty and hold the label column {target!r}",
            field="holdout",
        )
    missing = [f for f in sensitive_features if f not in holdout.columns]
    if missing:
        raise InvalidInput(
            f"sensitive features {missing} are not columns of the held-out data",
            field="sensitive_features",
        )


def _compare(
    results: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    performance: dict[str, Any] = {}
    fairness: dict[str, Any] = {}
    for role, (perf, fair, spread) in results.items():
        performance[role] = perf
        performance.setdefault("intervals", {})[role] = spread
        fairness[role] = fair
    if "champion" in results:
        performance["difference"] = _difference(performance["candidate"], performance["champion"])
        fairness["difference"] = _difference(fairness["candidate"], fairness["champion"])
    return performance, fairness


def score_pair(
    *,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    holdout: pd.DataFrame,
    target: str,
    sensitive_features: Sequence[str],
    loader: VerifiedModelLoader,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score candidate and champion on the same rows; return ``(performance, fairness)``.

    Pure computation, no store access: callers run it outside any transaction, because loading
    models and bootstrapping intervals takes seconds and an open SQLite transaction would hold
    the store's write lock for all of them. It loads the models in this process: pipeline runs
    use :func:`score_predictions` on predictions made in the sandbox instead.

    Raises:
        InvalidInput: The held-out rows lack the target or a sensitive feature, or are empty.
    """
    _check_holdout(holdout, target, sensitive_features)
    results = {
        role: score_model(
            model=loader.load(model_version),
            model_version=model_version,
            holdout=holdout,
            target=target,
            sensitive_features=sensitive_features,
        )
        for role, model_version in (("candidate", candidate), ("champion", champion))
        if model_version is not None
    }
    return _compare(results)


def score_predictions(
    *, scored: pd.DataFrame, roles: Sequence[str], target: str, sensitive_features: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Like :func:`score_pair`, from predictions made in the sandbox.

    ``scored`` holds ``<role>.prediction`` (and ``<role>.score`` when the model has one) beside
    the label and sensitive columns.

    Raises:
        InvalidInput: A column is missing or the rows are empty.
    """
    _check_holdout(scored, target, sensitive_features)
    results = {}
    for role in roles:
        if f"{role}.prediction" not in scored.columns:
            raise InvalidInput(
                f"the sandbox returned no predictions of the {role}", field="holdout"
            )
        score_column = f"{role}.score"
        results[role] = measure(
            y_true=scored[target].to_numpy(),
            y_pred=scored[f"{role}.prediction"].to_numpy(),
            scores=scored[score_column].to_numpy() if score_column in scored.columns else None,
            sensitive=scored[list(sensitive_features)] if sensitive_features else None,
            sensitive_features=sensitive_features,
        )
    return _compare(results)


def record_evaluation(
    *,
    session: Session,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    holdout_name: str,
    rows: int,
    sensitive_features: Sequence[str],
    performance: dict[str, Any],
    fairness: dict[str, Any],
    actor: Actor,
) -> Evaluation:
    """Store an evaluation computed by :func:`score_pair` and audit it, in the caller's session."""
    evaluation = Evaluation(
        project_id=candidate.project_id,
        model_name=candidate.name,
        candidate_version_id=candidate.id,
        champion_version_id=champion.id if champion else None,
        holdout=holdout_name[:2048],
        rows=rows,
        sensitive_features=list(sensitive_features),
        performance=performance,
        fairness=fairness,
        evaluated_by=actor.principal_id,
    )
    session.add(evaluation)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="model.evaluate",
        target=f"model_version:{candidate.id}",
        detail={
            "evaluation_id": str(evaluation.id),
            "champion": champion.version if champion else None,
            "rows": rows,
        },
        project_id=candidate.project_id,
    )
    return evaluation


def evaluate_version(
    *,
    session: Session,
    project_id: uuid.UUID,
    model_name: str,
    version: str,
    holdout: pd.DataFrame,
    holdout_name: str,
    target: str,
    sensitive_features: Sequence[str],
    loader: VerifiedModelLoader,
    actor: Actor,
    champion_version: str | None = None,
) -> Evaluation:
    """Score a candidate and the champion side by side and store the result, in one session.

    Convenient where holding a transaction for the scoring is fine; long-running callers (the
    worker) use :func:`resolve_pair`, :func:`score_pair` and :func:`record_evaluation` apart.

    Raises:
        InvalidInput: The held-out rows lack the target or a sensitive feature, or are empty.
    """
    candidate, champion = resolve_pair(
        session=session,
        project_id=project_id,
        model_name=model_name,
        version=version,
        champion_version=champion_version,
    )
    performance, fairness = score_pair(
        candidate=candidate,
        champion=champion,
        holdout=holdout,
        target=target,
        sensitive_features=sensitive_features,
        loader=loader,
    )
    return record_evaluation(
        session=session,
        candidate=candidate,
        champion=champion,
        holdout_name=holdout_name,
        rows=len(holdout),
        sensitive_features=sensitive_features,
        performance=performance,
        fairness=fairness,
        actor=actor,
    )


def latest_evaluation(
    *, session: Session, project_id: uuid.UUID, model_version_id: uuid.UUID
) -> Evaluation | None:
    """Return the newest evaluation of a candidate version, if it has one."""
    return session.exec(
        select(Evaluation)
        .where(
            Evaluation.project_id == project_id,
            Evaluation.candidate_version_id == model_version_id,
        )
        .order_by(sa.desc(col(Evaluation.created_at)))
    ).first()
