"""Lineage: index model versions in the order their lists page in.

Revision ID: lineage_0004
Revises: lineage_0003
Create Date: 2026-12-07

Lists of model versions page by ``(name, created_at, id)`` within a project
(:mod:`lineage.pages`); with this index a page is an index range, with no sort however deep.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "lineage_0004"
down_revision: str | Sequence[str] | None = "lineage_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_lineage_model_version_page"


def upgrade() -> None:
    op.create_index(_INDEX, "lineage_model_version", ["project_id", "name", "created_at", "id"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="lineage_model_version")
