"""The gate's API-key cache, attacked: every change to who may do what is seen by the next request.

Each scenario warms the cache of replica A (two requests, the second answered from the cache),
changes the store either through the API of replica B (another app, engine and cache on the same
store) or with SQL on another engine, then sends the very next request to A.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.app import create_app
from api.gate_cache import GateCache
from api.security import CurrentProject, Gate, require
from api.settings import Settings
from governance.actors import Actor
from governance.audit import AuditEntry
from governance.identity import ApiKey, issue_api_key
from governance.identity_generation import LoopGenerationReader, read_generation
from governance.permissions import Permission
from governance.roles import Role, RoleGrant
from lineage.store import create_store_engine, session_scope
from lineage.tables import utcnow
from tests.conftest import Issued, bearer

PROBE = "/api/v1/projects/acme/probe"


def _app(settings: Settings, engine: Engine) -> FastAPI:
    """An app with one project route gated on ``monitor:write``."""
    app = create_app(settings, engine=engine)
    router = APIRouter()

    @router.post("/api/v1/projects/{project}/probe")
    def probe(
        actor: Annotated[Actor, Depends(require(Permission.MONITOR_WRITE))],
        project: CurrentProject,
    ) -> dict[str, str]:
        return {"name": actor.name, "project": project.name, "project_id": str(project.id)}

    app.include_router(router)
    return app


@pytest.fixture(params=["on the loop", "on a worker thread"])
def replica_a(request: pytest.FixtureRequest, settings: Settings, engine: Engine) -> TestClient:
    """Replica A, whose cached answers are read on the event loop (SQLite files) or not at all.

    On the loop, a cached answer that admits the caller is used without a worker thread; the
    second parameter takes the reader away, so every request goes through the worker thread,
    as on PostgreSQL.
    """
    app = _app(settings, engine)
    if request.param == "on a worker thread":
        app.state.loop_generation = None
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def other_engine(database_url: str) -> Iterator[Engine]:
    """A second engine on the same store: another replica's connections."""
    other = create_store_engine(database_url)
    yield other
    other.dispose()


@pytest.fixture
def replica_b(settings: Settings, other_engine: Engine) -> TestClient:
    return TestClient(_app(settings, other_engine), raise_server_exceptions=False)


def _cache(client: TestClient) -> GateCache:
    cache = client.app.state.gate_cache  # type: ignore[attr-defined]
    assert isinstance(cache, GateCache)
    return cache


def _warm(client: TestClient, issued: Issued) -> None:
    """Two accepted requests; the second is answered from the cache."""
    for _ in range(2):
        response = client.post(PROBE, headers=issued.headers)
        assert response.status_code == 200, response.text
    assert len(_cache(client)) == 1


def _sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(statement), params)


def _key_id(engine: Engine, issued: Issued) -> str:
    with session_scope(engine) as session:
        key = session.exec(select(ApiKey).where(ApiKey.principal_id == issued.principal.id)).one()
        return str(key.id)


def _last_action(engine: Engine) -> str:
    with session_scope(engine) as session:
        entry = session.exec(select(AuditEntry).order_by(sa.desc(col(AuditEntry.seq)))).first()
        assert entry is not None
        return entry.action


@pytest.mark.parametrize("via", ["api", "sql"])
def test_a_revoked_key_is_refused_on_the_next_request(
    via: str,
    replica_a: TestClient,
    replica_b: TestClient,
    other_engine: Engine,
    engine: Engine,
    make_principal: Callable[..., Issued],
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    _warm(replica_a, scientist)
    key_id = _key_id(engine, scientist)
    if via == "api":
        path = f"/api/v1/principals/{scientist.principal.id}/keys/{key_id}"
        assert replica_b.delete(path, headers=scientist.headers).status_code == 200
    else:
        _sql(other_engine, "UPDATE governance_api_key SET revoked_at = created_at")
    assert replica_a.post(PROBE, headers=scientist.headers).status_code == 401
    assert _last_action(engine) == "auth.failed"


@pytest.mark.parametrize("via", ["api", "sql"])
def test_a_disabled_principals_key_is_refused_on_the_next_request(
    via: str,
    replica_a: TestClient,
    replica_b: TestClient,
    other_engine: Engine,
    make_principal: Callable[..., Issued],
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    admin = make_principal(admin=True)
    _warm(replica_a, scientist)
    if via == "api":
        path = f"/api/v1/principals/{scientist.principal.id}/disable"
        assert replica_b.post(path, headers=admin.headers).status_code == 200
    else:
        _sql(
            other_engine,
            "UPDATE governance_principal SET disabled_at = created_at WHERE name = :name",
            name=scientist.principal.name,
        )
    assert replica_a.post(PROBE, headers=scientist.headers).status_code == 401


@pytest.mark.parametrize("via", ["api", "sql"])
def test_a_removed_role_is_refused_on_the_next_request(
    via: str,
    replica_a: TestClient,
    replica_b: TestClient,
    other_engine: Engine,
    engine: Engine,
    make_principal: Callable[..., Issued],
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    admin = make_principal(admin=True)
    _warm(replica_a, scientist)
    with session_scope(engine) as session:
        grant = session.exec(
            select(RoleGrant).where(RoleGrant.principal_id == scientist.principal.id)
        ).one()
    if via == "api":
        path = f"/api/v1/projects/acme/grants/{grant.id}"
        assert replica_b.delete(path, headers=admin.headers).status_code == 204
    else:
        _sql(other_engine, "DELETE FROM governance_role_grant")
    assert replica_a.post(PROBE, headers=scientist.headers).status_code == 404


@pytest.mark.parametrize("via", ["api", "sql"])
def test_a_lowered_role_is_refused_on_the_next_request(
    via: str,
    replica_a: TestClient,
    replica_b: TestClient,
    other_engine: Engine,
    engine: Engine,
    make_principal: Callable[..., Issued],
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    admin = make_principal(admin=True)
    _warm(replica_a, scientist)
    if via == "api":
        body = {"principal_id": str(scientist.principal.id), "role": "viewer"}
        granted = replica_b.post("/api/v1/projects/acme/grants", json=body, headers=admin.headers)
        assert granted.status_code == 201, granted.text
        with session_scope(engine) as session:
            grant = session.exec(
                select(RoleGrant).where(RoleGrant.role == Role.DATA_SCIENTIST.value)
            ).one()
        path = f"/api/v1/projects/acme/grants/{grant.id}"
        assert replica_b.delete(path, headers=admin.headers).status_code == 204
    else:
        _sql(other_engine, "UPDATE governance_role_grant SET role = 'viewer'")
    refused = replica_a.post(PROBE, headers=scientist.headers)
    assert refused.status_code == 403
    assert "monitor:write" in refused.json()["detail"]
    assert _last_action(engine) == "access.denied"


def test_a_renamed_project_is_not_found_under_its_old_name_on_the_next_request(
    replica_a: TestClient, other_engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    _warm(replica_a, scientist)
    _sql(other_engine, "UPDATE lineage_project SET name = 'renamed' WHERE name = 'acme'")
    assert replica_a.post(PROBE, headers=scientist.headers).status_code == 404
    moved = replica_a.post("/api/v1/projects/renamed/probe", headers=scientist.headers)
    assert moved.json()["project"] == "renamed"


def test_a_deleted_project_is_not_found_on_the_next_request(
    replica_a: TestClient,
    other_engine: Engine,
    make_principal: Callable[..., Issued],
    make_project: Callable[[str], object],
) -> None:
    make_project("acme")  # no grant, no audit entry refers to it: it can be deleted
    admin = make_principal(admin=True)
    _warm(replica_a, admin)
    _sql(other_engine, "DELETE FROM lineage_project WHERE name = 'acme'")
    assert replica_a.post(PROBE, headers=admin.headers).status_code == 404


def test_an_expired_key_is_refused_though_nothing_else_changed(
    replica_a: TestClient,
    engine: Engine,
    make_principal: Callable[..., Issued],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    with session_scope(engine) as session:
        expiring = issue_api_key(
            session=session,
            actor=Actor.system(),
            principal_id=scientist.principal.id,
            expires_at=utcnow() + timedelta(hours=1),
        )
    issued = Issued(scientist.principal, expiring.secret)
    _warm(replica_a, issued)
    generation = read_generation(engine)
    later = utcnow() + timedelta(hours=2)  # the clock passes the expiry; no row changes
    monkeypatch.setattr("api.security.utcnow", lambda: later)
    monkeypatch.setattr("governance.identity.utcnow", lambda: later)
    assert replica_a.post(PROBE, headers=issued.headers).status_code == 401
    assert read_generation(engine) == generation


def test_a_wrong_secret_with_a_cached_prefix_is_refused_and_never_cached(
    replica_a: TestClient, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    _warm(replica_a, scientist)
    forged = scientist.key[:-4] + ("AAAA" if not scientist.key.endswith("AAAA") else "BBBB")
    for _ in range(2):
        assert replica_a.post(PROBE, headers=bearer(forged)).status_code == 401
        assert _last_action(engine) == "auth.failed"
    assert len(_cache(replica_a)) == 1  # only the real key's answer
    assert replica_a.post(PROBE, headers=scientist.headers).status_code == 200


def test_the_cache_holds_no_key_nor_the_stored_digest(
    replica_a: TestClient, make_principal: Callable[..., Issued]
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    _warm(replica_a, scientist)
    cache = _cache(replica_a)
    stored = hashlib.sha256(scientist.key.encode()).hexdigest()
    kept = repr(vars(cache))
    for digest in cache.digests():
        assert scientist.key.encode() not in digest
        assert digest.hex() != stored
    assert scientist.key not in kept
    assert stored not in kept
    assert scientist.key.split("_", 2)[2] not in kept  # nor the secret part


def test_a_new_grant_is_honoured_on_the_next_request(
    replica_a: TestClient,
    other_engine: Engine,
    engine: Engine,
    make_principal: Callable[..., Issued],
    make_project: Callable[[str], object],
) -> None:
    viewer = make_principal(role=Role.VIEWER)
    for _ in range(2):
        assert replica_a.post(PROBE, headers=viewer.headers).status_code == 403
        assert _last_action(engine) == "access.denied"  # audited, from the cache too
    assert len(_cache(replica_a)) == 1
    _sql(other_engine, "UPDATE governance_role_grant SET role = 'data_scientist'")
    assert replica_a.post(PROBE, headers=viewer.headers).status_code == 200


def test_a_cached_admission_needs_no_worker_thread_and_a_change_goes_back_to_one(
    settings: Settings,
    engine: Engine,
    other_engine: Engine,
    make_principal: Callable[..., Issued],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if LoopGenerationReader.for_engine(engine) is None:
        pytest.skip("the loop's reader is for SQLite files; other stores always take the thread")
    client = TestClient(_app(settings, engine), raise_server_exceptions=False)
    on_threads: list[str] = []
    through_thread = Gate._gate

    def counted(gate: Gate, *args: Any) -> Actor:
        on_threads.append(threading.current_thread().name)
        return through_thread(gate, *args)

    monkeypatch.setattr(Gate, "_gate", counted)
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    _warm(client, scientist)
    assert len(on_threads) == 1  # the first request read the store; the second, the cache
    assert client.post(PROBE, headers=scientist.headers).status_code == 200
    assert len(on_threads) == 1
    _sql(other_engine, "UPDATE governance_role_grant SET role = 'viewer'")
    assert client.post(PROBE, headers=scientist.headers).status_code == 403
    assert _last_action(engine) == "access.denied"
    assert len(on_threads) == 2  # the generation moved: read again, on a worker thread
    assert client.post(PROBE, headers=scientist.headers).status_code == 403  # cached denial:
    assert len(on_threads) == 3  # decided and audited on a worker thread, never on the loop
    assert _last_action(engine) == "access.denied"


def test_the_loops_reader_never_waits_and_answers_none_when_it_cannot_read(
    engine: Engine, tmp_path: Path
) -> None:
    reader = LoopGenerationReader.for_engine(engine)
    if reader is None:
        pytest.skip("the loop's reader is for SQLite files")
    assert reader.read() == read_generation(engine)
    with reader._in_use:  # another thread is reading: no waiting, no answer
        assert reader.read() is None
    empty = LoopGenerationReader(str(tmp_path / "empty.db"))  # a store without the table
    assert empty.read() is None
    reader.close()
    assert reader.read() == read_generation(engine)  # opens again after a close
    memory = create_store_engine("sqlite://")
    assert LoopGenerationReader.for_engine(memory) is None
    memory.dispose()
