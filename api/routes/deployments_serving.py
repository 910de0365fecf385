"""The embedded deployer over HTTP: ``POST …/deployments/{name}/predict``.

Predictions come from the version lineage says is live in the slot, loaded only from a version
registered in Warden after its artifact hash matched (:class:`retrain.deployers.ModelLoader`) and
then kept in this process. Each answered batch is handed to :func:`log_inferences`, the one call
site for the inference log the monitors read.

The MLflow adapter and the loader are built on first use from the app's settings and kept on
``app.state``, so importing this module (and starting the app) does not import MLflow.
"""

from __future__ import annotations

import threading
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SessionDep
from api.security import CurrentProject, require
from api.settings import Settings
from governance.actors import Actor
from governance.permissions import Permission
from retrain.deployers import EmbeddedDeployer, ModelLoader, Prediction
from retrain.registry import Registry

__all__ = [
    "PredictRequest",
    "PredictResponse",
    "get_embedded_deployer",
    "get_registry",
    "log_inferences",
    "router",
]

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["serving"])
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
                artifact_root=settings.data_dir / "mlflow-artifacts",
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
            loader = ModelLoader(registry=registry, cache_dir=settings.data_dir / "models")
            state.embedded_deployer = EmbeddedDeployer(loader=loader)
    deployer: EmbeddedDeployer = state.embedded_deployer
    return deployer


class PredictRequest(BaseModel):
    """Rows to score, one mapping of feature name to value per row."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Cell]] = Field(min_length=1, max_length=10_000)


class PredictResponse(BaseModel):
    """The predictions, in row order, and the version that made them."""

    deployment: str
    environment: str
    model_name: str
    model_version: str
    model_version_id: uuid.UUID
    predictions: list[Any]
    scores: list[float] | None


def log_inferences(
    *,
    request: Request,
    project_id: uuid.UUID,
    deployment: str,
    environment: str,
    rows: list[dict[str, Cell]],
    prediction: Prediction,
    actor: Actor,
) -> None:
    """Hand an answered batch to the inference log the monitors read.

    The single call site for inference logging from the embedded deployer: Warden has no
    inference-log service yet, so this records nothing. When it exists, write the rows, the
    predictions and scores, ``prediction.model_version_id`` and the slot here.
    """


@router.post(
    "/deployments/{name}/predict",
    summary="Predict with the live version of a deployment (embedded deployer)",
)
def predict(
    name: str,
    body: PredictRequest,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.INFERENCE_WRITE))],
    project: CurrentProject,
    session: SessionDep,
    deployer: Annotated[EmbeddedDeployer, Depends(get_embedded_deployer)],
    environment: Annotated[str, Query(max_length=64)] = "production",
) -> PredictResponse:
    """Score the rows with the version live in ``name`` (``environment``), hash-checked."""
    import pandas as pd

    prediction = deployer.predict(
        session=session,
        project_id=project.id,
        deployment=name,
        environment=environment,
        frame=pd.DataFrame.from_records(body.rows),
    )
    log_inferences(
        request=request,
        project_id=project.id,
        deployment=name,
        environment=environment,
        rows=body.rows,
        prediction=prediction,
        actor=actor,
    )
    return PredictResponse(
        deployment=name,
        environment=environment,
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        model_version_id=prediction.model_version_id,
        predictions=prediction.predictions,
        scores=prediction.scores,
    )
