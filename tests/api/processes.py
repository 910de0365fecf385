"""Real ``warden`` processes for the process tests: start, wait on, kill, stop, show their logs.

Shared by ``test_scheduler_processes.py`` (SQLite) and ``test_cluster.py`` (PostgreSQL). The job
handler the workers run instead of monitor computation is ``tests.api.marker_handlers``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = ["REPO", "WARDEN", "Processes", "free_port", "marks", "wait_for"]

REPO = Path(__file__).resolve().parents[2]
WARDEN = Path(sys.executable).with_name("warden")


class Processes:
    """Start ``warden`` sub-commands with test settings; kill or stop them; show their logs."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        """Run every process in ``tmp_path`` with ``env`` over this process's environment."""
        self.tmp_path = tmp_path
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DO_NOT_TRACK": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "WARDEN_TEST_MARKER_DIR": str(tmp_path),
            **env,
        }

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``warden *args`` (extra ``env`` on top), logging to a file of its own."""
        log = self.tmp_path / f"{args[0]}-{len(self.started)}.log"
        process = subprocess.Popen(
            [str(WARDEN), *args],
            cwd=self.tmp_path,
            env={**self.env, **(env or {})},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.started.append((process, log))
        return process

    def logs(self) -> str:
        """Return every process's output, each under its log file's name."""
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')}" for _, log in self.started
        )

    def stop_all(self) -> None:
        """SIGTERM what still runs, wait for it, SIGKILL what does not stop."""
        for process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# Waits end as soon as their condition holds: generous bounds cost nothing on a quiet machine
# and keep a busy shared CI runner (process start-up imports mlflow and evidently) from flaking.
def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, logs: Processes) -> None:
    """Poll ``condition`` until it holds; fail with every process's log after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs.logs()}")


def marks(tmp_path: Path) -> list[tuple[str, str, int, int]]:
    """Return the marker handler's ``(event, run id, pid, attempt)`` lines, in order."""
    path = tmp_path / "markers"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        event, run_id, pid, attempt = line.split()
        rows.append((event, run_id, int(pid), int(attempt)))
    return rows


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
