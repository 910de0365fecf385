"""The contract between a pipeline run and its steps, and the launcher that runs entry points.

Steps are project code: the runner starts each one in a sandbox (:mod:`retrain.sandbox`) that
sees its inputs read-only, its own output folder read-write, and nothing else of Warden's.
``WARDEN_STEP_CONTEXT`` names a JSON file describing the run (:class:`StepContext`). A step
reports what it produced by writing ``{"model_dir": …, "metrics": {…}, "parameters": {…},
"feature_schema": {…}, "datasets": [{"name", "source", "digest"}]}`` to
``context.output_path`` (keys it does not know it may leave out; later steps override earlier
ones) and saving its model as an MLflow model folder (``model_dir``, relative to
``context.work_dir``; :func:`retrain.mlflow_registry.save_sklearn_model`). It may add ``"inputs":
[{"namespace", "name", "version"}]`` for data it read beyond what the run handed it, so lineage
links it too. Steps never talk to MLflow: the worker logs the folder and registers the version
after the steps exit. The run succeeds when every step exits with status 0 *and* some step
saved a model.

* An **entry point** ``module:function`` is run as ``python -m retrain.step module:function``:
  this module loads the context, calls ``function(context)`` and merges the mapping it returns
  into the output file.
* A **command** is run as given (an argument vector, no shell) and reads the context file itself.

Steps log to stdout/stderr; the runner captures both into the run's log. The worker reads what a
step wrote without following links and within size bounds (:func:`read_output`,
:func:`checked_tree`): a step cannot make it read a file the step could not.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CONTEXT_ENV",
    "MAX_OUTPUT_BYTES",
    "StepContext",
    "TrainingInput",
    "checked_tree",
    "main",
    "merge_output",
    "read_output",
    "score_holdout",
]

CONTEXT_ENV = "WARDEN_STEP_CONTEXT"
MAX_OUTPUT_BYTES = 1_000_000
"""The largest ``output.json`` the worker reads from a step."""


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
    work_dir: str
    output_path: str
    parameters: dict[str, Any] = field(default_factory=dict)
    training_inputs: list[TrainingInput] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)

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


def _open_regular(path: Path) -> int:
    """Open a file a step wrote, refusing links and anything but a regular file."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise ValueError(f"{path.name} must be a regular file")
    return descriptor


def read_output(path: Path) -> dict[str, Any]:
    """Return what the steps reported so far (empty when nothing was written).

    Raises:
        ValueError: The file is a link, not a regular file, over :data:`MAX_OUTPUT_BYTES`, or
            not a JSON object.
    """
    try:
        descriptor = _open_regular(path)
    except FileNotFoundError:
        return {}
    except OSError as error:  # ELOOP: a symbolic link
        raise ValueError(
            f"{path.name} must be a regular file, not a link ({error.strerror})"
        ) from None
    with os.fdopen(descriptor, "rb") as handle:
        raw = handle.read(MAX_OUTPUT_BYTES + 1)
    if len(raw) > MAX_OUTPUT_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_OUTPUT_BYTES} bytes")
    loaded = json.loads(raw.decode("utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{path.name} must hold a JSON object")
    return loaded


def checked_tree(root: Path, relative: str, *, max_bytes: int) -> Path:
    """Return ``root/relative`` after checking it is a folder of regular files and folders only.

    A step's output is read by the worker, which can read what the step cannot: a link in it
    (to a key, say) would make the worker copy that file into MLflow. Links, devices, sockets
    and paths leaving ``root`` are refused, and so is more than ``max_bytes`` in all.

    Raises:
        ValueError: What is wrong, naming the offending entry.
    """
    target = root / relative
    if (
        not relative
        or Path(relative).is_absolute()
        or ".." in Path(relative).parts
        or target.is_symlink()
        or not target.is_dir()
    ):
        raise ValueError(f"model_dir {relative!r} must name a folder inside the step's output")
    total = 0
    for folder, folders, files in os.walk(target, followlinks=False):
        for name in folders + files:
            entry = Path(folder) / name
            mode = entry.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ValueError(
                    f"{entry.relative_to(root)} in the step's output is not a regular file or "
                    "folder (links are refused)"
                )
            if stat.S_ISREG(mode):
                total += entry.lstat().st_size
        if total > max_bytes:
            raise ValueError(f"the model folder holds more than {max_bytes} bytes")
    return target


def merge_output(path: Path, produced: Mapping[str, Any]) -> None:
    """Merge a step's report into the run's output file."""
    merged = {**read_output(path), **produced}
    path.write_text(json.dumps(merged, indent=2, sort_keys=True, default=str), encoding="utf-8")


def _resolve(target: str) -> Callable[..., Any]:
    module_name, _, function_name = target.partition(":")
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SystemExit(f"entry point {target!r}: {module_name} has no callable {function_name}")
    return function  # type: ignore[no-any-return]


def score_holdout(request: Mapping[str, Any]) -> int:
    """Read held-out rows with the pipeline's reader and score each model on them (sandboxed).

    ``request`` (JSON the worker wrote) names the ``reader`` (``module:function``), the ``uri``
    it reads, ``max_rows``, the ``target`` and ``sensitive_features`` to keep, the ``models``
    (role → hash-checked folder and feature schema) and the ``output`` Parquet file. Both the
    reader and the model files are project code, so this runs in the sandbox; the worker only
    reads the Parquet file back. Returns the number of rows written.
    """
    from retrain.evaluation import predict
    from retrain.mlflow_registry import load_model_directory

    target = str(request["target"])
    holdout = _resolve(str(request["reader"]))(str(request["uri"]))
    max_rows = int(request["max_rows"])
    if len(holdout) > max_rows:
        holdout = holdout.sample(n=max_rows, random_state=0)
    holdout = holdout.reset_index(drop=True)
    keep = [c for c in [target, *request["sensitive_features"]] if c in holdout.columns]
    scored = holdout[keep].copy()
    if target in holdout.columns:
        for role, model in request["models"].items():
            loaded = load_model_directory(Path(model["path"]))
            y_pred, scores = predict(
                model=loaded,
                feature_schema=dict(model["feature_schema"]),
                holdout=holdout,
                target=target,
            )
            scored[f"{role}.prediction"] = y_pred
            if scores is not None:
                scored[f"{role}.score"] = scores
    scored.to_parquet(str(request["output"]), index=False)
    print(f"scored {len(scored)} held-out rows", flush=True)
    return len(scored)


def main(argv: list[str] | None = None) -> int:
    """Run the entry point named on the command line with the run's context; return 0.

    ``--score REQUEST`` instead scores held-out rows (:func:`score_holdout`).
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--score":
        score_holdout(json.loads(Path(args[1]).read_text(encoding="utf-8")))
        return 0
    if len(args) != 1:
        raise SystemExit("usage: python -m retrain.step module:function | --score REQUEST")
    context = StepContext.from_environment()
    produced = _resolve(args[0])(context)
    if produced:
        merge_output(Path(context.output_path), produced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
