"""Shared fixtures: a real, migrated store per test, an app built on it, and an HTTP client.

SQLite by default: the schema is migrated once per session into a template file and copied for
each test (a fresh store costs a file copy). With ``TEST_DATABASE_URL`` pointing at a PostgreSQL
server, each test gets its own database cloned from a migrated template database instead.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from api.app import create_app
from api.migrate import upgrade
from api.settings import Settings
from governance.actors import Actor
from governance.identity import Principal, create_person, create_service_account, issue_api_key
from governance.roles import Role, grant_role
from lineage import create_store_engine
from lineage.projects import Project, create_project
from lineage.store import session_scope

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


#: A package whose tests share a package-scoped fixture (the seeded live server, the browser).
SHARED_PACKAGE = "tests/browser"


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Hand out whole test files, and ``tests/browser`` whole, to pytest-xdist's workers.

    ``make test`` runs ``pytest -n auto`` with ``--dist=loadfile`` (pyproject): a file's tests run
    on one worker, so a module fixture (the demo run, a moto server) is set up once, not once
    per worker; the browser tests share one seeded live server, so their package goes as one.
    Session fixtures (the template store) are set up once per worker.
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileOrPackage(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SHARED_PACKAGE if path.startswith(f"{SHARED_PACKAGE}/") else path

    return FileOrPackage(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``store`` the tests that open the test store (:func:`template_store`).

    Directly or through ``engine``, ``client``, a live server…: ``TEST_DATABASE_URL`` changes
    what they run against. CI's PostgreSQL pass runs ``-m store``; every other test runs the
    same code on either store.
    """
    for item in items:
        if "template_store" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.store)


def _pg_admin_engine(url: str) -> Engine:
    admin = make_url(url).set(database="postgres")
    return sa.create_engine(admin, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate a template store once per session; yield its URL or file path."""
    if POSTGRES_URL:
        name = f"warden_tpl_{uuid.uuid4().hex[:8]}"
        admin = _pg_admin_engine(POSTGRES_URL)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield name
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "warden.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        with closing(sqlite3.connect(path)) as connection:  # fold the WAL into the file
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        yield str(path)


@contextmanager
def fresh_store(template_store: str, folder: Path) -> Iterator[str]:
    """Yield the URL of a fresh store cloned from the template; drop it afterwards (PostgreSQL).

    SQLite: a copy of the template file in ``folder``. PostgreSQL: a database created from the
    template database under a unique name (parallel workers never meet).
    """
    if POSTGRES_URL:
        name = f"warden_t_{uuid.uuid4().hex[:10]}"
        admin = _pg_admin_engine(POSTGRES_URL)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template_store}"')
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    else:
        path = folder / "warden.db"
        shutil.copyfile(template_store, path)
        yield f"sqlite:///{path}"


@pytest.fixture
def database_url(template_store: str, tmp_path: Path) -> Iterator[str]:
    """Return the URL of a fresh, migrated store for this test alone."""
    with fresh_store(template_store, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Return an engine on this test's fresh store."""
    engine = create_store_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Return settings whose store and data directory belong to this test."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        # Pipeline steps run sandboxed (bubblewrap) and may read the shipped Adult data only.
        sandbox_read_roots=[Path(__file__).resolve().parents[1] / "data" / "adult"],
    )


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """Return an HTTP client on an app built for this test's store."""
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
        yield client


class Issued(NamedTuple):
    """A principal made by :func:`make_principal` and its raw API key (unpacks as a pair)."""

    principal: Principal
    key: str

    @property
    def headers(self) -> dict[str, str]:
        """Return the ``Authorization`` header that authenticates as this principal."""
        return bearer(self.key)


def bearer(key: str) -> dict[str, str]:
    """Return ``{"Authorization": "Bearer <key>"}`` for an httpx/TestClient request."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def make_project(engine: Engine) -> Callable[[str], Project]:
    """Return a factory creating (or fetching) the project called ``name`` in this test's store.

    Usage: ``project = make_project("acme")``.
    """

    def make(name: str = "acme") -> Project:
        with session_scope(engine) as session:
            found = session.exec(select(Project).where(Project.name == name)).first()
            return found or create_project(session=session, name=name)

    return make


@pytest.fixture
def make_principal(engine: Engine, make_project: Callable[[str], Project]) -> Callable[..., Issued]:
    """Return a factory for principals with roles, each with a fresh API key.

    ``make_principal(role=Role.VIEWER, project="acme")`` makes a person holding ``viewer`` in
    project ``acme`` (created when missing) and returns ``Issued(principal, key)``; use
    ``issued.headers`` (or ``bearer(key)``) on requests. Keywords: ``role`` (a role or a list of
    roles; ``None`` for no grant), ``project`` (name), ``admin=True`` for a global administrator,
    ``service=True`` for a service account, ``name`` (default: unique per call). Grants are made
    by the system actor, so fixtures never trip the self-grant rule.
    """
    counter = iter(range(1, 10_000))

    def make(
        *,
        role: Role | str | list[Role] | None = None,
        project: str = "acme",
        admin: bool = False,
        service: bool = False,
        name: str | None = None,
    ) -> Issued:
        name = name or f"{'svc' if service else 'user'}-{next(counter)}"
        roles = [] if role is None else role if isinstance(role, list) else [role]
        project_id = make_project(project).id if roles else None
        system = Actor.system()
        with session_scope(engine) as session:
            if service:
                principal = create_service_account(session=session, actor=system, name=name)
            else:
                principal = create_person(session=session, actor=system, name=name, is_admin=admin)
            for each in roles:
                assert project_id is not None
                grant_role(
                    session=session,
                    actor=system,
                    project_id=project_id,
                    principal_id=principal.id,
                    role=each,
                )
            issued = issue_api_key(
                session=session, actor=system, principal_id=principal.id, label="test"
            )
        return Issued(principal, issued.secret)

    return make
