"""FastAPI dependencies shared by every router: the engine and a per-request session.

The session commits when the handler returns normally and rolls back on any error, so a failed
request leaves the store exactly as it was. It commits before the response is sent (the
dependency's ``scope="function"``; FastAPI's default runs it after): a client holding a 2xx can
read its write back through any replica, and a failed commit is the client's error response.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.settings import Settings
from lineage import session_scope

__all__ = ["EngineDep", "SessionDep", "SettingsDep", "get_engine", "get_session", "get_settings"]


async def get_engine(request: Request) -> Engine:
    """Return the engine the app's lifespan created (async: no thread hop for an attribute)."""
    engine: Engine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
    """Return the settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """Yield a session committed after the handler succeeds, rolled back otherwise."""
    with session_scope(engine) as session:
        yield session


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
