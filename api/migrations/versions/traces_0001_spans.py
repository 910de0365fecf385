"""LLM traces: spans with their metrics, span content apart, and per-trace roll-ups.

Revision ID: traces_0001
Revises: 0001_kernel
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "traces_0001"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("traces",)
depends_on: str | Sequence[str] | None = "lineage_0001"


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def _base(table: str) -> list[sa.Column[object] | sa.ForeignKeyConstraint]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        _fk(table, "project_id", "lineage_project"),
    ]


def upgrade() -> None:
    table = "monitors_trace_span"
    op.create_table(
        table,
        *_base(table),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=128), nullable=True),
        sa.Column("request_model", sa.String(length=256), nullable=True),
        sa.Column("response_model", sa.String(length=256), nullable=True),
        sa.Column("finish_reasons", sa.JSON(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cache_creation_tokens", sa.BigInteger(), nullable=True),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=True),
        sa.Column("start_at", AwareDateTime(), nullable=False),
        sa.Column("end_at", AwareDateTime(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(length=256), nullable=True),
        sa.Column("prompt_name", sa.String(length=256), nullable=True),
        sa.Column("prompt_version", sa.String(length=64), nullable=True),
        sa.Column("session_id", sa.String(length=256), nullable=True),
        sa.Column("user_id", sa.String(length=256), nullable=True),
        sa.Column("cost_nano_usd", sa.BigInteger(), nullable=True),
        sa.Column("cost_source", sa.String(length=16), nullable=True),
        sa.Column("dialect", sa.String(length=32), nullable=True),
        sa.Column("scope", sa.String(length=256), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("redactions", sa.JSON(), nullable=False),
        _fk(table, "deployment_id", "lineage_deployment"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint(
            "project_id",
            "trace_id",
            "span_id",
            name=op.f(f"uq_{table}_project_id_trace_id_span_id"),
        ),
    )
    with op.batch_alter_table(table) as batch:
        batch.create_index(batch.f(f"ix_{table}_project_id"), ["project_id"])
        batch.create_index(f"ix_{table}_deployment_start", ["deployment_id", "start_at"])

    table = "monitors_trace_content"
    op.create_table(
        table,
        *_base(table),
        sa.Column("span_row_id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_start_at", AwareDateTime(), nullable=False),
        sa.Column("input_messages", sa.JSON(), nullable=False),
        sa.Column("output_messages", sa.JSON(), nullable=False),
        sa.Column("other", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _fk(table, "span_row_id", "monitors_trace_span"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("span_row_id", name=op.f(f"uq_{table}_span_row_id")),
    )
    with op.batch_alter_table(table) as batch:
        batch.create_index(batch.f(f"ix_{table}_span_start_at"), ["span_start_at"])
        batch.create_index(f"ix_{table}_trace", ["project_id", "trace_id"])

    table = "monitors_trace"
    op.create_table(
        table,
        *_base(table),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("root_span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("start_at", AwareDateTime(), nullable=False),
        sa.Column("end_at", AwareDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("span_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nano_usd", sa.BigInteger(), nullable=True),
        sa.Column("cost_missing_spans", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=256), nullable=True),
        sa.Column("user_id", sa.String(length=256), nullable=True),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        _fk(table, "deployment_id", "lineage_deployment"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("project_id", "trace_id", name=op.f(f"uq_{table}_project_id_trace_id")),
    )
    with op.batch_alter_table(table) as batch:
        batch.create_index(f"ix_{table}_deployment_start", ["deployment_id", "start_at"])
        batch.create_index(f"ix_{table}_project_start", ["project_id", "start_at"])


def downgrade() -> None:
    op.drop_table("monitors_trace")
    op.drop_table("monitors_trace_content")
    op.drop_table("monitors_trace_span")
