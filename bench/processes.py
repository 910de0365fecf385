"""The processes a benchmark starts: a free port, a child with its log, readiness, CPU used.

One home for what the benchmarks that time a real ``warden serve`` (or MLflow's server) beside
their anchor all need, so each script keeps only what it measures.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

__all__ = ["cpu_seconds", "free_port", "running", "tree_cpu_seconds", "wait_ready"]


def free_port() -> int:
    """Return a port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[int]:
    """Run ``command`` with its output in ``log``; yield its pid; stop it (kill after 20 s)."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(url: str, log: Path, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers below 500; raise with the log's tail after ``timeout``."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as poll:  # one client: building one costs ~20 ms of CPU
        while time.monotonic() < deadline:
            try:
                if poll.get(url).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def cpu_seconds(pid: int) -> float | None:
    """Return the user + system CPU seconds a live process has used so far (None without /proc)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of ``/proc/<pid>/stat`` after the command name (None if it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """Return the CPU seconds of a live process and of each live descendant, by pid.

    For a server that runs several processes (``warden serve --workers N``: uvicorn's parent
    and its N children); a child that ended is no longer counted.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    used = {member: cpu_seconds(member) for member in tree}
    return {member: seconds for member, seconds in used.items() if seconds is not None}
