"""Liveness and readiness probes: the only routes that need no credentials.

``/healthz`` says the process answers; ``/readyz`` says it can do work: the database answers,
its schema is migrated to every head, and the artifact store (the data directory or the bucket of
``WARDEN_ARTIFACT_URL``) can be read and written. ``/readyz`` also reports whether any worker
beat recently (``workers``), without failing on it: an API replica is ready even while workers
restart, but whoever watches it sees that queued work would wait. Neither reveals anything but
that.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SettingsDep
from api.migrate import pending_heads
from api.problems import problem_response
from lineage.errors import Unavailable
from lineage.runtime import worker_alive
from lineage.store import session_scope

__all__ = ["PUBLIC_PATHS", "router"]

router = APIRouter(route_class=DeferredAPIRoute, tags=["health"])

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer as long as the process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(engine: EngineDep, settings: SettingsDep) -> dict[str, Any] | JSONResponse:
    """Answer 200 when the database is reachable and migrated and the artifacts usable, else 503."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        missing = pending_heads(engine)
    except sa.exc.SQLAlchemyError:
        return problem_response(
            status=503,
            title="Service unavailable",
            detail="the database cannot be reached; check WARDEN_DATABASE_URL",
        )
    if missing:
        return problem_response(
            status=503,
            title="Service unavailable",
            detail="the database schema is behind; run `warden migrate`",
        )
    store = settings.artifact_store()
    try:
        store.check()
    except Unavailable as error:
        return problem_response(status=503, title="Service unavailable", detail=error.detail)
    with session_scope(engine) as session:
        alive, last_beat = worker_alive(session=session)
    return {
        "status": "ready",
        "database": "ok",
        "migrations": "at head",
        "artifacts": "ok",
        "workers": {
            "alive": alive,
            "last_heartbeat": None if last_beat is None else last_beat.isoformat(),
        },
    }
