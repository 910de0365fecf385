"""The hand-filled part of a model card: intended use, limitations and ethical considerations.

Everything else in a model version's report is derived from what Warden recorded (lineage,
evaluations, approvals, deployments, monitors, the audit log). What a model is *for* and where it
must not be used cannot be derived, so the team states it through the API and Warden stores it
here, one row per model version. A report flags every field still empty rather than filling it
with boilerplate. Every change is audited in the caller's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlmodel import Field, Session, select

from governance.actors import Actor
from governance.audit import append
from lineage.models import ModelVersion
from lineage.tables import AwareDateTime, Record, utcnow

__all__ = [
    "CARD_FIELDS",
    "ModelCard",
    "ModelCardUpdate",
    "get_model_card",
    "update_model_card",
]

CARD_FIELDS = ("intended_use", "out_of_scope_use", "limitations", "ethical_considerations")
"""The hand-filled fields, in the order a report shows them."""

_Text = Annotated[str, PydanticField(max_length=20_000)]


class ModelCard(Record, table=True):
    """What the team says about one model version: its intended use and its limits."""

    __tablename__ = "retrain_model_card"
    __table_args__ = (sa.UniqueConstraint("model_version_id"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    model_version_id: uuid.UUID = Field(foreign_key="lineage_model_version.id")
    intended_use: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    out_of_scope_use: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    limitations: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    ethical_considerations: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    updated_by_id: uuid.UUID | None = Field(default=None)
    updated_by_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))


class ModelCardUpdate(BaseModel):
    """The fields a client changes; a field left out keeps its stored value.

    Attributes:
        intended_use: Who should use the model, for what decisions.
        out_of_scope_use: Uses the model was not built or evaluated for.
        limitations: Known weaknesses: data gaps, populations it serves poorly, failure modes.
        ethical_considerations: Risks to people and how they are mitigated.
    """

    model_config = ConfigDict(extra="forbid")

    intended_use: _Text | None = None
    out_of_scope_use: _Text | None = None
    limitations: _Text | None = None
    ethical_considerations: _Text | None = None


def get_model_card(*, session: Session, model_version: ModelVersion) -> ModelCard | None:
    """Return the stored card fields of a model version, ``None`` if nobody filled any yet."""
    return session.exec(
        select(ModelCard).where(
            ModelCard.project_id == model_version.project_id,
            ModelCard.model_version_id == model_version.id,
        )
    ).first()


def update_model_card(
    *, session: Session, actor: Actor, model_version: ModelVersion, spec: ModelCardUpdate
) -> ModelCard:
    """Store the given card fields of a model version and audit the change (never commits).

    The audit entry names the fields changed, not their text, so the log stays small; the card
    row holds the current text and who wrote it last.
    """
    card = get_model_card(session=session, model_version=model_version)
    now = utcnow()
    if card is None:
        card = ModelCard(
            project_id=model_version.project_id,
            model_version_id=model_version.id,
            updated_at=now,
            updated_by_name=actor.name,
        )
    changed = sorted(
        name
        for name, value in spec.model_dump(exclude_none=True).items()
        if getattr(card, name) != value
    )
    for name in changed:
        setattr(card, name, getattr(spec, name))
    card.updated_at = now
    card.updated_by_id = actor.principal_id
    card.updated_by_name = actor.name
    session.add(card)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="model_card.update",
        target=f"model_version:{model_version.id}",
        detail={"fields": changed, "model": model_version.name, "version": model_version.version},
        project_id=model_version.project_id,
    )
    return card
