"""The disk spool: one file per batch, written atomically, so nothing is lost while Warden is down.

Layout of a spool directory (use one per Warden server and project)::

    pending/<ns>-<random>.json   a batch waiting to be sent (oldest first by name)
    dead/<ns>-<random>.json      a batch Warden refused for good, with the reason inside

A file is written to ``.tmp``, fsynced, renamed into place and the directory fsynced, so a
killed process leaves either the whole batch or nothing. Several clients may share a directory:
two of them sending the same file is harmless, because Warden counts a re-sent request id once.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from warden_client._records import Batch

__all__ = ["Spool"]


def _fsync_dir(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Spool:
    """Batches on disk: written before they could be lost, removed once Warden stored them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending_dir = directory / "pending"
        self.dead_dir = directory / "dead"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.dead_dir.mkdir(parents=True, exist_ok=True)

    def _write(self, folder: Path, document: dict[str, Any]) -> Path:
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.json"
        path = folder / name
        partial = folder / f".{name}.tmp"
        with partial.open("w", encoding="utf-8") as handle:
            json.dump(document, handle, separators=(",", ":"), allow_nan=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        _fsync_dir(folder)
        return path

    def write(self, batch: Batch) -> Path:
        """Keep ``batch`` on disk until it is sent; return its file."""
        document = {"kind": batch.kind, "deployment": batch.deployment, "records": batch.records}
        return self._write(self.pending_dir, document)

    def pending(self) -> list[Path]:
        """Return the waiting batches' files, oldest first."""
        return sorted(self.pending_dir.glob("*.json"))

    def read(self, path: Path) -> Batch | None:
        """Return the batch in ``path``; ``None`` when another client already sent it.

        An unreadable file (not written by this library) goes to ``dead/`` rather than block
        the spool forever.
        """
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return Batch(document["kind"], document["deployment"], list(document["records"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as error:
            self.bury_file(path, f"unreadable spool file: {error}")
            return None

    def remove(self, path: Path) -> None:
        """Forget a sent batch (another client may have removed it first)."""
        path.unlink(missing_ok=True)

    def bury(self, batch: Batch, reason: str) -> Path:
        """Keep a batch Warden refused for good in ``dead/``, with why."""
        document = {
            "kind": batch.kind,
            "deployment": batch.deployment,
            "reason": reason,
            "records": batch.records,
        }
        return self._write(self.dead_dir, document)

    def bury_file(self, path: Path, reason: str) -> None:
        """Move a spool file to ``dead/`` with a ``.reason`` file beside it."""
        target = self.dead_dir / path.name
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return
        target.with_suffix(".reason").write_text(reason + "\n", encoding="utf-8")

    def dead(self) -> list[Path]:
        """Return the dead-letter batches' files, oldest first."""
        return sorted(self.dead_dir.glob("*.json"))
