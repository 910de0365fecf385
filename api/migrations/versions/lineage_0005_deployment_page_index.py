"""Lineage: index deployments in the order their history pages.

Revision ID: lineage_0005
Revises: lineage_0004
Create Date: 2026-12-07

The deployment history pages by ``(live_from, id)`` newest first within a project
(:func:`lineage.deployments.page_deployments`); with this index a page is an index range read
backwards, not a sort of the project's whole history.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "lineage_0005"
down_revision: str | Sequence[str] | None = "lineage_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_lineage_deployment_page"


def upgrade() -> None:
    op.create_index(_INDEX, "lineage_deployment", ["project_id", "live_from", "id"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="lineage_deployment")
