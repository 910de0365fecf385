"""The contract between a pipeline run and its steps, and the launcher that runs entry points.

The runner starts every step in a fresh process with ``WARDEN_STEP_CONTEXT`` set to a JSON file
describing the run (:class:`StepContext`). A step reports what it produced by writing
``{"mlflow_run_id": …, "model_version": …, "metrics": {…}, "feature_schema": {…}}`` to
``context.output_path`` (keys it does not know it may leave out; later steps override earlier
ones), and may add ``"inputs": [{"namespace", "name", "version"}]`` for data it read beyond
what the run handed it, so lineage links it too. The run succeeds when every step exits with
status 0 *and* some step reported a ``model_version``.

* An **entry point** ``module:function`` is run as ``python -m retrain.step module:function``:
  this module loads the context, calls ``function(context)`` and merges the mapping it returns
  into the output file.
* A **command** is run as given (an argument vector, no shell) and reads the context file itself.

Steps log to stdout/stderr; the runner captures both into the run's log.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrain.mlflow_registry import Registry

__all__ = ["CONTEXT_ENV", "StepContext", "TrainingInput", "main", "merge_output", "read_output"]

CONTEXT_ENV = "WARDEN_STEP_CONTEXT"


@dataclass(frozen=True, slots=True)
class TrainingInput:
    """One input a run trains on: a file Warden resolved from a dataset version or a query.

    Attributes:
        name: The dataset's name (shown in MLflow and lineage).
        uri: Where to read it (a local path or a URI pandas can read).
        namespace: The dataset's OpenLineage namespace, so lineage can match it.
        version: The dataset version label in lineage, when it came from one.
    """

    name: str
    uri: str
    namespace: str = "file"
    version: str | None = None


@dataclass(frozen=True, slots=True)
class StepContext:
    """Everything a step needs to know about its run."""

    run_id: str
    project_id: str
    pipeline: str
    model_name: str
    experiment: str
    tracking_uri: str
    artifact_root: str
    work_dir: str
    output_path: str
    parameters: dict[str, Any] = field(default_factory=dict)
    training_inputs: list[TrainingInput] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)

    def registry(self) -> Registry:
        """Return the MLflow adapter for this run's tracking URI and artifact root."""
        return Registry(tracking_uri=self.tracking_uri, artifact_root=Path(self.artifact_root))

    def write(self, path: Path) -> None:
        """Write this context as JSON (the runner does this before starting a step)."""
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> StepContext:
        """Read a context the runner wrote."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["training_inputs"] = [TrainingInput(**item) for item in raw["training_inputs"]]
        return cls(**raw)

    @classmethod
    def from_environment(cls) -> StepContext:
        """Read the context named by ``WARDEN_STEP_CONTEXT`` (inside a step process)."""
        path = os.environ.get(CONTEXT_ENV)
        if not path:
            raise RuntimeError(f"{CONTEXT_ENV} is not set; steps run only inside a pipeline run")
        return cls.read(Path(path))


def read_output(path: Path) -> dict[str, Any]:
    """Return what the steps reported so far (empty when nothing was written)."""
    if not path.exists():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return loaded


def merge_output(path: Path, produced: Mapping[str, Any]) -> None:
    """Merge a step's report into the run's output file."""
    merged = {**read_output(path), **produced}
    path.write_text(json.dumps(merged, indent=2, sort_keys=True, default=str), encoding="utf-8")


def _resolve(target: str) -> Callable[[StepContext], Mapping[str, Any] | None]:
    module_name, _, function_name = target.partition(":")
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SystemExit(f"entry point {target!r}: {module_name} has no callable {function_name}")
    return function  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    """Run the entry point named on the command line with the run's context; return 0."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m retrain.step module:function")
    context = StepContext.from_environment()
    produced = _resolve(args[0])(context)
    if produced:
        merge_output(Path(context.output_path), produced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
