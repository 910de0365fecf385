"""Audit: index each filter of the log's list together with ``seq``, the order pages follow.

Revision ID: audit_0003
Revises: audit_0002
Create Date: 2026-12-07

``(project_id, seq)``, ``(action, seq)`` and ``(target, project_id, seq)`` replace the
single-column indexes: a project's page of the log was a sort of every entry of the project (a
second on a million entries on SQLite, which keeps no statistics), and is now an index range.
Creating and dropping indexes does not rebuild the table, so the append-only triggers stay.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "audit_0003"
down_revision: str | Sequence[str] | None = "audit_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "governance_audit_entry"
# Old single-column index → new index and its columns.
_INDEXES = {
    "project_id": ("ix_governance_audit_entry_project_seq", ["project_id", "seq"]),
    "action": ("ix_governance_audit_entry_action_seq", ["action", "seq"]),
    "target": ("ix_governance_audit_entry_target_project_seq", ["target", "project_id", "seq"]),
}


def upgrade() -> None:
    for column, (name, columns) in _INDEXES.items():
        op.create_index(name, _TABLE, columns)
        op.drop_index(op.f(f"ix_{_TABLE}_{column}"), table_name=_TABLE)


def downgrade() -> None:
    for column, (name, _) in _INDEXES.items():
        op.create_index(op.f(f"ix_{_TABLE}_{column}"), _TABLE, [column])
        op.drop_index(name, table_name=_TABLE)
