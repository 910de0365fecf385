"""Runtime: a monitor's deployment is a real deployment (foreign key to lineage).

Revision ID: runtime_0002
Revises: runtime_0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "runtime_0002"
down_revision: str | Sequence[str] | None = "runtime_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "lineage_0001"


def upgrade() -> None:
    with op.batch_alter_table("monitors_monitor") as batch:
        batch.create_foreign_key(
            batch.f("fk_monitors_monitor_deployment_id_lineage_deployment"),
            "lineage_deployment",
            ["deployment_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("monitors_monitor") as batch:
        batch.drop_constraint(
            batch.f("fk_monitors_monitor_deployment_id_lineage_deployment"), type_="foreignkey"
        )
