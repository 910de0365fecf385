"""The MLflow adapter: the only module in Warden that imports ``mlflow``.

Everything MLflow does for Warden goes through :class:`Registry`: tracking runs (parameters,
metrics, input datasets via ``log_input``), registering model versions and prompt versions (MLflow
3's prompt registry), moving the ``challenger`` / ``champion`` aliases (never the deprecated
stages) and a prompt's environment aliases (``production``), reading versions and their
source runs back (for ``warden lineage sync-mlflow``), and loading a version's model files.
Training steps run sandboxed and never reach MLflow: a step saves a model folder
(:func:`save_sklearn_model`) in its output, and the worker logs and registers it
(:meth:`Registry.record_training`), so no step holds MLflow's store or credentials.

Model files are code. :meth:`Registry.load_verified` downloads a version's artifacts, hashes
them with :func:`hash_directory` and refuses to load them unless the hash equals the one Warden
recorded in lineage when the version was registered. scikit-learn models are saved with skops and
only the reviewed types in :data:`SKOPS_TRUSTED_TYPES`; Warden never falls back to pickle.

``mlflow`` is imported inside the methods, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lineage.errors import Conflict, InvalidInput, NotFound, Unavailable

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "SKOPS_TRUSTED_TYPES",
    "InputDataset",
    "ModelVersionInfo",
    "PromptContent",
    "Registry",
    "RunInfo",
    "TrainingRecord",
    "TrainingRun",
    "check_model_directory",
    "dataset_digest",
    "hash_directory",
    "load_model_directory",
    "save_sklearn_model",
    "signature_schemas",
]

CHAMPION = "champion"
CHALLENGER = "challenger"

#: The types a scikit-learn ``HistGradientBoostingClassifier`` pipeline needs beyond skops'
#: defaults, reviewed once; add to this list only after reviewing the new type.
SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
)

# Written by MLflow into a downloaded copy, not part of what was logged: left out of the hash.
_DOWNLOAD_ONLY_FILES = frozenset({"registered_model_meta"})
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


_SIGNATURE_TYPES = {
    "boolean": "boolean",
    "integer": "integer",
    "long": "integer",
    "float": "float",
    "double": "float",
    "string": "category",
    "datetime": "datetime",
}
"""MLflow column types → Warden feature types (text inputs are treated as categories)."""


def signature_schemas(model_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Return the named input and output columns of a saved model's MLflow signature.

    Columns without a name (tensor signatures) or of a type Warden does not log (binary) are
    left out; a model saved without a signature gives two empty schemas.
    """
    from mlflow.models import Model

    signature = Model.load(str(model_dir)).signature
    if signature is None:
        return {}, {}

    def named(schema: Any) -> dict[str, str]:
        if schema is None or not getattr(schema, "has_input_names", lambda: False)():
            return {}
        found: dict[str, str] = {}
        for column in schema.inputs:
            kind = _SIGNATURE_TYPES.get(str(getattr(column.type, "name", "")).lower())
            if column.name and kind is not None:
                found[str(column.name)] = kind
        return found

    return named(signature.inputs), named(signature.outputs)


def hash_directory(path: Path) -> str:
    """Return a SHA-256 over every file below ``path`` (relative names and contents).

    The digest is independent of where the directory lives and of file modification times, so
    the hash computed when a version is registered can be recomputed before it is loaded.
    """
    outer = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        if relative in _DOWNLOAD_ONLY_FILES:
            continue
        inner = hashlib.sha256()
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                inner.update(chunk)
        outer.update(f"{relative}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest()


@dataclass(frozen=True, slots=True)
class PromptContent:
    """What MLflow's prompt registry holds for one prompt version."""

    template: str | list[dict[str, Any]]
    model_config: dict[str, Any]
    response_format: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class InputDataset:
    """A dataset a run logged with ``log_input``, as MLflow recorded it."""

    name: str
    digest: str
    source: str
    source_type: str
    context: str | None
    num_rows: int | None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The parts of an MLflow run Warden records in lineage."""

    run_id: str
    experiment_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    params: dict[str, str]
    metrics: dict[str, float]
    inputs: list[InputDataset]


@dataclass(frozen=True, slots=True)
class ModelVersionInfo:
    """A registered model version, as MLflow reports it."""

    name: str
    version: str
    run_id: str | None
    source: str
    created_at: datetime
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def _from_millis(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


def save_sklearn_model(model: Any, directory: Path, *, input_example: pd.DataFrame) -> None:
    """Save a scikit-learn model as an MLflow model folder, with skops and reviewed types only.

    A sandboxed training step calls this on its output folder; the worker, not the step, logs
    the folder to MLflow and registers it (:meth:`Registry.record_training`).
    """
    _quiet_mlflow()
    import mlflow.sklearn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mlflow.sklearn.save_model(
            model,
            str(directory),
            input_example=input_example,
            serialization_format="skops",
            skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
        )


def check_model_directory(directory: Path) -> None:
    """Refuse a model folder unless it is scikit-learn saved with skops and reviewed types only.

    MLflow's loader takes the serialization format and the trusted types from the folder's own
    ``MLmodel`` file, which whoever wrote the folder controls (a sandboxed step, an MLflow user):
    left unchecked, a folder declaring ``pickle`` or an extra trusted type runs its code in the
    process that loads it.

    Raises:
        InvalidInput: The folder is not a scikit-learn model saved with skops, or trusts a type
            outside :data:`SKOPS_TRUSTED_TYPES`.
    """
    import yaml

    try:
        meta = yaml.safe_load((directory / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InvalidInput(
            f"the model folder has no readable MLmodel file ({type(error).__name__}); "
            "save the model with mlflow.sklearn and serialization_format='skops'",
            field="model",
        ) from None
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    sklearn = flavors.get("sklearn") if isinstance(flavors, dict) else None
    if not isinstance(sklearn, dict) or sklearn.get("serialization_format") != "skops":
        raise InvalidInput(
            "the model is not a scikit-learn model saved with skops; Warden never loads pickles: "
            "save it with mlflow.sklearn.save_model(..., serialization_format='skops')",
            field="model",
        )
    trusted = sklearn.get("skops_trusted_types") or []
    if not isinstance(trusted, list):
        trusted = [repr(trusted)]
    extra = sorted(set(map(str, trusted)) - set(SKOPS_TRUSTED_TYPES))
    if extra:
        raise InvalidInput(
            f"the model trusts types Warden has not reviewed ({', '.join(extra)}); "
            "add a type to SKOPS_TRUSTED_TYPES only after reviewing it",
            field="model",
        )


def load_model_directory(directory: Path) -> Any:
    """Load a saved scikit-learn MLflow model folder after :func:`check_model_directory`.

    Raises:
        InvalidInput: The folder fails :func:`check_model_directory` (nothing is loaded).
    """
    check_model_directory(directory)
    _quiet_mlflow()
    import mlflow.sklearn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return mlflow.sklearn.load_model(str(directory))


def dataset_digest(
    frame: pd.DataFrame, *, source: str, name: str, targets: str | None = None
) -> dict[str, str]:
    """Return how MLflow identifies a data frame read from ``source`` (its name and digest).

    A step reports this in its output; the worker logs it as the run's input dataset.
    """
    _quiet_mlflow()
    from mlflow.data.pandas_dataset import from_pandas

    with warnings.catch_warnings():
        # MLflow cannot tell a local file from an artifact path and says so; either is fine.
        warnings.simplefilter("ignore", UserWarning)
        dataset = from_pandas(frame, source=source, name=name, targets=targets)
    return {"name": name, "source": source, "digest": str(dataset.digest)}


class TrainingRun:
    """An open MLflow run to log into outside pipelines (notebooks, tests).

    Pipeline steps are sandboxed and save a model folder instead; the worker logs it with
    :meth:`Registry.record_training`.
    """

    def __init__(self, *, run_id: str, registry: Registry) -> None:
        self.run_id = run_id
        self._registry = registry

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record the run's parameters (values are stringified by MLflow)."""
        import mlflow

        mlflow.log_params(dict(params))

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Record the run's metrics."""
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Tag the run (Warden puts its pipeline-run id here)."""
        import mlflow

        mlflow.set_tags(dict(tags))

    def log_input(
        self,
        frame: pd.DataFrame,
        *,
        source: str,
        name: str,
        context: str = "training",
        targets: str | None = None,
    ) -> str:
        """Record a data frame the run read, with its source, as an MLflow input dataset.

        Returns:
            MLflow's digest of the dataset, which lineage stores with the edge.
        """
        import mlflow
        from mlflow.data.pandas_dataset import from_pandas

        with warnings.catch_warnings():
            # MLflow cannot tell a local file from an artifact path and says so; either is fine.
            warnings.simplefilter("ignore", UserWarning)
            dataset = from_pandas(frame, source=source, name=name, targets=targets)
            mlflow.log_input(dataset, context=context)
        return str(dataset.digest)

    def log_sklearn_model(
        self, model: Any, *, registered_name: str, input_example: pd.DataFrame
    ) -> str:
        """Save a scikit-learn model with skops (reviewed types only) and register a version.

        Returns:
            The new registered version number, as a string.
        """
        import mlflow.sklearn

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=registered_name,
                input_example=input_example,
                skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
            )
        version = info.registered_model_version
        if version is None:
            raise Unavailable(f"MLflow did not register a version of {registered_name!r}")
        return str(version)


@dataclass(frozen=True, slots=True)
class TrainingRecord:
    """What the worker logs to MLflow for a step that saved a model (see ``record_training``)."""

    experiment: str
    run_name: str
    registered_name: str
    model_dir: Path
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    datasets: tuple[Mapping[str, str], ...] = ()


class Registry:
    """MLflow tracking and model registry at one URI, with artifacts under a directory Warden owns.

    Args:
        tracking_uri: The MLflow tracking and registry URI (``sqlite:///…`` or ``http://…``).
        artifact_root: Where experiments Warden creates keep their artifacts: a local folder
            (under the data dir), or the URI of a bucket prefix (``s3://bucket/prefix``) when
            artifacts live in object storage; MLflow reads the ``AWS_*`` variables for it.
    """

    def __init__(self, *, tracking_uri: str, artifact_root: Path | str) -> None:
        _quiet_mlflow()
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root

    def _client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """Return the id of experiment ``name``, creating it with artifacts under our root."""
        client = self._client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        slug = _SLUG.sub("-", name)
        if isinstance(self.artifact_root, str):
            location = f"{self.artifact_root.rstrip('/')}/{slug}"
        else:
            folder = self.artifact_root / slug
            folder.mkdir(parents=True, exist_ok=True)
            location = folder.resolve().as_uri()
        return str(client.create_experiment(name, artifact_location=location))

    @contextmanager
    def training_run(
        self, *, experiment: str, run_name: str | None = None
    ) -> Iterator[TrainingRun]:
        """Open an MLflow run to log a training step into; it ends (FAILED on error) on exit."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        experiment_id = self.experiment_id(experiment)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            yield TrainingRun(run_id=str(run.info.run_id), registry=self)

    def record_training(self, record: TrainingRecord) -> tuple[str, str]:
        """Log a step's saved model, parameters, metrics and inputs to a run; register a version.

        Returns:
            ``(mlflow run id, registered version)``.

        Raises:
            InvalidInput: The step's model folder fails :func:`check_model_directory`.
        """
        check_model_directory(record.model_dir)
        import mlflow
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        experiment_id = self.experiment_id(record.experiment)
        with (
            warnings.catch_warnings(),
            mlflow.start_run(experiment_id=experiment_id, run_name=record.run_name) as run,
        ):
            warnings.simplefilter("ignore", UserWarning)
            mlflow.set_tags(dict(record.tags))
            mlflow.log_params(dict(record.params))
            mlflow.log_metrics({k: float(v) for k, v in record.metrics.items()})
            for item in record.datasets:
                source = resolve_dataset_source(str(item["source"]))
                dataset = MetaDataset(  # type: ignore[abstract]
                    source=source, name=item["name"], digest=item["digest"]
                )
                mlflow.log_input(dataset, context="training")
            mlflow.log_artifacts(str(record.model_dir), artifact_path="model")
            registered = mlflow.register_model(
                f"runs:/{run.info.run_id}/model", record.registered_name
            )
        return str(run.info.run_id), str(registered.version)

    def model_version(self, name: str, version: str) -> ModelVersionInfo:
        """Return one registered version, or raise :class:`NotFound`."""
        from mlflow.exceptions import MlflowException

        try:
            found = self._client().get_model_version(name, str(version))
        except MlflowException as error:
            raise NotFound(
                f"MLflow has no version {version} of model {name!r}; list versions in MLflow"
            ) from error
        return self._version_info(found)

    def _version_info(self, found: Any) -> ModelVersionInfo:
        created = _from_millis(found.creation_timestamp) or datetime.now(UTC)
        return ModelVersionInfo(
            name=str(found.name),
            version=str(found.version),
            run_id=str(found.run_id) if found.run_id else None,
            source=str(found.source),
            created_at=created,
            aliases=[str(a) for a in (found.aliases or [])],
            tags={str(k): str(v) for k, v in (found.tags or {}).items()},
        )

    def registered_model_names(self) -> list[str]:
        """Return the names of every registered model, sorted."""
        client = self._client()
        names: list[str] = []
        token: str | None = None
        while True:
            page = client.search_registered_models(max_results=200, page_token=token)
            names.extend(str(m.name) for m in page)
            token = page.token
            if not token:
                return sorted(names)

    def model_versions(self, name: str) -> list[ModelVersionInfo]:
        """Return every version of model ``name``, oldest first."""
        found = self._client().search_model_versions(f"name = '{name.replace(chr(39), '')}'")
        infos = [self._version_info(v) for v in found]
        return sorted(infos, key=lambda v: int(v.version))

    def run(self, run_id: str) -> RunInfo:
        """Return a run's parameters, metrics and logged input datasets."""
        from mlflow.exceptions import MlflowException

        try:
            run = self._client().get_run(run_id)
        except MlflowException as error:
            raise NotFound(f"MLflow has no run {run_id!r}") from error
        inputs: list[InputDataset] = []
        for item in run.inputs.dataset_inputs if run.inputs else []:
            tags = {t.key: t.value for t in item.tags}
            profile = _parse_profile(item.dataset.profile)
            inputs.append(
                InputDataset(
                    name=str(item.dataset.name),
                    digest=str(item.dataset.digest),
                    source=_source_uri(item.dataset.source),
                    source_type=str(item.dataset.source_type),
                    context=tags.get("mlflow.data.context"),
                    num_rows=profile,
                )
            )
        return RunInfo(
            run_id=str(run.info.run_id),
            experiment_id=str(run.info.experiment_id),
            status=str(run.info.status),
            started_at=_from_millis(run.info.start_time),
            ended_at=_from_millis(run.info.end_time),
            params={str(k): str(v) for k, v in run.data.params.items()},
            metrics={str(k): float(v) for k, v in run.data.metrics.items()},
            inputs=inputs,
        )

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``models:/name@alias`` at ``version``."""
        self._client().set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias; removing one that is not set is not an error."""
        from mlflow.exceptions import MlflowException

        try:
            self._client().delete_registered_model_alias(name, alias)
        except MlflowException:
            return

    def alias_version(self, name: str, alias: str) -> str | None:
        """Return the version ``models:/name@alias`` points at, or ``None``."""
        from mlflow.exceptions import MlflowException

        try:
            found = self._client().get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        return str(found.version)

    def latest_prompt_version(self, name: str) -> str | None:
        """Return the newest version of prompt ``name`` in MLflow's prompt registry, or ``None``."""
        from mlflow.exceptions import MlflowException

        client = self._client()
        try:
            if client.get_prompt(name) is None:
                return None
            found = client.search_prompt_versions(name)
        except MlflowException:
            return None
        numbers = [int(v.version) for v in found]
        return str(max(numbers)) if numbers else None

    def register_prompt(
        self,
        name: str,
        *,
        template: str | list[dict[str, str]],
        commit_message: str,
        model_config: Mapping[str, Any],
        response_format: Mapping[str, Any] | None,
        tags: Mapping[str, str],
    ) -> str:
        """Register a prompt version in MLflow's prompt registry; return its version number.

        Raises:
            Unavailable: MLflow refused or could not be reached (nothing was registered).
        """
        from mlflow.exceptions import MlflowException

        try:
            registered = self._client().register_prompt(
                name,
                template,
                commit_message=commit_message,
                tags=dict(tags),
                response_format=dict(response_format) if response_format else None,
                model_config=dict(model_config),
            )
        except MlflowException as error:
            raise Unavailable(
                f"MLflow's prompt registry did not register {name!r}: {error.message}; "
                "check MLFLOW_TRACKING_URI and retry"
            ) from error
        return str(registered.version)

    def prompt_content(self, name: str, version: str) -> PromptContent:
        """Return what MLflow's prompt registry holds for a prompt version.

        Raises:
            Conflict: MLflow does not hold the version (any more).
        """
        from mlflow.exceptions import MlflowException

        try:
            found = self._client().get_prompt_version(name, str(version))
        except MlflowException as error:
            raise Conflict(
                f"MLflow's prompt registry has no version {version} of prompt {name!r} that "
                "Warden registered; register the prompt again through Warden"
            ) from error
        if found is None:
            raise Conflict(f"MLflow's prompt registry has no version {version} of {name!r}")
        return PromptContent(
            template=found.template,
            model_config=dict(found.model_config or {}),
            response_format=dict(found.response_format) if found.response_format else None,
        )

    def set_prompt_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``prompts:/name@alias`` at ``version``."""
        self._client().set_prompt_alias(name, alias, int(version))

    def delete_prompt_alias(self, name: str, alias: str) -> None:
        """Remove a prompt alias; removing one that is not set is not an error."""
        from mlflow.exceptions import MlflowException

        try:
            self._client().delete_prompt_alias(name, alias)
        except MlflowException:
            return

    def prompt_alias_version(self, name: str, alias: str) -> str | None:
        """Return the version ``prompts:/name@alias`` points at, or ``None``."""
        from mlflow.exceptions import MlflowException

        try:
            found = self._client().get_prompt_version_by_alias(name, alias)
        except MlflowException:
            return None
        return str(found.version) if found is not None else None

    def aliases(self, name: str) -> dict[str, str]:
        """Return model ``name``'s aliases (``{"champion": "3"}``); none for an unknown model.

        Raises:
            Unavailable: MLflow could not be asked (its server is down or unreachable).
        """
        from mlflow.exceptions import MlflowException

        try:
            found = self._client().get_registered_model(name)
        except MlflowException as error:
            if getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise Unavailable(f"MLflow could not be asked for model {name!r}: {error}") from error
        return {str(alias): str(version) for alias, version in (found.aliases or {}).items()}

    def download(self, name: str, version: str, destination: Path) -> Path:
        """Copy a version's model artifacts into ``destination`` (replaced if present).

        Raises:
            Conflict: MLflow does not hold the version (any more).
        """
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        try:
            uri = self._client().get_model_version_download_uri(name, str(version))
        except MlflowException as error:
            raise Conflict(
                f"MLflow has no version {version} of model {name!r}, so Warden cannot fetch the "
                "artifacts it registered; register the model in MLflow again, then in Warden"
            ) from error
        if destination.exists():
            shutil.rmtree(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=destination.parent))
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=str(uri), dst_path=str(staging), tracking_uri=self.tracking_uri
            )
            Path(local).rename(destination)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return destination

    def artifact_hash(self, name: str, version: str) -> str:
        """Return :func:`hash_directory` of a version's model artifacts, as registered."""
        with tempfile.TemporaryDirectory(prefix="warden-hash-") as scratch:
            return hash_directory(self.download(name, version, Path(scratch) / "model"))

    def artifact_facts(self, name: str, version: str) -> tuple[str, dict[str, str], dict[str, str]]:
        """Return a version's artifact hash and its signature's input and output schemas.

        One download serves both, so the schema is read from exactly the hashed artifacts.
        """
        with tempfile.TemporaryDirectory(prefix="warden-hash-") as scratch:
            local = self.download(name, version, Path(scratch) / "model")
            inputs, outputs = signature_schemas(local)
            return hash_directory(local), inputs, outputs

    def load_verified(self, name: str, version: str, *, expected_hash: str, directory: Path) -> Any:
        """Download a version into ``directory``, check its hash, and only then load it.

        Raises:
            Conflict: The artifacts differ from what Warden registered (the model is not loaded).
        """
        return load_model_directory(
            self.download_verified(name, version, expected_hash=expected_hash, directory=directory)
        )

    def download_verified(
        self, name: str, version: str, *, expected_hash: str | None, directory: Path
    ) -> Path:
        """Download a version into ``directory`` and check its hash; return the folder.

        Raises:
            InvalidInput: No hash was registered (an external version Warden never loads).
            Conflict: The artifacts differ from what Warden registered (the copy is removed).
        """
        if expected_hash is None:
            raise InvalidInput(
                f"{name!r} version {version} has no registered artifact hash (an external "
                "version), so Warden will not load it",
                field="artifact_sha256",
            )
        local = self.download(name, version, directory)
        actual = hash_directory(local)
        if actual != expected_hash:
            shutil.rmtree(local, ignore_errors=True)
            raise Conflict(
                f"the artifacts of {name!r} version {version} hash to {actual}, but Warden "
                f"registered {expected_hash}; refusing to load them. Re-register the version "
                "through Warden after checking who changed it"
            )
        return local


def _parse_profile(profile: str | None) -> int | None:
    import json

    if not profile:
        return None
    try:
        rows = json.loads(profile).get("num_rows")
    except (ValueError, AttributeError):
        return None
    return int(rows) if isinstance(rows, int) else None


def _source_uri(source: str) -> str:
    import json

    try:
        parsed = json.loads(source)
    except ValueError:
        return source
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return source
