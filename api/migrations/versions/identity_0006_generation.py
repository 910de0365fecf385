"""Identity: the identity generation, moved by triggers on every table the gate's answer reads.

Revision ID: identity_0006
Revises: identity_0005
Create Date: 2026-12-07

The permission gate caches API-key answers only while this counter is unchanged (see
``governance/identity_generation.py``). SQLite: an ``AFTER`` row trigger per table and verb.
PostgreSQL: one plpgsql function, run by a statement trigger per table for INSERT, UPDATE,
DELETE and TRUNCATE. A later revision that rebuilds one of these tables in SQLite batch mode
drops its triggers with the old table and must create them again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0006"
down_revision: str | Sequence[str] | None = "identity_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("governance_api_key", "governance_principal", "governance_role_grant", "lineage_project")
_BUMP = "UPDATE governance_identity_generation SET value = value + 1 WHERE id = 1"
_PG_FUNCTION = "governance_identity_bump"


def upgrade() -> None:
    op.create_table(
        "governance_identity_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_identity_generation")),
    )
    op.execute("INSERT INTO governance_identity_generation (id, value) VALUES (1, 0)")
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in _TABLES:
            for verb in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_identity_{verb.lower()} AFTER {verb} ON {table} "
                    f"BEGIN {_BUMP}; END"
                )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_identity_changed "
                f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in _TABLES:
            for verb in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_identity_{verb}")
    elif dialect == "postgresql":
        for table in _TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_identity_changed ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()")
    op.drop_table("governance_identity_generation")
