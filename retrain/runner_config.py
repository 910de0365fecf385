"""Where pipeline runs keep their files and what their sandboxed code may see.

The operator's choices (data directory, artifact store, MLflow, executor, readable roots,
network) in one frozen value, and the two questions every part of a run asks of it: where is
this run's working folder, and may a step read this file.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lineage.errors import InvalidInput
from lineage.storage import LocalStore, ObjectStore
from retrain.mlflow_registry import Registry
from retrain.sandbox import BubblewrapExecutor, StepExecutor

__all__ = ["RunnerConfig", "readable_file", "run_directory", "run_key"]


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """Where runs keep their files, which MLflow the worker logs to, and how code is isolated.

    Attributes:
        data_dir: Warden's data directory; runs work in folders below it (steps see their own
            only) and it is the artifact store unless ``store`` names another.
        tracking_uri: The MLflow tracking and registry URI the worker registers versions in.
        python: The interpreter entry-point steps run in.
        poll_seconds: How often to check for exit, cancellation and the deadline.
        kill_grace_seconds: How long a stopped step may take to exit before SIGKILL.
        executor: Starts project code in a sandbox (bubblewrap unless configured otherwise).
        readable_roots: Host folders whose files pipelines may name as inputs (dataset version
            URIs, absolute paths in parameters, held-out data); exposed read-only. None may be,
            or contain, the data directory or a protected path.
        protected: Further paths no step may see even under a readable root (the database
            file, key files kept outside the data directory).
        network_projects: Project ids or names whose steps may use the network (default none).
        code_paths: Folders of project code (packages a deployment installs for its steps and
            readers) put on the sandbox's ``PYTHONPATH``, read-only.
        max_model_bytes: The largest model folder a step may hand over.
        store: Where a finished run's files are kept (the data directory when ``None``).
        mlflow_artifact_root: Where experiments Warden creates keep their MLflow artifacts: a
            folder or a bucket URI (``<data_dir>/mlflow-artifacts`` when ``None``).
    """

    data_dir: Path
    tracking_uri: str
    python: str = sys.executable
    poll_seconds: float = 0.2
    kill_grace_seconds: float = 5.0
    executor: StepExecutor = field(default_factory=BubblewrapExecutor)
    readable_roots: tuple[Path, ...] = ()
    protected: tuple[Path, ...] = ()
    network_projects: frozenset[str] = frozenset()
    code_paths: tuple[Path, ...] = ()
    max_model_bytes: int = 2 * 1024**3
    store: ObjectStore | None = None
    mlflow_artifact_root: Path | str | None = None

    def __post_init__(self) -> None:
        for root in (*self.readable_roots, *self.code_paths):
            resolved = root.resolve()
            if any(_overlaps(resolved, guarded) for guarded in self.guarded_paths()):
                raise InvalidInput(
                    f"sandbox read root {root} is, contains or lies in Warden's data directory "
                    "or a protected path; name the folders holding training data only",
                    field="sandbox_read_roots",
                )

    def guarded_paths(self) -> list[Path]:
        """Return what no step may see: the data dir's keys, stores and runs, and ``protected``."""
        data = self.data_dir.resolve()
        guarded = [data / name for name in ("keys", "pipelines", "staging", "models")]
        guarded.append(data / "mlflow-artifacts")
        if isinstance(self.store, LocalStore) and self.store.root.resolve() != data:
            guarded.append(self.store.root.resolve())  # an artifact directory elsewhere
        if isinstance(self.mlflow_artifact_root, Path):
            guarded.append(self.mlflow_artifact_root.resolve())
        guarded += [path.resolve() for path in self.protected]
        if self.tracking_uri.startswith("sqlite:///"):
            guarded.append(Path(self.tracking_uri.removeprefix("sqlite:///")).resolve())
        guarded += [p.resolve() for p in data.glob("*.db*")] if data.is_dir() else []
        return guarded

    def registry(self) -> Registry:
        """Return the MLflow adapter for this configuration."""
        return Registry(tracking_uri=self.tracking_uri, artifact_root=self.artifact_root)

    @property
    def artifact_root(self) -> Path | str:
        """Return where Warden-created MLflow experiments keep their artifacts."""
        return self.mlflow_artifact_root or self.data_dir / "mlflow-artifacts"

    def artifacts(self) -> ObjectStore:
        """Return the store a finished run's files go to."""
        return self.store or LocalStore(self.data_dir)


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def run_directory(data_dir: Path, run_id: uuid.UUID) -> Path:
    """Return the local folder a run works in: context, output and log (derived from its id).

    It lives only while the run does; :func:`retrain.run_files.publish_run_files` then moves
    what the run keeps into the artifact store under :func:`run_key`.
    """
    return data_dir / "staging" / "pipelines" / str(run_id)


def run_key(run_id: uuid.UUID, relative: str = "") -> str:
    """Return the artifact-store key of a finished run's file (its folder when empty)."""
    return f"pipelines/runs/{run_id}/{relative}" if relative else f"pipelines/runs/{run_id}"


def readable_file(config: RunnerConfig, uri: str, *, field: str) -> Path | None:
    """Return the host file a pipeline names, if a step may read it; ``None`` for a URL.

    Raises:
        InvalidInput: A local path outside every readable root, or a guarded one.
    """
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme and scheme != "file":
        return None  # read over the network by the step, if the project may use it
    raw = Path(uri.removeprefix("file://"))
    path = (raw if raw.is_absolute() else config.data_dir / raw).resolve()
    roots = [root.resolve() for root in config.readable_roots]
    allowed = path.exists() and any(path.is_relative_to(root) for root in roots)
    if not allowed or any(_overlaps(path, guarded) for guarded in config.guarded_paths()):
        raise InvalidInput(
            f"{field}: {uri!r} is not a file pipelines may read: steps see only files under the "
            "operator's sandbox read roots (WARDEN_SANDBOX_READ_ROOTS), never Warden's data "
            "directory; register the data there or upload it as a dataset",
            field=field,
        )
    return path
