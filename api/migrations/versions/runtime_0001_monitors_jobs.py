"""Runtime: persisted monitors and their runs, the job queue, the scheduler's leader lease.

Revision ID: runtime_0001
Revises: 0001_kernel
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "runtime_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("runtime",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitors_monitor",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("cron", sa.String(length=120), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("window", sa.String(length=64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("anchor_at", AwareDateTime(), nullable=False),
        sa.Column("active_since", AwareDateTime(), nullable=False),
        sa.Column("scheduled_through", AwareDateTime(), nullable=True),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_monitors_monitor_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors_monitor")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_monitors_monitor_project_id_name")),
    )
    with op.batch_alter_table("monitors_monitor") as batch:
        batch.create_index(batch.f("ix_monitors_monitor_project_id"), ["project_id"])
        batch.create_index(batch.f("ix_monitors_monitor_deployment_id"), ["deployment_id"])

    op.create_table(
        "monitors_monitor_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("monitor_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_for", AwareDateTime(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("window_start", AwareDateTime(), nullable=True),
        sa.Column("window_end", AwareDateTime(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", AwareDateTime(), nullable=True),
        sa.Column("finished_at", AwareDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors_monitor.id"],
            name=op.f("fk_monitors_monitor_run_monitor_id_monitors_monitor"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_monitors_monitor_run_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors_monitor_run")),
        sa.UniqueConstraint(
            "monitor_id",
            "scheduled_for",
            name=op.f("uq_monitors_monitor_run_monitor_id_scheduled_for"),
        ),
    )
    with op.batch_alter_table("monitors_monitor_run") as batch:
        batch.create_index(batch.f("ix_monitors_monitor_run_project_id"), ["project_id"])
        batch.create_index(batch.f("ix_monitors_monitor_run_monitor_id"), ["monitor_id"])
        batch.create_index(batch.f("ix_monitors_monitor_run_job_id"), ["job_id"])

    op.create_table(
        "retrain_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", AwareDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", AwareDateTime(), nullable=True),
        sa.Column("heartbeat_at", AwareDateTime(), nullable=True),
        sa.Column("started_at", AwareDateTime(), nullable=True),
        sa.Column("finished_at", AwareDateTime(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("logs", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_job_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_job")),
    )
    with op.batch_alter_table("retrain_job") as batch:
        batch.create_index(batch.f("ix_retrain_job_project_id"), ["project_id"])
        batch.create_index("ix_retrain_job_state_available_at", ["state", "available_at"])

    op.create_table(
        "retrain_leader_lease",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", AwareDateTime(), nullable=False),
        sa.Column("heartbeat_at", AwareDateTime(), nullable=False),
        sa.Column("expires_at", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_leader_lease")),
        sa.UniqueConstraint("name", name=op.f("uq_retrain_leader_lease_name")),
    )


def downgrade() -> None:
    op.drop_table("retrain_leader_lease")
    with op.batch_alter_table("retrain_job") as batch:
        batch.drop_index("ix_retrain_job_state_available_at")
        batch.drop_index(batch.f("ix_retrain_job_project_id"))
    op.drop_table("retrain_job")
    with op.batch_alter_table("monitors_monitor_run") as batch:
        batch.drop_index(batch.f("ix_monitors_monitor_run_job_id"))
        batch.drop_index(batch.f("ix_monitors_monitor_run_monitor_id"))
        batch.drop_index(batch.f("ix_monitors_monitor_run_project_id"))
    op.drop_table("monitors_monitor_run")
    with op.batch_alter_table("monitors_monitor") as batch:
        batch.drop_index(batch.f("ix_monitors_monitor_deployment_id"))
        batch.drop_index(batch.f("ix_monitors_monitor_project_id"))
    op.drop_table("monitors_monitor")
