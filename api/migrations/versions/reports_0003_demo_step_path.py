"""Reports: stored pipelines name the demo's Adult step by its new home (``api.demo.adult``).

The Adult training step and reader moved from ``retrain.adult`` to the demo's package when
reports and the demo left ``retrain``. A pipeline stored before the move (the demo's, or one
copied from the docs) names them by module path, so its entry points and evaluation reader are
rewritten; nothing else in a spec changes.

Revision ID: reports_0003
Revises: reports_0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "reports_0003"
down_revision: str | Sequence[str] | None = "reports_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("retrain_0001",)

_OLD = "retrain.adult:"
_NEW = "api.demo.adult:"
_PIPELINE = sa.table("retrain_pipeline", sa.column("id", sa.Uuid()), sa.column("spec", sa.JSON()))


def _moved(path: Any, old: str, new: str) -> Any:
    return new + path.removeprefix(old) if isinstance(path, str) and path.startswith(old) else path


def _rewrite(spec: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    steps = [
        {**step, "entrypoint": _moved(step.get("entrypoint"), old, new)}
        if isinstance(step, dict) and "entrypoint" in step
        else step
        for step in spec.get("steps") or []
    ]
    rewritten = {**spec, "steps": steps} if "steps" in spec else dict(spec)
    evaluation = spec.get("evaluation")
    if isinstance(evaluation, dict) and "reader" in evaluation:
        rewritten["evaluation"] = {
            **evaluation,
            "reader": _moved(evaluation["reader"], old, new),
        }
    return rewritten


def _rename(old: str, new: str) -> None:
    connection = op.get_bind()
    for row in connection.execute(sa.select(_PIPELINE.c.id, _PIPELINE.c.spec)).all():
        spec = row.spec if isinstance(row.spec, dict) else {}
        rewritten = _rewrite(spec, old, new)
        if rewritten != spec:
            connection.execute(
                _PIPELINE.update().where(_PIPELINE.c.id == row.id).values(spec=rewritten)
            )


def upgrade() -> None:
    _rename(_OLD, _NEW)


def downgrade() -> None:
    _rename(_NEW, _OLD)
