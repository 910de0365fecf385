"""Audit: index the log's actor and outcome filters with the project and ``seq``.

Revision ID: audit_0004
Revises: audit_0003
Create Date: 2026-12-07

``?actor=`` and ``?outcome=`` had no index: a project auditor's page walked the project's
entries in ``seq`` order until 100 matched, every entry of the project when few or none did
(2.0-2.6 s a page on a million entries on SQLite, bench.lookups). With the project between the
filter and ``seq``, as for ``target``, such a page is an index range. Creating indexes does not
rebuild the table, so the append-only triggers stay.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "audit_0004"
down_revision: str | Sequence[str] | None = "audit_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "governance_audit_entry"
_INDEXES = {
    "ix_governance_audit_entry_actor_name_project_seq": ["actor_name", "project_id", "seq"],
    "ix_governance_audit_entry_actor_id_project_seq": ["actor_id", "project_id", "seq"],
    "ix_governance_audit_entry_outcome_project_seq": ["outcome", "project_id", "seq"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, _TABLE, columns)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name=_TABLE)
