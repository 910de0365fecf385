"""Evaluation: runs (dataset version x prompt version or variant x scorers) and their results.

Revision ID: evaluation_0002
Revises: evaluation_0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "evaluation_0002"
down_revision: str | Sequence[str] | None = "evaluation_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("prompts_0001",)


def upgrade() -> None:
    op.create_table(
        "retrain_eval_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_version_id", sa.Uuid(), nullable=False),
        sa.Column("model_version_id", sa.Uuid(), nullable=False),
        sa.Column("llm_deployment_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=True),
        sa.Column("scorers", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("requested_by_name", sa.String(length=200), nullable=False),
        sa.Column("started_at", AwareDateTime(), nullable=True),
        sa.Column("finished_at", AwareDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["retrain_eval_dataset_version.id"],
            name=op.f("fk_retrain_eval_run_dataset_version_id_retrain_eval_dataset_version"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["lineage_runtime_job.id"],
            name=op.f("fk_retrain_eval_run_job_id_lineage_runtime_job"),
        ),
        sa.ForeignKeyConstraint(
            ["llm_deployment_id"],
            ["retrain_llm_deployment.id"],
            name=op.f("fk_retrain_eval_run_llm_deployment_id_retrain_llm_deployment"),
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["lineage_model_version.id"],
            name=op.f("fk_retrain_eval_run_model_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_eval_run_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_eval_run")),
    )
    with op.batch_alter_table("retrain_eval_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_eval_run_dataset_version_id"),
            ["dataset_version_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_retrain_eval_run_model_version_id"), ["model_version_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_retrain_eval_run_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "retrain_eval_result",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost_nano_usd", sa.BigInteger(), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_eval_result_project_id_lineage_project"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["retrain_eval_record.id"],
            name=op.f("fk_retrain_eval_result_record_id_retrain_eval_record"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["retrain_eval_run.id"],
            name=op.f("fk_retrain_eval_result_run_id_retrain_eval_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_eval_result")),
        sa.UniqueConstraint(
            "run_id", "position", name=op.f("uq_retrain_eval_result_run_id_position")
        ),
    )
    with op.batch_alter_table("retrain_eval_result", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_eval_result_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_retrain_eval_result_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("retrain_eval_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrain_eval_result_run_id"))
        batch_op.drop_index(batch_op.f("ix_retrain_eval_result_project_id"))

    op.drop_table("retrain_eval_result")
    with op.batch_alter_table("retrain_eval_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrain_eval_run_project_id"))
        batch_op.drop_index(batch_op.f("ix_retrain_eval_run_model_version_id"))
        batch_op.drop_index(batch_op.f("ix_retrain_eval_run_dataset_version_id"))

    op.drop_table("retrain_eval_run")
