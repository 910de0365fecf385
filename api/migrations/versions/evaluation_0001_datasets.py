"""Evaluation: datasets of prompt evaluations, their versions and records.

Revision ID: evaluation_0001
Revises: 0001_kernel
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "evaluation_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("evaluation",)
depends_on: str | Sequence[str] | None = ("lineage_0001", "runtime_0004")


def upgrade() -> None:
    op.create_table(
        "retrain_eval_dataset",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_eval_dataset_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_eval_dataset")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_retrain_eval_dataset_project_id_name")
        ),
    )
    with op.batch_alter_table("retrain_eval_dataset", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_eval_dataset_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "retrain_eval_dataset_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("frozen_at", AwareDateTime(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["retrain_eval_dataset.id"],
            name=op.f("fk_retrain_eval_dataset_version_dataset_id_retrain_eval_dataset"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_eval_dataset_version_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_eval_dataset_version")),
        sa.UniqueConstraint(
            "dataset_id", "version", name=op.f("uq_retrain_eval_dataset_version_dataset_id_version")
        ),
    )
    with op.batch_alter_table("retrain_eval_dataset_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_eval_dataset_version_dataset_id"), ["dataset_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_retrain_eval_dataset_version_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "retrain_eval_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("expected_response", sa.Text(), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("guidelines", sa.JSON(), nullable=False),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("source_trace_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_eval_record_project_id_lineage_project"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["retrain_eval_dataset_version.id"],
            name=op.f("fk_retrain_eval_record_version_id_retrain_eval_dataset_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_eval_record")),
        sa.UniqueConstraint(
            "version_id", "position", name=op.f("uq_retrain_eval_record_version_id_position")
        ),
    )
    with op.batch_alter_table("retrain_eval_record", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_eval_record_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_retrain_eval_record_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("retrain_eval_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrain_eval_record_version_id"))
        batch_op.drop_index(batch_op.f("ix_retrain_eval_record_project_id"))

    op.drop_table("retrain_eval_record")
    with op.batch_alter_table("retrain_eval_dataset_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrain_eval_dataset_version_project_id"))
        batch_op.drop_index(batch_op.f("ix_retrain_eval_dataset_version_dataset_id"))

    op.drop_table("retrain_eval_dataset_version")
    with op.batch_alter_table("retrain_eval_dataset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrain_eval_dataset_project_id"))

    op.drop_table("retrain_eval_dataset")
