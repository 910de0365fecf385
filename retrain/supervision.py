"""Run one piece of project code in the sandbox and watch it: log, deadline, cancel, exit.

Steps and the evaluation's reader both go through :func:`supervise`: the child starts through
the configured executor with an environment built from nothing (:func:`sandbox_env`), its output
is appended to the run's log, and the run's deadline or a cancel request stops its process group
(SIGTERM, then SIGKILL after the grace period). The log is a file on the worker's disk; while it
grows, its tail is copied to the run's row every :data:`LOG_SHARE_SECONDS`, so an API replica on
another machine shows the live log too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from lineage.errors import Unavailable
from lineage.store import session_scope
from retrain.pipelines import PipelineRun, PipelineRunState
from retrain.runner_config import RunnerConfig
from retrain.sandbox import SandboxSpec, source_root
from retrain.step import CONTEXT_ENV

__all__ = [
    "LOG_SHARE_SECONDS",
    "SandboxGrant",
    "StepOutcome",
    "log_tail",
    "sandbox_env",
    "supervise",
]

LOG_SHARE_SECONDS = 2.0
"""How often a growing log's tail is copied to the run's row while its code runs."""


def sandbox_env(config: RunnerConfig, context_path: Path | None = None) -> dict[str, str]:
    """The whole environment of project code: built from nothing, no WARDEN_* settings."""
    env = {
        "PATH": f"{Path(config.python).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",  # noqa: S108 - the sandbox's own private tmpfs
        "TMPDIR": "/tmp",  # noqa: S108
        "LANG": "C.UTF-8",
        "PYTHONPATH": ":".join([*map(str, config.code_paths), str(source_root())]),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }
    if context_path is not None:
        env[CONTEXT_ENV] = str(context_path)
    return env


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait()


def _cancel_requested(engine: Engine, run_id: uuid.UUID) -> bool:
    with Session(engine) as session:
        flag = session.exec(
            select(PipelineRun.cancel_requested).where(PipelineRun.id == run_id)
        ).first()
    return bool(flag)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """How a piece of project code ended: the run state it implies, why, and its exit code."""

    state: PipelineRunState
    error: str = ""
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class SandboxGrant:
    """What every piece of one run's code may see (see :class:`~retrain.sandbox.SandboxSpec`)."""

    read_only: tuple[Path, ...]
    network: bool
    hidden: tuple[Path, ...]


def supervise(
    *, engine: Engine, run_id: uuid.UUID, label: str, argv: list[str], spec: SandboxSpec,
    log_path: Path, config: RunnerConfig, deadline: float, time_limit: int,
) -> StepOutcome:  # fmt: skip
    """Start one piece of project code in the sandbox and wait for it, the deadline or a cancel."""
    with log_path.open("ab") as log:
        log.write(f"==> {label}: {' '.join(argv)} (sandbox: {config.executor.name})\n".encode())
        log.flush()
        if shutil.which(argv[0], path=spec.env["PATH"]) is None:
            return StepOutcome(
                PipelineRunState.FAILED,
                f"{label} could not start: no program {argv[0]!r} in the sandbox; check its "
                "command",
            )
        try:
            process = config.executor.start(spec, log=log)
        except (OSError, Unavailable) as error:
            detail = error.detail if isinstance(error, Unavailable) else error.strerror or error
            return StepOutcome(PipelineRunState.FAILED, f"{label} could not start: {detail}")
        last_check = last_share = 0.0
        shared_size = -1
        while process.poll() is None:
            now = time.monotonic()
            if now >= deadline:
                _terminate(process, config.kill_grace_seconds)
                return StepOutcome(
                    PipelineRunState.FAILED,
                    f"{label} exceeded the time limit of {time_limit} s and was stopped",
                )
            if now - last_check >= max(config.poll_seconds, 0.5):
                last_check = now
                if _cancel_requested(engine, run_id):
                    _terminate(process, config.kill_grace_seconds)
                    return StepOutcome(PipelineRunState.CANCELLED, f"cancelled during {label}")
            if now - last_share >= LOG_SHARE_SECONDS:
                last_share, size = now, os.fstat(log.fileno()).st_size
                if size != shared_size:
                    shared_size = size
                    _share_tail(engine, run_id, log_path)
            time.sleep(config.poll_seconds)
    if process.returncode != 0:
        return StepOutcome(
            PipelineRunState.FAILED,
            f"{label} exited with status {process.returncode}; see the log",
            process.returncode,
        )
    return StepOutcome(PipelineRunState.SUCCEEDED, exit_code=0)


def _share_tail(engine: Engine, run_id: uuid.UUID, log_path: Path) -> None:
    """Copy the log's tail to the run's row (that column only) for readers on other machines."""
    with session_scope(engine) as session:
        session.execute(
            sa.update(PipelineRun)
            .where(col(PipelineRun.id) == run_id)
            .values(log_tail=log_tail(log_path.parent))
        )


def log_tail(directory: Path) -> str:
    """Return the last 20,000 bytes of a run's log (what the run row shows)."""
    path = directory / "log.txt"
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 20_000))
        return handle.read().decode("utf-8", errors="replace")
