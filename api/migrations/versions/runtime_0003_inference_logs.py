"""Monitors I/O: inference-log batches and their request-id keys, label keys, stored baselines.

Revision ID: runtime_0003
Revises: runtime_0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "runtime_0003"
down_revision: str | Sequence[str] | None = "runtime_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "lineage_0001"


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def _keys(table: str) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        _fk(table, "deployment_id", "lineage_deployment"),
        _fk(table, "batch_id", "monitors_inference_batch"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint(
            "deployment_id", "request_id", name=op.f(f"uq_{table}_deployment_id_request_id")
        ),
    )
    with op.batch_alter_table(table) as batch:
        batch.create_index(batch.f(f"ix_{table}_batch_id"), ["batch_id"])


def upgrade() -> None:
    table = "monitors_inference_batch"
    op.create_table(
        table,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("first_at", AwareDateTime(), nullable=True),
        sa.Column("last_at", AwareDateTime(), nullable=True),
        _fk(table, "project_id", "lineage_project"),
        _fk(table, "deployment_id", "lineage_deployment"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )
    with op.batch_alter_table(table) as batch:
        batch.create_index(batch.f(f"ix_{table}_project_id"), ["project_id"])
        batch.create_index(batch.f(f"ix_{table}_deployment_id"), ["deployment_id"])
    _keys("monitors_inference_key")
    _keys("monitors_label_key")

    table = "monitors_baseline"
    op.create_table(
        table,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("model_version_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_version_id", sa.Uuid(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        _fk(table, "project_id", "lineage_project"),
        _fk(table, "deployment_id", "lineage_deployment"),
        _fk(table, "model_version_id", "lineage_model_version"),
        _fk(table, "dataset_version_id", "lineage_dataset_version"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )
    with op.batch_alter_table(table) as batch:
        batch.create_index(batch.f(f"ix_{table}_project_id"), ["project_id"])
        batch.create_index(batch.f(f"ix_{table}_deployment_id"), ["deployment_id"])
        batch.create_index(batch.f(f"ix_{table}_model_version_id"), ["model_version_id"])


def downgrade() -> None:
    op.drop_table("monitors_baseline")
    op.drop_table("monitors_label_key")
    op.drop_table("monitors_inference_key")
    op.drop_table("monitors_inference_batch")
