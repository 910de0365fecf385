"""Key files every process of an installation shares: created once, atomically, mode 0600.

API replicas, schedulers and workers that share a data directory may all start at once on a
fresh one. Each writes its candidate key to a hidden file of its own and hard-links it into place;
the link fails when another process won, so every process then reads the same key, and none ever
reads a half-written one (``O_EXCL`` on the final name makes the name visible before its bytes).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["create_key_file"]


def create_key_file(path: Path, content: bytes) -> bool:
    """Put ``content`` at ``path`` (mode 0600) unless a file is there; return whether it was put.

    Whoever loses the race reads the winner's file afterwards, which is complete by then.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        return False
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            return False
        return True
    finally:
        draft.unlink(missing_ok=True)
