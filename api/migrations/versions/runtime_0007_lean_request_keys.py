"""Runtime: request-id keys are one index entry each — no batch index, no batch foreign key.

A key row's batch is looked up only through its ``(deployment_id, request_id)`` key (which
batch holds this request id), never the other way round, yet every logged inference paid an
insert into the ``batch_id`` index and a foreign-key probe of the batch table; on SQLite the
table also kept a rowid B-tree beside its key. Now the key is the table (``WITHOUT ROWID`` on
SQLite), and the batch id is a plain column written in the same transaction as its batch.
Rows are copied.

Revision ID: runtime_0007
Revises: runtime_0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "runtime_0007"
down_revision: str | Sequence[str] | None = "runtime_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("monitors_inference_key", "monitors_label_key")
_BATCH_FK = "fk_{table}_batch_id_monitors_inference_batch"


def _recreate(table: str, *, lean: bool) -> None:
    """Create ``table`` anew in the wanted shape, copy its rows over, drop the old one."""
    old = f"{table}_old"
    if lean:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(batch.f(f"ix_{table}_batch_id"))
    op.rename_table(table, old)
    # PostgreSQL keeps constraint names per schema: free them before the new table takes them.
    if op.get_bind().dialect.name == "postgresql":
        for name in (
            f"pk_{table}",
            f"fk_{table}_deployment_id_lineage_deployment",
            _BATCH_FK.format(table=table),
        ):
            op.execute(f'ALTER TABLE {old} DROP CONSTRAINT IF EXISTS "{name}"')
    constraints: list[sa.schema.SchemaItem] = [
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["lineage_deployment.id"],
            name=op.f(f"fk_{table}_deployment_id_lineage_deployment"),
        ),
        sa.PrimaryKeyConstraint("deployment_id", "request_id", name=op.f(f"pk_{table}")),
    ]
    if not lean:
        constraints.append(
            sa.ForeignKeyConstraint(
                ["batch_id"],
                ["monitors_inference_batch.id"],
                name=op.f(_BATCH_FK.format(table=table)),
            )
        )
    op.create_table(
        table,
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        *constraints,
        sqlite_with_rowid=not lean,
    )
    names = "deployment_id, request_id, batch_id"
    op.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {old}")  # noqa: S608
    op.drop_table(old)
    if not lean:
        with op.batch_alter_table(table) as batch:
            batch.create_index(batch.f(f"ix_{table}_batch_id"), ["batch_id"])


def upgrade() -> None:
    for table in _TABLES:
        _recreate(table, lean=True)


def downgrade() -> None:
    for table in _TABLES:
        _recreate(table, lean=False)
