"""``warden --help`` and client-mode commands import typer (and urllib), never the server's stack;
the server imports its statistics and ML libraries when a job needs them, not to start.

Timing is measured by ``bench/cli_startup.py``, not here; this test pins the cause of a slow
start: which modules a fresh interpreter holds after the command ran.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# pydantic itself is not in the list: typer (0.29) coerces a sub-command's parameters with
# pydantic TypeAdapters, so every sub-command loads it; Warden's settings and models stay out.
HEAVY = (
    "api.app",
    "evidently",
    "fairlearn",
    "fastapi",
    "governance",
    "httpx",
    "lineage",
    "mlflow",
    "monitors",
    "numpy",
    "pandas",
    "pyarrow",
    "pydantic_settings",
    "reports",
    "retrain",
    "scipy",
    "shap",
    "sklearn",
    "sqlalchemy",
    "sqlmodel",
    "starlette",
    "uvicorn",
)
_PROBE = """
import json, sys
from api.cli import main
sys.argv = ["warden", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} | set(sys.modules))))
"""


def _modules_after(args: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "WARDEN_API_KEY": "wdn_x_y", "HOME": str(REPO / "no-home")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["monitors", "--help"],
        ["approvals", "approve", "--help"],
        ["admin", "--help"],
    ],
)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    loaded = _modules_after(args)
    assert "typer" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "urllib.request" not in loaded  # imported on the first request only


def test_a_client_command_imports_urllib_and_nothing_of_the_server() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    loaded = _modules_after(["--url", url, "approvals", "list", "-p", "acme", "--json"])
    assert "urllib.request" in loaded  # it did try to ask Warden
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


# What ``warden up`` must not pay for before answering: loaded by the jobs and pages that use them.
STATISTICS = ("evidently", "fairlearn", "mlflow", "pandas", "scipy", "shap", "sklearn")


def test_the_server_starts_without_statistics_or_ml_libraries() -> None:
    """The app, the worker process and the scheduler: everything ``warden up`` imports to start."""
    probe = (
        "import json, sys, api.app, api.worker_process, api.scheduler\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "HOME": str(REPO / "no-home")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    loaded = {name.split(".")[0] for name in modules}
    assert {"api.app", "api.worker_process", "api.scheduler"} <= modules
    assert not loaded & set(STATISTICS), sorted(loaded & set(STATISTICS))
    assert "google.protobuf" not in modules  # OTLP's protobuf: loaded by the first such body
