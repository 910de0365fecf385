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
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url

from api.app import create_app
from api.migrate import upgrade
from api.settings import Settings
from lineage import create_store_engine

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


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


@pytest.fixture
def database_url(template_store: str, tmp_path: Path) -> Iterator[str]:
    """Return the URL of a fresh, migrated store for this test alone."""
    if POSTGRES_URL:
        name = f"warden_t_{uuid.uuid4().hex[:10]}"
        admin = _pg_admin_engine(POSTGRES_URL)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template_store}"')
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    else:
        path = tmp_path / "warden.db"
        shutil.copyfile(template_store, path)
        yield f"sqlite:///{path}"


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
    )


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """Return an HTTP client on an app built for this test's store."""
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
        yield client
