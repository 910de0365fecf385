"""Retrain: pipelines and their runs, evaluations of candidates, promotions and rollbacks.

Revision ID: retrain_0001
Revises: 0001_kernel
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "retrain_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("retrain",)
depends_on: str | Sequence[str] | None = ("lineage_0001",)


def upgrade() -> None:
    op.create_table(
        "retrain_pipeline",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_pipeline_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_pipeline")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_retrain_pipeline_project_id_name")),
    )
    with op.batch_alter_table("retrain_pipeline", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_pipeline_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "retrain_evaluation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("candidate_version_id", sa.Uuid(), nullable=False),
        sa.Column("champion_version_id", sa.Uuid(), nullable=True),
        sa.Column("holdout", sa.String(length=2048), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("sensitive_features", sa.JSON(), nullable=False),
        sa.Column("performance", sa.JSON(), nullable=False),
        sa.Column("fairness", sa.JSON(), nullable=False),
        sa.Column("evaluated_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["candidate_version_id"],
            ["lineage_model_version.id"],
            name=op.f("fk_retrain_evaluation_candidate_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["champion_version_id"],
            ["lineage_model_version.id"],
            name=op.f("fk_retrain_evaluation_champion_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_evaluation_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_evaluation")),
    )
    with op.batch_alter_table("retrain_evaluation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_evaluation_candidate_version_id"),
            ["candidate_version_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_retrain_evaluation_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "retrain_pipeline_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("active_model", sa.String(length=128), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("requested_by_name", sa.String(length=256), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("started_at", AwareDateTime(), nullable=True),
        sa.Column("finished_at", AwareDateTime(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("log_tail", sa.Text(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("model_version_id", sa.Uuid(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["lineage_model_version.id"],
            name=op.f("fk_retrain_pipeline_run_model_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["retrain_pipeline.id"],
            name=op.f("fk_retrain_pipeline_run_pipeline_id_retrain_pipeline"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_pipeline_run_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_pipeline_run")),
        sa.UniqueConstraint(
            "project_id",
            "active_model",
            name=op.f("uq_retrain_pipeline_run_project_id_active_model"),
        ),
    )
    with op.batch_alter_table("retrain_pipeline_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_pipeline_run_pipeline_id"), ["pipeline_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_retrain_pipeline_run_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "retrain_promotion",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model_version_id", sa.Uuid(), nullable=False),
        sa.Column("previous_version_id", sa.Uuid(), nullable=True),
        sa.Column("lineage_deployment_id", sa.Uuid(), nullable=False),
        sa.Column("approval_id", sa.Uuid(), nullable=True),
        sa.Column("deployer", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_name", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lineage_deployment_id"],
            ["lineage_deployment.id"],
            name=op.f("fk_retrain_promotion_lineage_deployment_id_lineage_deployment"),
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["lineage_model_version.id"],
            name=op.f("fk_retrain_promotion_model_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["previous_version_id"],
            ["lineage_model_version.id"],
            name=op.f("fk_retrain_promotion_previous_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_promotion_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_promotion")),
    )
    with op.batch_alter_table("retrain_promotion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_promotion_model_version_id"), ["model_version_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_retrain_promotion_project_id"), ["project_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("retrain_promotion")
    op.drop_table("retrain_evaluation")
    op.drop_table("retrain_pipeline_run")
    op.drop_table("retrain_pipeline")
