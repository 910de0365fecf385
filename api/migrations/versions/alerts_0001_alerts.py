"""Alerts: channels, rules, incidents, deliveries and attempts, the outbound allow-list.

Revision ID: alerts_0001
Revises: 0001_kernel
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "alerts_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("alerts",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governance_alert_channel",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_alert_channel_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_alert_channel")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_governance_alert_channel_project_id_name")
        ),
    )
    with op.batch_alter_table("governance_alert_channel", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_alert_channel_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "governance_alert_rule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("monitor_kinds", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("source_ids", sa.JSON(), nullable=False),
        sa.Column("min_status", sa.String(length=10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_alert_rule_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_alert_rule")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_governance_alert_rule_project_id_name")
        ),
    )
    with op.batch_alter_table("governance_alert_rule", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_alert_rule_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "governance_outbound_allow",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_outbound_allow_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_outbound_allow")),
        sa.UniqueConstraint(
            "project_id", "target", name=op.f("uq_governance_outbound_allow_project_id_target")
        ),
    )
    with op.batch_alter_table("governance_outbound_allow", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_outbound_allow_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "governance_alert_rule_channel",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["governance_alert_channel.id"],
            name=op.f("fk_governance_alert_rule_channel_channel_id_governance_alert_channel"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["governance_alert_rule.id"],
            name=op.f("fk_governance_alert_rule_channel_rule_id_governance_alert_rule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_alert_rule_channel")),
        sa.UniqueConstraint(
            "rule_id",
            "channel_id",
            name=op.f("uq_governance_alert_rule_channel_rule_id_channel_id"),
        ),
    )
    with op.batch_alter_table("governance_alert_rule_channel", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_alert_rule_channel_channel_id"), ["channel_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_alert_rule_channel_rule_id"), ["rule_id"], unique=False
        )

    op.create_table(
        "governance_incident",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("source_kind", sa.String(length=50), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("open_key", sa.String(length=300), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", AwareDateTime(), nullable=False),
        sa.Column("last_seen_at", AwareDateTime(), nullable=False),
        sa.Column("last_run_id", sa.String(length=100), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("acknowledged_at", AwareDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", AwareDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_incident_project_id_lineage_project"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["governance_alert_rule.id"],
            name=op.f("fk_governance_incident_rule_id_governance_alert_rule"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_incident")),
        sa.UniqueConstraint("open_key", name=op.f("uq_governance_incident_open_key")),
    )
    with op.batch_alter_table("governance_incident", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_incident_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_incident_rule_id"), ["rule_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_governance_incident_state"), ["state"], unique=False)

    op.create_table(
        "governance_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("resent_from", sa.Uuid(), nullable=True),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", AwareDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("delivered_at", AwareDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["governance_alert_channel.id"],
            name=op.f("fk_governance_delivery_channel_id_governance_alert_channel"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["governance_incident.id"],
            name=op.f("fk_governance_delivery_incident_id_governance_incident"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_governance_delivery_project_id_lineage_project"),
        ),
        sa.ForeignKeyConstraint(
            ["resent_from"],
            ["governance_delivery.id"],
            name=op.f("fk_governance_delivery_resent_from_governance_delivery"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_delivery")),
    )
    with op.batch_alter_table("governance_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_delivery_channel_id"), ["channel_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_delivery_event_id"), ["event_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_delivery_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_delivery_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_governance_delivery_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "governance_delivery_attempt",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["governance_delivery.id"],
            name=op.f("fk_governance_delivery_attempt_delivery_id_governance_delivery"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_delivery_attempt")),
    )
    with op.batch_alter_table("governance_delivery_attempt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_delivery_attempt_delivery_id"), ["delivery_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("governance_delivery_attempt")
    op.drop_table("governance_delivery")
    op.drop_table("governance_incident")
    op.drop_table("governance_alert_rule_channel")
    op.drop_table("governance_outbound_allow")
    op.drop_table("governance_alert_rule")
    op.drop_table("governance_alert_channel")
