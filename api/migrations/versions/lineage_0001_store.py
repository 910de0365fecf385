"""Lineage store: datasets and versions, jobs and runs, model versions, deployments, edges, events.

Revision ID: lineage_0001
Revises: 0001_kernel
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "lineage_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("lineage",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lineage_dataset",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("namespace", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("facets", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_lineage_dataset_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_dataset")),
        sa.UniqueConstraint(
            "project_id",
            "namespace",
            "name",
            name=op.f("uq_lineage_dataset_project_id_namespace_name"),
        ),
    )
    with op.batch_alter_table("lineage_dataset", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_dataset_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "lineage_edge",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_lineage_edge_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_edge")),
        sa.UniqueConstraint(
            "project_id",
            "kind",
            "source_id",
            "target_id",
            name=op.f("uq_lineage_edge_project_id_kind_source_id_target_id"),
        ),
    )
    with op.batch_alter_table("lineage_edge", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_edge_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_lineage_edge_source_id"), ["source_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lineage_edge_target_id"), ["target_id"], unique=False)

    op.create_table(
        "lineage_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("event_kind", sa.String(length=16), nullable=False),
        sa.Column("event_time", AwareDateTime(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_lineage_event_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_event")),
        sa.UniqueConstraint(
            "project_id", "digest", name=op.f("uq_lineage_event_project_id_digest")
        ),
    )
    with op.batch_alter_table("lineage_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_event_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "lineage_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("namespace", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("facets", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_lineage_job_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_job")),
        sa.UniqueConstraint(
            "project_id", "namespace", "name", name=op.f("uq_lineage_job_project_id_namespace_name")
        ),
    )
    with op.batch_alter_table("lineage_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lineage_job_project_id"), ["project_id"], unique=False)

    op.create_table(
        "lineage_dataset_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(length=256), nullable=False),
        sa.Column("schema_fields", sa.JSON(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("uri", sa.String(length=2048), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["lineage_dataset.id"],
            name=op.f("fk_lineage_dataset_version_dataset_id_lineage_dataset"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_lineage_dataset_version_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_dataset_version")),
        sa.UniqueConstraint(
            "dataset_id", "version", name=op.f("uq_lineage_dataset_version_dataset_id_version")
        ),
    )
    with op.batch_alter_table("lineage_dataset_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_dataset_version_dataset_id"), ["dataset_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lineage_dataset_version_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "lineage_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_at", AwareDateTime(), nullable=False),
        sa.Column("started_at", AwareDateTime(), nullable=True),
        sa.Column("ended_at", AwareDateTime(), nullable=True),
        sa.Column("facets", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["lineage_job.id"], name=op.f("fk_lineage_run_job_id_lineage_job")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_lineage_run_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_run")),
        sa.UniqueConstraint("project_id", "run_id", name=op.f("uq_lineage_run_project_id_run_id")),
    )
    with op.batch_alter_table("lineage_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lineage_run_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lineage_run_project_id"), ["project_id"], unique=False)

    op.create_table(
        "lineage_model_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("source_run_id", sa.Uuid(), nullable=True),
        sa.Column("artifact_uri", sa.String(length=2048), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("feature_schema", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("registered_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_lineage_model_version_project_id_lineage_project"),
        ),
        sa.ForeignKeyConstraint(
            ["source_run_id"],
            ["lineage_run.id"],
            name=op.f("fk_lineage_model_version_source_run_id_lineage_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_model_version")),
        sa.UniqueConstraint(
            "project_id",
            "name",
            "version",
            name=op.f("uq_lineage_model_version_project_id_name_version"),
        ),
    )
    with op.batch_alter_table("lineage_model_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_model_version_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "lineage_deployment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("model_version_id", sa.Uuid(), nullable=False),
        sa.Column("live_from", AwareDateTime(), nullable=False),
        sa.Column("live_until", AwareDateTime(), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["lineage_model_version.id"],
            name=op.f("fk_lineage_deployment_model_version_id_lineage_model_version"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f("fk_lineage_deployment_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_deployment")),
    )
    with op.batch_alter_table("lineage_deployment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_deployment_model_version_id"), ["model_version_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_lineage_deployment_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            "ix_lineage_deployment_live_slot",
            ["project_id", "name", "environment"],
            unique=True,
            sqlite_where=sa.text("live_until IS NULL"),
            postgresql_where=sa.text("live_until IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("lineage_deployment", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_deployment_live_slot")
        batch_op.drop_index(batch_op.f("ix_lineage_deployment_project_id"))
        batch_op.drop_index(batch_op.f("ix_lineage_deployment_model_version_id"))

    op.drop_table("lineage_deployment")
    with op.batch_alter_table("lineage_model_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_model_version_project_id"))

    op.drop_table("lineage_model_version")
    with op.batch_alter_table("lineage_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_run_project_id"))
        batch_op.drop_index(batch_op.f("ix_lineage_run_job_id"))

    op.drop_table("lineage_run")
    with op.batch_alter_table("lineage_dataset_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_dataset_version_project_id"))
        batch_op.drop_index(batch_op.f("ix_lineage_dataset_version_dataset_id"))

    op.drop_table("lineage_dataset_version")
    with op.batch_alter_table("lineage_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_job_project_id"))

    op.drop_table("lineage_job")
    with op.batch_alter_table("lineage_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_event_project_id"))

    op.drop_table("lineage_event")
    with op.batch_alter_table("lineage_edge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_edge_target_id"))
        batch_op.drop_index(batch_op.f("ix_lineage_edge_source_id"))
        batch_op.drop_index(batch_op.f("ix_lineage_edge_project_id"))

    op.drop_table("lineage_edge")
    with op.batch_alter_table("lineage_dataset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_dataset_project_id"))

    op.drop_table("lineage_dataset")
