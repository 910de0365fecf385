"""Runtime: ``lineage_runtime_worker``, one row per worker process and its last heartbeat.

Readers (``/readyz``, a queued monitor run, the dashboard) tell from it whether any worker is
alive. Nothing to copy: the table starts empty and fills as workers start.

Revision ID: runtime_0005
Revises: runtime_0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "runtime_0005"
down_revision: str | Sequence[str] | None = "runtime_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lineage_runtime_worker",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("started_at", AwareDateTime(), nullable=False),
        sa.Column("last_seen_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_runtime_worker")),
        sa.UniqueConstraint("owner", name=op.f("uq_lineage_runtime_worker_owner")),
    )
    with op.batch_alter_table("lineage_runtime_worker", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_runtime_worker_last_seen_at"), ["last_seen_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lineage_runtime_worker", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_runtime_worker_last_seen_at"))
    op.drop_table("lineage_runtime_worker")
