"""Keep a finished pipeline run's files in the artifact store, and only a finished run's.

A run works in a local folder (:func:`~retrain.runner_config.run_directory`), since the sandbox
binds its inputs read-only and its output folder read-write. When the run ends, what it keeps
goes to the store under ``pipelines/runs/<run id>/`` and the folder is removed: every file of a
run that succeeded (context, staged inputs, step output, the evaluation's scored rows, log), only
the log of one that did not, so a failed step leaves no half-made output behind. The log goes up
last: whoever finds it finds the rest. Files a step wrote are never read through a link (a link
to a key would otherwise be uploaded): links, special files and files a step made unreadable
are skipped.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from lineage.errors import InvalidInput, NotFound
from lineage.storage import ObjectStore, check_key
from retrain.runner_config import run_directory, run_key

__all__ = ["LOG_NAME", "publish_run_files", "run_log"]

LOG_NAME = "log.txt"
"""The run's captured output, in its working folder and under its key."""

_CHUNK = 1 << 20


def _kept_files(directory: Path) -> list[tuple[str, int]]:
    """Return (relative path, size) of every regular file below ``directory``, links skipped."""
    found: list[tuple[str, int]] = []
    for folder, _, names in os.walk(directory, followlinks=False):
        for name in names:
            path = Path(folder) / name
            info = path.lstat()
            relative = path.relative_to(directory).as_posix()
            try:
                check_key(relative)
            except InvalidInput:
                continue  # a name no store key may have (".partial-…"): never Warden's file
            if stat.S_ISREG(info.st_mode) and os.access(path, os.R_OK):
                found.append((relative, info.st_size))
    return sorted(found)


def _chunks(path: Path) -> Iterator[bytes]:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def publish_run_files(
    *, store: ObjectStore, directory: Path, run_id: uuid.UUID, whole: bool, max_bytes: int
) -> list[str]:
    """Upload a finished run's files (all, or its log only) and remove its folder; return the keys.

    More than ``max_bytes`` in all keeps the log only, with a line saying why. If the store
    fails, the folder stays (a later attempt of the job publishes it) and the error propagates.
    """
    if not directory.is_dir():
        return []
    files = _kept_files(directory)
    if whole and sum(size for _, size in files) > max_bytes:
        with (directory / LOG_NAME).open("a", encoding="utf-8") as log:
            log.write(f"==> the run's files exceed {max_bytes} bytes; only this log is kept\n")
        whole = False
    kept = [name for name, _ in files if whole and name != LOG_NAME]
    if (directory / LOG_NAME).is_file() and not (directory / LOG_NAME).is_symlink():
        kept.append(LOG_NAME)
    keys = []
    for name in kept:
        key = run_key(run_id, name)
        store.put_stream(key, _chunks(directory / name))
        keys.append(key)
    shutil.rmtree(directory, ignore_errors=True)  # a folder a step locked stays on the worker
    return keys


def run_log(*, store: ObjectStore, data_dir: Path, run_id: uuid.UUID, limit: int) -> str | None:
    """Return the last ``limit`` bytes of a run's log, or ``None`` when none is to be had.

    A finished run's log is in the store; a running one's is in its working folder, readable
    here when this process shares the worker's data directory (``warden up``).
    """
    try:
        raw = store.get(run_key(run_id, LOG_NAME))
    except NotFound:
        path = run_directory(data_dir, run_id) / LOG_NAME
        try:
            with path.open("rb") as handle:
                handle.seek(max(0, path.stat().st_size - limit))
                raw = handle.read()
        except FileNotFoundError:
            return None
    return raw[-limit:].decode("utf-8", errors="replace")
