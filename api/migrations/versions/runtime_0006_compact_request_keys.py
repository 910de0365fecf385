"""Runtime: request-id keys keyed by ``(deployment_id, request_id)``, without an id of their own.

A key row only says "this deployment logged this request id, in this batch". Its random UUID
primary key and creation time made every logged inference cost a second random index insert
(a third of SQLite's time per batch); the unique pair was already the key. Rows are copied.

Revision ID: runtime_0006
Revises: runtime_0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "runtime_0006"
down_revision: str | Sequence[str] | None = "runtime_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("monitors_inference_key", "monitors_label_key")


def _fks(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
        )
        for column, target in (
            ("deployment_id", "lineage_deployment"),
            ("batch_id", "monitors_inference_batch"),
        )
    ]


def _recreate(table: str, *, compact: bool) -> None:
    """Create ``table`` anew in the wanted shape, copy its rows over, drop the old one."""
    old = f"{table}_old"
    with op.batch_alter_table(table) as batch:
        batch.drop_index(batch.f(f"ix_{table}_batch_id"))
    op.rename_table(table, old)
    # PostgreSQL keeps constraint names per schema: free them before the new table takes them.
    if op.get_bind().dialect.name == "postgresql":
        for name in (
            f"pk_{table}",
            f"uq_{table}_deployment_id_request_id",
            f"fk_{table}_deployment_id_lineage_deployment",
            f"fk_{table}_batch_id_monitors_inference_batch",
        ):
            op.execute(f'ALTER TABLE {old} DROP CONSTRAINT IF EXISTS "{name}"')
    shared: list[sa.schema.SchemaItem] = [
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        *_fks(table),
    ]
    if compact:
        op.create_table(
            table,
            *shared,
            sa.PrimaryKeyConstraint("deployment_id", "request_id", name=op.f(f"pk_{table}")),
        )
        names = "deployment_id, request_id, batch_id"
        op.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {old}")  # noqa: S608
    else:
        op.create_table(
            table,
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("created_at", AwareDateTime(), nullable=False),
            *shared,
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint(
                "deployment_id", "request_id", name=op.f(f"uq_{table}_deployment_id_request_id")
            ),
        )
        fresh = (
            "gen_random_uuid()"
            if op.get_bind().dialect.name == "postgresql"
            else "lower(hex(randomblob(16)))"
        )
        copy = (
            f"INSERT INTO {table} (id, created_at, deployment_id, request_id, batch_id) "  # noqa: S608
            f"SELECT {fresh}, b.created_at, k.deployment_id, k.request_id, k.batch_id "
            f"FROM {old} AS k JOIN monitors_inference_batch AS b ON b.id = k.batch_id"
        )
        op.execute(copy)
    op.drop_table(old)
    with op.batch_alter_table(table) as batch:
        batch.create_index(batch.f(f"ix_{table}_batch_id"), ["batch_id"])


def upgrade() -> None:
    for table in _TABLES:
        _recreate(table, compact=True)


def downgrade() -> None:
    for table in _TABLES:
        _recreate(table, compact=False)
