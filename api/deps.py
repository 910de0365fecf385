"""FastAPI dependencies shared by every router: the engine and a per-request session.

The session commits when the handler returns normally and rolls back on any error, so a failed
request leaves the store exactly as it was. It commits before the response is sent (the
dependency's ``scope="function"``; FastAPI's default runs it after): a client holding a 2xx can
read its write back through any replica, and a failed commit is the client's error response.

Each hop between the event loop and a worker thread costs the server more CPU than an audited
write's own SQL (issue #19), so a request takes as few as it can. The session is built on the
loop (a :class:`~sqlmodel.Session` touches no connection until its first statement), and a
synchronous endpoint that takes it commits it in its own thread (:func:`commit_in_endpoint_thread`,
applied by the route class of every Warden router): the gate and the endpoint are the request's
only hops, and SQLite's write lock is released as soon as the endpoint's work is done rather than
when the loop next gets to the dependency's exit. A session still in a transaction at the exit
(an async endpoint, an error) is committed or rolled back in a worker thread there. A ``GET``'s
session is read-only, so on SQLite reads never queue behind writers for the write lock.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from anyio import CancelScope
from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.settings import Settings
from lineage import session_scope

__all__ = [
    "EngineDep",
    "SessionDep",
    "SettingsDep",
    "WritingSessionDep",
    "commit_in_endpoint_thread",
    "get_engine",
    "get_session",
    "get_settings",
    "get_writing_session",
]

_REQUEST_SESSION = "warden_request_session"
_READS = frozenset({"GET", "HEAD"})


async def get_engine(request: Request) -> Engine:
    """Return the engine the app's lifespan created (async: no thread hop for an attribute)."""
    engine: Engine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
    """Return the settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_session(
    request: Request, engine: Annotated[Engine, Depends(get_engine)]
) -> AsyncIterator[Session]:
    """Yield a session committed after the handler succeeds, rolled back otherwise.

    A ``GET`` or ``HEAD`` only reads: its transaction is read-only (on SQLite it never queues
    for the write lock behind writers, and cannot write). A ``GET`` that must write (a sign-in
    callback) takes :data:`WritingSessionDep`.
    """
    async with _request_session(engine, read_only=request.method in _READS) as session:
        yield session


async def get_writing_session(
    engine: Annotated[Engine, Depends(get_engine)],
) -> AsyncIterator[Session]:
    """Yield a request session that may write whatever the method."""
    async with _request_session(engine, read_only=False) as session:
        yield session


@asynccontextmanager
async def _request_session(engine: Engine, *, read_only: bool) -> AsyncIterator[Session]:
    scope = session_scope(engine, read_only=read_only)
    session = scope.__enter__()  # builds the Session on the loop: no I/O before a statement
    session.info[_REQUEST_SESSION] = True
    try:
        yield session
    except BaseException as error:
        with CancelScope(shield=True):
            handled = await run_in_threadpool(
                scope.__exit__, type(error), error, error.__traceback__
            )
        if not handled:
            raise
    else:
        if session.in_transaction():
            with CancelScope(shield=True):
                await run_in_threadpool(scope.__exit__, None, None, None)
        else:  # committed by the endpoint's thread: closing holds no connection, does no I/O
            scope.__exit__(None, None, None)


def commit_in_endpoint_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Return ``endpoint`` run so that the request session it takes commits in its thread.

    A synchronous endpoint becomes a coroutine making one hop that runs the endpoint and then
    commits the request session among its arguments (FastAPI then also checks the response on
    the loop rather than in one more hop). The signature, name and docstring stay the
    endpoint's; coroutines and generators are returned as they are.
    """
    if (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
        or not inspect.isfunction(endpoint)
    ):
        return endpoint

    @functools.wraps(endpoint)
    async def in_one_hop(**arguments: Any) -> Any:
        return await run_in_threadpool(_call_and_commit, endpoint, arguments)

    return in_one_hop


def _call_and_commit(endpoint: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    result = endpoint(**arguments)
    for value in arguments.values():
        if isinstance(value, Session) and value.info.get(_REQUEST_SESSION):
            value.commit()
    return result


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
WritingSessionDep = Annotated[Session, Depends(get_writing_session, scope="function")]
