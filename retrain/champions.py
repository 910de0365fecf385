"""Champions: the history of what each deployment slot served, and which version is champion.

A :class:`Promotion` row is written for every change of a slot's live version made through
:mod:`retrain.promotion` (a promotion, a recorded deployment or a rollback). It is the memory a
rollback walks back through, and :func:`current_champion` reads it. It lives apart from the
promotion rules so that evaluation and the gates can ask "who is champion" without importing the
code that applies them.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import Field, Session, col, select

from lineage.models import ModelVersion
from lineage.tables import Record

__all__ = ["Promotion", "current_champion", "slot_history"]


class Promotion(Record, table=True):
    """One change of the live version of a slot: a promotion, a recording or a rollback."""

    __tablename__ = "retrain_promotion"

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    model_name: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    deployment: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    environment: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    model_version_id: uuid.UUID = Field(foreign_key="lineage_model_version.id", index=True)
    previous_version_id: uuid.UUID | None = Field(
        default=None, foreign_key="lineage_model_version.id"
    )
    lineage_deployment_id: uuid.UUID = Field(foreign_key="lineage_deployment.id")
    approval_id: uuid.UUID | None = Field(default=None)
    deployer: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    actor_id: uuid.UUID | None = Field(default=None)
    actor_name: str = Field(sa_column=sa.Column(sa.String(256), nullable=False))
    reason: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))


def slot_history(
    *, session: Session, project_id: uuid.UUID, deployment: str, environment: str
) -> list[Promotion]:
    """Return the slot's changes of live version, newest first."""
    return list(
        session.exec(
            select(Promotion)
            .where(
                Promotion.project_id == project_id,
                Promotion.deployment == deployment,
                Promotion.environment == environment,
            )
            .order_by(sa.desc(col(Promotion.created_at)))
        ).all()
    )


def current_champion(
    *, session: Session, project_id: uuid.UUID, model_name: str
) -> ModelVersion | None:
    """Return the version most recently made live for ``model_name`` (any slot), if any."""
    row = session.exec(
        select(Promotion)
        .where(Promotion.project_id == project_id, Promotion.model_name == model_name)
        .order_by(sa.desc(col(Promotion.created_at)))
    ).first()
    return None if row is None else session.get(ModelVersion, row.model_version_id)
