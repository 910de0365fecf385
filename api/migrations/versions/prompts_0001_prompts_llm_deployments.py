"""Prompts: prompt versions are model versions of kind ``prompt``; LLM deployment bindings.

Revision ID: prompts_0001
Revises: 0001_kernel
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "prompts_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("prompts",)
depends_on: str | Sequence[str] | None = ("lineage_0003", "retrain_0002")


def upgrade() -> None:
    with op.batch_alter_table("lineage_model_version") as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="model", nullable=False)
        )
    op.create_table(
        "lineage_prompt_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("model_version_id", sa.Uuid(), nullable=False),
        sa.Column("template_type", sa.String(length=8), nullable=False),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("model_settings", sa.JSON(), nullable=False),
        sa.Column("commit_message", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["lineage_model_version.id"],
            name=op.f("fk_lineage_prompt_version_model_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_lineage_prompt_version_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_prompt_version")),
        sa.UniqueConstraint(
            "model_version_id", name=op.f("uq_lineage_prompt_version_model_version_id")
        ),
    )
    with op.batch_alter_table("lineage_prompt_version") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_prompt_version_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "retrain_llm_deployment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("prompt_name", sa.String(length=256), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("api_key_env", sa.String(length=128), nullable=True),
        sa.Column("api_key_sealed", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_retrain_llm_deployment_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_llm_deployment")),
        sa.UniqueConstraint(
            "project_id",
            "name",
            "environment",
            name=op.f("uq_retrain_llm_deployment_project_id_name_environment"),
        ),
    )
    with op.batch_alter_table("retrain_llm_deployment") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_retrain_llm_deployment_project_id"), ["project_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("retrain_llm_deployment") as batch_op:
        batch_op.drop_index(batch_op.f("ix_retrain_llm_deployment_project_id"))
    op.drop_table("retrain_llm_deployment")
    with op.batch_alter_table("lineage_prompt_version") as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_prompt_version_project_id"))
    op.drop_table("lineage_prompt_version")
    with op.batch_alter_table("lineage_model_version") as batch_op:
        batch_op.drop_column("kind")
