"""Reports: the model card table takes its package's prefix (``retrain_`` → ``reports_``).

The card moved from ``retrain`` to the ``reports`` package. Constraint and index names carry the
table name, and neither SQLite nor Alembic renames those with the table, so the rows are copied
into a table created under the new name and the old table is dropped (and back on downgrade).

Revision ID: reports_0002
Revises: reports_0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "reports_0002"
down_revision: str | Sequence[str] | None = "reports_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "id",
    "created_at",
    "project_id",
    "model_version_id",
    "intended_use",
    "out_of_scope_use",
    "limitations",
    "ethical_considerations",
    "updated_at",
    "updated_by_id",
    "updated_by_name",
)


def _create(table: str) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("model_version_id", sa.Uuid(), nullable=False),
        sa.Column("intended_use", sa.Text(), nullable=False),
        sa.Column("out_of_scope_use", sa.Text(), nullable=False),
        sa.Column("limitations", sa.Text(), nullable=False),
        sa.Column("ethical_considerations", sa.Text(), nullable=False),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        sa.Column("updated_by_id", sa.Uuid(), nullable=True),
        sa.Column("updated_by_name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["lineage_model_version.id"],
            name=op.f(f"fk_{table}_model_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f(f"fk_{table}_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("model_version_id", name=op.f(f"uq_{table}_model_version_id")),
    )
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_project_id"), ["project_id"], unique=False)


def _move(source: str, target: str) -> None:
    _create(target)
    columns = ", ".join(_COLUMNS)
    op.execute(sa.text(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {source}"))  # noqa: S608
    op.drop_table(source)


def upgrade() -> None:
    _move("retrain_model_card", "reports_model_card")


def downgrade() -> None:
    _move("reports_model_card", "retrain_model_card")
