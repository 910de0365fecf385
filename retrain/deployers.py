"""Deployers: how a promoted version goes live, and the embedded one that serves it in Warden.

Plug-in contract (:class:`Deployer`): ``deploy(model_version=…, deployment=…, environment=…)``
makes a registered version live, or raises a :class:`~lineage.errors.WardenError` and changes
nothing. :mod:`retrain.promotion` calls it (promote, rollback, redeploy) only after the
going-live rule passed and *before* it records the deployment and moves the MLflow aliases, so a
version that cannot be deployed never becomes champion. A deployer must be idempotent
(promoting the live version again is harmless) and must not commit.

Two deployers ship:

* :class:`EmbeddedDeployer` (the default) serves the champion inside Warden: ``deploy`` loads the
  version (hash checked) into the process cache, and ``predict`` answers
  ``POST …/deployments/{name}/predict`` from whatever version lineage says is live in the slot.
* :class:`AliasDeployer` is for teams whose own serving reads ``models:/name@champion``: it only
  checks that the artifacts still hash to what lineage recorded; the alias move is the deploy.

:class:`VerifiedModelLoader` is the one way Warden loads model files: only versions registered in
lineage with a ``models:/name/version`` artifact URI, only after their artifact hash matches.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sqlmodel import Session, col, select

from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.models import Deployment, ModelVersion
from retrain.mlflow_registry import Registry

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AliasDeployer",
    "Deployer",
    "EmbeddedDeployer",
    "Prediction",
    "VerifiedModelLoader",
    "live_deployment",
    "mlflow_coordinates",
]

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[^/@]+)$")


def mlflow_coordinates(model_version: ModelVersion) -> tuple[str, str]:
    """Return the MLflow ``(name, version)`` a lineage model version points at.

    Raises:
        InvalidInput: The version's artifact is not a ``models:/name/version`` URI, so Warden
            cannot fetch and verify it.
    """
    if model_version.external:
        raise InvalidInput(
            f"model {model_version.name!r} version {model_version.version} is external: Warden "
            "monitors it from its logged records and never loads it",
            field="external",
        )
    match = _MODELS_URI.match(model_version.artifact_uri or "")
    if match is None:
        raise InvalidInput(
            f"model {model_version.name!r} version {model_version.version} lives at "
            f"{model_version.artifact_uri!r}; Warden serves only versions registered in MLflow "
            "(artifact_uri models:/<name>/<version>)",
            field="artifact_uri",
        )
    return match["name"], match["version"]


class VerifiedModelLoader:
    """Load registered versions after their hash check, and keep a few in memory.

    Args:
        registry: The MLflow adapter to download artifacts with.
        cache_dir: Where downloaded versions live, one directory per lineage version id.
        capacity: How many loaded models to keep (least recently used go first).
    """

    def __init__(self, *, registry: Registry, cache_dir: Path, capacity: int = 8) -> None:
        self.registry = registry
        self.cache_dir = cache_dir
        self.capacity = capacity
        self._models: OrderedDict[tuple[uuid.UUID, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, model_version: ModelVersion) -> Any:
        """Return the loaded model of a lineage version, verifying its hash on first load.

        Raises:
            Conflict: The artifacts do not hash to ``artifact_sha256`` (nothing is loaded).
        """
        name, version = mlflow_coordinates(model_version)
        digest = model_version.artifact_sha256
        if digest is None:
            raise InvalidInput(
                f"model {model_version.name!r} version {model_version.version} has no artifact "
                "hash, so Warden will not load it",
                field="artifact_sha256",
            )
        key = (model_version.id, digest)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            model = self.registry.load_verified(
                name,
                version,
                expected_hash=digest,
                directory=self.cache_dir / str(model_version.id),
            )
            self._models[key] = model
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
            return model

    def is_loaded(self, model_version: ModelVersion) -> bool:
        """Return whether the version is in memory already."""
        with self._lock:
            return (model_version.id, model_version.artifact_sha256) in self._models


@runtime_checkable
class Deployer(Protocol):
    """Make a registered model version live under a deployment slot."""

    name: str

    def deploy(self, *, model_version: ModelVersion, deployment: str, environment: str) -> None:
        """Make ``model_version`` live in the slot, or raise and change nothing."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the embedded deployer answered, and which deployment and version answered it."""

    deployment_id: uuid.UUID
    model_version_id: uuid.UUID
    model_name: str
    model_version: str
    predictions: list[Any]
    scores: list[float] | None


def live_deployment(
    *, session: Session, project_id: uuid.UUID, deployment: str, environment: str
) -> tuple[Deployment, ModelVersion]:
    """Return the deployment live in a slot now and the model version it serves.

    Raises:
        NotFound: Nothing is live there.
    """
    row = session.exec(
        select(Deployment).where(
            Deployment.project_id == project_id,
            Deployment.name == deployment,
            Deployment.environment == environment,
            col(Deployment.live_until).is_(None),
        )
    ).first()
    if row is None:
        raise NotFound(
            f"nothing is live in deployment {deployment!r} ({environment}); promote a version first"
        )
    model_version = session.get(ModelVersion, row.model_version_id)
    assert model_version is not None
    return row, model_version


class EmbeddedDeployer:
    """Serve the live version of each slot inside Warden, from the in-process model cache."""

    name = "embedded"

    def __init__(self, *, loader: VerifiedModelLoader) -> None:
        self.loader = loader

    def deploy(self, *, model_version: ModelVersion, deployment: str, environment: str) -> None:
        """Load (and so verify) the version now, so the first prediction is fast and safe."""
        self.loader.load(model_version)

    def predict(
        self,
        *,
        session: Session,
        project_id: uuid.UUID,
        deployment: str,
        environment: str,
        frame: pd.DataFrame,
    ) -> Prediction:
        """Predict with the version live in the slot; columns are chosen by its feature schema.

        Raises:
            InvalidInput: A feature the model needs is missing from the rows.
        """
        row, model_version = live_deployment(
            session=session, project_id=project_id, deployment=deployment, environment=environment
        )
        model = self.loader.load(model_version)
        features = list(model_version.feature_schema) or list(frame.columns)
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise InvalidInput(
                f"the rows lack the features {missing} that version {model_version.version} needs",
                field="rows",
            )
        inputs = frame[features].copy()
        for column, kind in model_version.feature_schema.items():
            if kind in ("float", "integer"):
                inputs[column] = inputs[column].astype("float64")
        try:
            predicted = model.predict(inputs)
            scores = (
                [float(s) for s in model.predict_proba(inputs)[:, 1]]
                if hasattr(model, "predict_proba")
                else None
            )
        except (ValueError, TypeError) as error:
            raise InvalidInput(
                f"the model could not score the rows: {error}", field="rows"
            ) from error
        return Prediction(
            deployment_id=row.id,
            model_version_id=model_version.id,
            model_name=model_version.name,
            model_version=model_version.version,
            predictions=[p.item() if hasattr(p, "item") else p for p in predicted],
            scores=scores,
        )


class AliasDeployer:
    """For serving that reads ``models:/name@champion``: verify the artifacts, move nothing else."""

    name = "alias"

    def __init__(self, *, registry: Registry) -> None:
        self.registry = registry

    def deploy(self, *, model_version: ModelVersion, deployment: str, environment: str) -> None:
        """Refuse a version whose artifacts changed since Warden registered it."""
        name, version = mlflow_coordinates(model_version)
        actual = self.registry.artifact_hash(name, version)
        if actual != model_version.artifact_sha256:
            raise Conflict(
                f"the artifacts of {name!r} version {version} no longer match what Warden "
                "registered; refusing to make them champion"
            )
