"""A request's transaction commits before its response leaves the server.

Otherwise a client holding a 201 could read the store (through another replica, or the same one)
and miss what it just wrote, and a commit that fails after the response would leave the client
believing in a write that never happened. The check runs at the moment the last byte of the
response is handed to the server, from a connection of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
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
