"""The identity generation moves with every change to the tables the gate's answers are read from.

Written with SQL, not through services: the triggers, not the code paths, are what the gate's
cache relies on. A migration that rebuilds one of these tables and loses its triggers fails here.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from governance.actors import Actor
from governance.identity import create_person, issue_api_key
from governance.identity_generation import IDENTITY_TABLES, read_generation
from governance.roles import Role, grant_role
from lineage.projects import create_project
from lineage.store import create_store_engine, session_scope


def _generation(engine: Engine) -> int:
    generation = read_generation(engine)
    assert generation is not None
    return generation


def test_every_insert_update_and_delete_of_an_identity_table_moves_the_generation(
    engine: Engine,
) -> None:
    system = Actor.system()
    before = _generation(engine)
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        person = create_person(session=session, actor=system, name="ada")
        grant_role(
            session=session,
            actor=system,
            project_id=project.id,
            principal_id=person.id,
            role=Role.VIEWER,
        )
        issue_api_key(session=session, actor=system, principal_id=person.id)
    assert _generation(engine) >= before + len(IDENTITY_TABLES)  # at least one per insert
    for table in IDENTITY_TABLES:
        for statement in (
            f"UPDATE {table} SET created_at = created_at",  # noqa: S608 (constant names)
            f"DELETE FROM {table} WHERE 1 = 0",  # noqa: S608
        ):
            seen = _generation(engine)
            with engine.begin() as connection:
                connection.execute(sa.text(statement))
            if statement.startswith("UPDATE") or engine.dialect.name == "postgresql":
                # A row trigger (SQLite) fires per row changed; a statement trigger
                # (PostgreSQL) per statement, rows or none.
                assert _generation(engine) > seen, (table, statement)
    # Rows deleted (the project stays: the grant's audit entry refers to it).
    for table in ("governance_api_key", "governance_role_grant", "governance_principal"):
        seen = _generation(engine)
        with engine.begin() as connection:
            connection.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608
        assert _generation(engine) > seen, table


def _create_then_fail(engine: Engine) -> None:
    with session_scope(engine) as session:
        create_project(session=session, name="acme")
        session.flush()
        raise RuntimeError("abandon")


def test_a_rolled_back_change_leaves_the_generation(engine: Engine) -> None:
    before = _generation(engine)
    with pytest.raises(RuntimeError):
        _create_then_fail(engine)
    assert _generation(engine) == before


def test_a_store_without_the_table_has_no_generation() -> None:
    bare = create_store_engine("sqlite://")
    assert read_generation(bare) is None
    bare.dispose()
