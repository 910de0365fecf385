"""A request's transaction commits before its response leaves the server.

Otherwise a client holding a 201 could read the store (through another replica, or the same one)
and miss what it just wrote, and a commit that fails after the response would leave the client
believing in a write that never happened. The check runs at the moment the last byte of the
response is handed to the server, from a connection of its own.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from api.app import create_app
from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep, WritingSessionDep
from api.problems import install_problem_handlers
from api.settings import Settings
from lineage.errors import InvalidInput
from lineage.projects import Project, create_project
from lineage.store import session_scope
from monitors.models import Monitor
from tests.conftest import Issued

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
monitors: sa.Table = Monitor.__table__  # type: ignore[attr-defined]


def test_a_write_is_committed_before_its_response_is_sent(
    settings: Settings,
    engine: Engine,
    database_url: str,
    make_principal: Callable[..., Issued],
) -> None:
    app = create_app(settings, engine=engine)
    stored_when_sent: list[list[str]] = []

    # A plain engine: a read of its own, not the store's write-locking SQLite transactions.
    reader = sa.create_engine(database_url)

    def stored_names() -> list[str]:
        with reader.connect() as connection:
            return list(connection.execute(sa.select(monitors.c.name)).scalars())

    async def watched(scope: Message, receive: Any, send: Send) -> None:
        async def spy(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                stored_when_sent.append(stored_names())
            await send(message)

        await app(scope, receive, spy)

    admin = make_principal(admin=True, name="ops")
    make_principal(role="data_scientist", project="credit")
    with TestClient(watched) as client:
        created = client.post(
            "/api/v1/projects/credit/monitors",
            json={"name": "drift", "spec": {"kind": "drift"}},
            headers=admin.headers,
        )
    assert created.status_code == 201, created.text
    reader.dispose()
    assert stored_when_sent == [["drift"]]


def test_a_sync_endpoint_commits_its_session_before_returning_to_the_loop(engine: Engine) -> None:
    """A sync endpoint's request session is committed in the endpoint's own thread hop.

    An async endpoint's is committed at the dependency's exit; an error stores nothing.
    """
    router = APIRouter(route_class=DeferredAPIRoute)
    open_after_endpoint: list[bool] = []

    async def watch(session: SessionDep) -> AsyncIterator[None]:
        yield  # exits after the endpoint, before the session's own exit
        open_after_endpoint.append(session.in_transaction())

    watched = [Depends(watch, scope="function")]

    @router.post("/write/{name}", dependencies=watched)
    def write(name: str, session: SessionDep) -> dict[str, str]:
        create_project(session=session, name=name)
        if name.startswith("fail"):
            raise InvalidInput("asked to fail after writing", field="name")
        return {"name": name}

    @router.get("/written/{name}", dependencies=watched)
    async def written(name: str, session: SessionDep) -> dict[str, bool]:
        return {"found": await run_in_threadpool(_stored, session, name)}

    app = FastAPI()
    app.state.engine = engine
    install_problem_handlers(app)
    app.include_router(router)
    with TestClient(app) as client:
        assert client.post("/write/kept").status_code == 200
        assert open_after_endpoint == [False]
        assert client.post("/write/fail-dropped").status_code == 422
        assert client.get("/written/kept").json() == {"found": True}
        assert client.get("/written/fail-dropped").json() == {"found": False}
    assert open_after_endpoint == [False, True, True]


def _stored(session: Session, name: str) -> bool:
    return session.exec(select(Project).where(Project.name == name)).first() is not None


def test_a_get_reads_while_a_writer_holds_the_lock_and_cannot_write(engine: Engine) -> None:
    """A ``GET``'s session is read-only: it never queues behind a writer, and never writes.

    A ``GET`` that must write (a report read is audited) says so with ``WritingSessionDep``.
    """
    router = APIRouter(route_class=DeferredAPIRoute)

    @router.get("/written/{name}")
    def written(name: str, session: SessionDep) -> dict[str, bool]:
        return {"found": _stored(session, name)}

    @router.get("/sneak/{name}")
    def sneak(name: str, session: SessionDep) -> dict[str, str]:
        create_project(session=session, name=name)
        return {"name": name}

    @router.get("/audited/{name}")
    def audited(name: str, session: WritingSessionDep) -> dict[str, str]:
        create_project(session=session, name=name)
        return {"name": name}

    app = FastAPI()
    app.state.engine = engine
    install_problem_handlers(app)
    app.include_router(router)
    with session_scope(engine) as session:
        create_project(session=session, name="kept")
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with session_scope(engine) as session:
            create_project(session=session, name="held")
            session.flush()  # the write lock (SQLite) is taken and held until the commit
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=writer)
    thread.start()
    answers: list[Any] = []
    try:
        assert holding.wait(30)
        reader = threading.Thread(
            target=lambda: answers.extend(
                TestClient(app).get(f"/written/{name}").json() for name in ("kept", "held")
            )
        )
        reader.start()
        reader.join(30)  # a GET queued behind the writer would still be waiting here
        assert answers == [{"found": True}, {"found": False}]
    finally:
        release.set()
        thread.join()
    with TestClient(app) as client:
        with pytest.raises(sa.exc.DBAPIError):
            client.get("/sneak/stolen")
        assert client.get("/audited/read-report").json() == {"name": "read-report"}
        assert client.get("/written/stolen").json() == {"found": False}
        assert client.get("/written/held").json() == {"found": True}
