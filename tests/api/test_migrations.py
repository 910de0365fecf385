from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import governance  # noqa: F401  (registers tables)
import lineage
import monitors  # noqa: F401
import reports  # noqa: F401
import retrain  # noqa: F401
from api.migrate import downgrade, upgrade


def _tables(url: str) -> set[str]:
    engine = lineage.create_store_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trips(database_url: str) -> None:
    migrated = _tables(database_url)
    assert "lineage_project" in migrated
    downgrade(database_url, "base")
    assert _tables(database_url) == set()
    upgrade(database_url)
    assert _tables(database_url) == migrated


def test_migrations_match_the_models(database_url: str) -> None:
    engine = lineage.create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree; write a revision for: {diff}"
