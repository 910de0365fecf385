"""warden-client stays small: httpx its only dependency, nothing of Warden's server imported."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import warden_client

CLIENT = Path(__file__).resolve().parents[2] / "client"
SERVER_SIDE = {
    "api", "lineage", "monitors", "governance", "retrain", "reports", "fastapi", "starlette",
    "pydantic", "sqlalchemy", "numpy", "pandas", "sklearn",
}  # fmt: skip


def test_importing_the_client_loads_none_of_warden_server_or_its_dependencies() -> None:
    code = "import sys, json, warden_client; print(json.dumps(sorted(sys.modules)))"
    found = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(CLIENT)},
        cwd=CLIENT,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = {name.split(".")[0] for name in json.loads(found.stdout)}
    assert "httpx" in loaded
    assert not loaded & SERVER_SIDE


def test_the_distribution_depends_on_httpx_only_and_ships_its_types() -> None:
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "warden-client"
    assert project["dependencies"] == ["httpx>=0.27"]
    assert project["requires-python"] == ">=3.11"
    assert (CLIENT / "warden_client" / "py.typed").exists()
    assert warden_client.__all__ == sorted(warden_client.__all__)
