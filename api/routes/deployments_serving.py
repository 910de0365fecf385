"""The embedded deployer over HTTP: ``POST …/deployments/{name}/predict``.

Predictions come from the version lineage says is live in the slot, loaded only from a version
registered in Warden after its artifact hash matched
(:class:`retrain.deployers.VerifiedModelLoader`) and then kept in this process. Each answered
batch is logged for the monitors in the same transaction (:func:`log_inferences`, through
:func:`monitors.inferences.log_inferences`), with the client's request ids when it sends them,
so its labels can follow later.

The MLflow adapter and the loader are built on first use from the app's settings and kept on
``app.state``, so importing this module (and starting the app) does not import MLflow.
"""

from __future__ import annotations

import threading
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep, SettingsDep
from api.security import CurrentProject, require
from api.settings import Settings
from governance.actors import Actor
from governance.audit import act_then_audit
from governance.permissions import Permission
from lineage.models import Deployment, ModelVersion
from monitors.inferences import InferenceRecord
from monitors.inferences import log_inferences as store_inferences
from retrain.deployers import EmbeddedDeployer, Prediction, VerifiedModelLoader
from retrain.mlflow_registry import Registry

__all__ = [
    "PredictRequest",
    "PredictionPublic",
    "get_embedded_deployer",
    "get_registry",
    "log_inferences",
    "router",
]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["serving"]
)
_build_lock = threading.Lock()

Cell = str | int | float | bool | None


def get_registry(request: Request) -> Registry:
    """Return the process's MLflow adapter (tracking URI and artifact root from the settings)."""
    state = request.app.state
    with _build_lock:
        if getattr(state, "mlflow_registry", None) is None:
            settings: Settings = state.settings
            state.mlflow_registry = Registry(
                tracking_uri=settings.resolved_mlflow_uri(),
                artifact_root=settings.mlflow_artifact_root(),
            )
    registry: Registry = state.mlflow_registry
    return registry


def get_embedded_deployer(request: Request) -> EmbeddedDeployer:
    """Return the process's embedded deployer, whose model cache lives as long as the app."""
    registry = get_registry(request)
    state = request.app.state
    with _build_lock:
        if getattr(state, "embedded_deployer", None) is None:
            settings: Settings = state.settings
            loader = VerifiedModelLoader(registry=registry, cache_dir=settings.data_dir / "models")
            state.embedded_deployer = EmbeddedDeployer(loader=loader)
    deployer: EmbeddedDeployer = state.embedded_deployer
    return deployer


class PredictRequest(BaseModel):
    """Rows to score, one mapping of feature name to value per row."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Cell]] = Field(min_length=1, max_length=10_000)
    request_ids: list[str] | None = Field(
        default=None,
        description="One id per row, to send labels for later; Warden makes them up if unset.",
    )

    @model_validator(mode="after")
    def _one_id_per_row(self) -> PredictRequest:
        ids = self.request_ids
        if ids is not None and (len(ids) != len(self.rows) or len(set(ids)) != len(ids)):
            raise ValueError("request_ids must hold one distinct id per row")
        if ids is not None and any(not 1 <= len(i) <= 200 for i in ids):
            raise ValueError("each request id must be 1 to 200 characters")
        return self


class PredictionPublic(BaseModel):
    """The predictions, in row order, and the version that made them."""

    deployment: str
    environment: str
    model_name: str
    model_version: str
    model_version_id: uuid.UUID
    request_ids: list[str]
    predictions: list[Any]
    scores: list[float] | None
    logged: int


def log_inferences(
    *,
    session: Session,
    settings: Settings,
    actor: Actor,
    prediction: Prediction,
    rows: list[dict[str, Cell]],
    request_ids: list[str],
    features: list[str],
) -> int:
    """Log an answered batch for the monitors, as ``POST …/inferences`` would; return how many.

    Only the model's input columns are kept. Request ids the client chose make a later
    ``POST …/inferences`` or ``…/labels`` with the same ids refer to these rows (re-sent ids
    count once).
    """
    deployment = session.get(Deployment, prediction.deployment_id)
    assert deployment is not None  # the deployer just read it
    scores: list[float | None] = (
        list(prediction.scores) if prediction.scores is not None else [None] * len(rows)
    )
    records = [
        InferenceRecord(
            request_id=request_id,
            features={name: row.get(name) for name in features},
            prediction=answer,
            score=score,
        )
        for request_id, row, answer, score in zip(
            request_ids, rows, prediction.predictions, scores, strict=True
        )
    ]
    result = act_then_audit(
        lambda: store_inferences(
            session=session, store=settings.artifact_store(), deployment=deployment, records=records
        ),
        session=session,
        actor=actor,
        action="inference.log",
        target=f"deployment:{deployment.id}",
        detail=lambda stored: {"after": stored.to_dict(), "source": "predict"},
    )
    return result.accepted


@router.post(
    "/deployments/{name}/predict",
    summary="Predict with the live version of a deployment (embedded deployer)",
)
def predict(
    name: str,
    body: PredictRequest,
    actor: Annotated[Actor, Depends(require(Permission.INFERENCE_WRITE))],
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    deployer: Annotated[EmbeddedDeployer, Depends(get_embedded_deployer)],
    environment: Annotated[str, Query(max_length=64)] = "production",
) -> PredictionPublic:
    """Score the rows with the version live in ``name`` (``environment``) and log them.

    The answer and the logged inferences come from the same, hash-checked version; the
    response's ``request_ids`` are the ids to send labels for.
    """
    import pandas as pd

    prediction = deployer.predict(
        session=session,
        project_id=project.id,
        deployment=name,
        environment=environment,
        frame=pd.DataFrame.from_records(body.rows),
    )
    request_ids = body.request_ids or [str(uuid.uuid4()) for _ in body.rows]
    model_version = session.get(ModelVersion, prediction.model_version_id)
    assert model_version is not None
    logged = log_inferences(
        session=session,
        settings=settings,
        actor=actor,
        prediction=prediction,
        rows=body.rows,
        request_ids=request_ids,
        features=list(model_version.feature_schema) or list(body.rows[0]),
    )
    return PredictionPublic(
        deployment=name,
        environment=environment,
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        model_version_id=prediction.model_version_id,
        request_ids=request_ids,
        predictions=prediction.predictions,
        scores=prediction.scores,
        logged=logged,
    )
