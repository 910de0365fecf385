"""One API process of ``warden serve``: its app, built with the garbage collector paused.

``warden serve --workers N`` hands uvicorn the import string of :func:`application`, since
uvicorn starts its N processes (spawned, each with its own engine and pool) from a string only;
each builds its app from the environment's settings, as the parent read them. What start-up
does is safe when they all start at once on a fresh data directory: key files are created
atomically (:mod:`lineage.key_files`), the audit anchor is appended to with ``O_APPEND``, and
nobody migrates (``warden migrate`` does, once, before).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["application", "collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a server imports and builds its app.

    Start-up creates some 200,000 objects that live as long as the process (classes, pydantic
    schemas, routes), and the collector rescans them again and again while they are made: about
    a sixth of ``warden up``'s CPU until ready (interleaved starts; the README's benchmarks).
    Freezing them afterwards also keeps them out of every later full collection. The few
    cycles start-up leaves as garbage are frozen with them, a bounded one-off cost.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def application() -> FastAPI:
    """Build this process's app from the environment's settings (uvicorn's app factory)."""
    with collector_paused():
        from api.app import create_app
        from api.cpu_slots import claim_a_core
        from api.memory import keep_freed_memory
        from api.settings import Settings

        settings = Settings()
        keep_freed_memory()
        if settings.api_pin_cores:
            claim_a_core()  # before the loop starts its threads: they run on the same core
        return create_app(settings)
