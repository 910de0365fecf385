"""LLM traces: a trace belongs to a deployment or to an evaluation run (``deployment_id`` nullable).

An evaluation run's calls are traced whether or not its slot has a live version; they carry
the run's id instead of a deployment. Traces stored earlier by evaluation runs (against the
slot's live deployment, marked with the span attribute ``warden.evaluation.run_id``) get the
run id too and keep their deployment. Downgrading deletes the traces that have no deployment.

SQLite cannot drop a NOT NULL in place: the span table is rebuilt, and since SQLite checks the
content rows' foreign key when the old span table is dropped, those rows are set aside in a
temporary table for the rebuild and put back after it.

Revision ID: traces_0002
Revises: traces_0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "traces_0002"
down_revision: str | Sequence[str] | None = "traces_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SPAN = "monitors_trace_span"
_TRACE = "monitors_trace"
_ATTRIBUTE = "warden.evaluation.run_id"


def _rebuild(change: Any) -> None:
    """Apply ``change(batch, table)`` to the span and trace tables (content set aside on SQLite)."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute(
            "CREATE TEMPORARY TABLE _traces_0002_content AS SELECT * FROM monitors_trace_content"
        )
        op.execute("DELETE FROM monitors_trace_content")
    for table in (_SPAN, _TRACE):
        with op.batch_alter_table(table) as batch:
            change(batch, table)
    if sqlite:
        op.execute("INSERT INTO monitors_trace_content SELECT * FROM _traces_0002_content")
        op.execute("DROP TABLE _traces_0002_content")


def _run_id(attributes: Any) -> uuid.UUID | None:
    if not isinstance(attributes, dict):
        return None
    try:
        return uuid.UUID(str(attributes.get(_ATTRIBUTE)))
    except ValueError:
        return None


def _backfill() -> None:
    """Give the traces earlier evaluation runs stored their run's id."""
    bind = op.get_bind()
    span = sa.table(
        _SPAN,
        sa.column("id", sa.Uuid()),
        sa.column("project_id", sa.Uuid()),
        sa.column("trace_id", sa.String()),
        sa.column("attributes", sa.JSON()),
        sa.column("evaluation_run_id", sa.Uuid()),
    )
    trace = sa.table(
        _TRACE,
        sa.column("project_id", sa.Uuid()),
        sa.column("trace_id", sa.String()),
        sa.column("evaluation_run_id", sa.Uuid()),
    )
    marked = bind.execute(
        sa.select(span.c.id, span.c.project_id, span.c.trace_id, span.c.attributes).where(
            sa.cast(span.c.attributes, sa.Text()).like(f"%{_ATTRIBUTE}%")
        )
    ).all()
    for row_id, project_id, trace_id, attributes in marked:
        run_id = _run_id(attributes)
        if run_id is None:
            continue
        bind.execute(span.update().where(span.c.id == row_id).values(evaluation_run_id=run_id))
        bind.execute(
            trace.update()
            .where(trace.c.project_id == project_id, trace.c.trace_id == trace_id)
            .values(evaluation_run_id=run_id)
        )


def upgrade() -> None:
    def change(batch: Any, table: str) -> None:
        batch.alter_column("deployment_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("evaluation_run_id", sa.Uuid(), nullable=True))
        batch.create_index(f"ix_{table}_evaluation_run", ["evaluation_run_id"])

    _rebuild(change)
    _backfill()


def downgrade() -> None:
    op.execute(
        "DELETE FROM monitors_trace_content WHERE span_row_id IN "
        "(SELECT id FROM monitors_trace_span WHERE deployment_id IS NULL)"
    )
    op.execute("DELETE FROM monitors_trace_span WHERE deployment_id IS NULL")
    op.execute("DELETE FROM monitors_trace WHERE deployment_id IS NULL")

    def change(batch: Any, table: str) -> None:
        batch.drop_index(f"ix_{table}_evaluation_run")
        batch.drop_column("evaluation_run_id")
        batch.alter_column("deployment_id", existing_type=sa.Uuid(), nullable=False)

    _rebuild(change)
