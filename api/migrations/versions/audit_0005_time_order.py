"""Audit: index the entries' time with ``seq``, and record how far an older log is out of order.

Revision ID: audit_0005
Revises: audit_0004
Create Date: 2026-12-07

From this revision an entry takes its time under the chain lock, never before the head's, so
time rises with ``seq`` and ``?since=``/``?until=`` become a seek on ``(created_at, seq)`` for
the first ``seq`` at the bound, then a ``seq`` range (a page in the middle of a million entries
walked a third of a second of entries before). Entries written before took their time before
the lock and may be out of order; the latest time followed by an earlier one is recorded in
``governance_audit_time_order`` (no row: the log is in order), and bounds up to it stay time
filters. Creating an index does not rebuild the entry table, so its append-only triggers stay.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "audit_0005"
down_revision: str | Sequence[str] | None = "audit_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENTRIES = "governance_audit_entry"
_INDEX = "ix_governance_audit_entry_created_at_seq"
_ORDER = "governance_audit_time_order"
# The largest time an entry had before some later entry (by seq) that has an earlier one.
_UNORDERED_UNTIL = sa.text(
    "SELECT max(before) FROM (SELECT created_at, max(created_at) OVER "
    "(ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before "
    "FROM governance_audit_entry) AS timed WHERE created_at < before"
).columns(sa.column("before", AwareDateTime()))


def upgrade() -> None:
    op.create_index(_INDEX, _ENTRIES, ["created_at", "seq"])
    table = op.create_table(
        _ORDER,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("unordered_until", AwareDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_ORDER}")),
    )
    unordered_until = op.get_bind().execute(_UNORDERED_UNTIL).scalar()
    if unordered_until is not None:
        op.bulk_insert(
            table,
            [
                {
                    "id": uuid.uuid4(),
                    "created_at": datetime.now(UTC),
                    "unordered_until": unordered_until,
                }
            ],
        )


def downgrade() -> None:
    op.drop_table(_ORDER)
    op.drop_index(_INDEX, table_name=_ENTRIES)
