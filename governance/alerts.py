"""Alert rules: which findings of a project are worth telling someone about, and where.

A rule matches a run's findings by monitor kind, metric and (optionally) source — e.g. "drift
findings of any monitor", "``accuracy`` of monitor X" — and fires when one of them reaches the
rule's ``min_status`` (``warn`` or ``alert``). A firing rule opens or updates one incident per
source (see :mod:`governance.incidents`) and routes it to the rule's channels. Empty filters
match everything, so the smallest useful rule is ``{"name": …, "channel_ids": […]}``.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import JSON, Session, col, select
from sqlmodel import Field as SQLField

from governance.channels import Channel
from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.tables import Record
from monitors.findings import Finding, Status

__all__ = [
    "AlertRule",
    "RuleChannel",
    "RuleCreate",
    "RuleUpdate",
    "create_rule",
    "delete_rule",
    "get_rule",
    "judged_in_scope",
    "list_rules",
    "rule_channel_ids",
    "rule_view",
    "triggering",
    "update_rule",
]


class RuleCreate(BaseModel):
    """A new alert rule; empty filters match every finding."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Unique within the project.")
    monitor_kinds: list[str] = Field(default_factory=list, max_length=20)
    metrics: list[str] = Field(default_factory=list, max_length=50)
    source_ids: list[str] = Field(
        default_factory=list, max_length=50, description="Only these sources (e.g. monitor ids)."
    )
    min_status: Literal["warn", "alert"] = "alert"
    channel_ids: list[uuid.UUID] = Field(min_length=1, max_length=20)
    enabled: bool = True


class RuleUpdate(BaseModel):
    """A change to an alert rule; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    monitor_kinds: list[str] | None = Field(default=None, max_length=20)
    metrics: list[str] | None = Field(default=None, max_length=50)
    source_ids: list[str] | None = Field(default=None, max_length=50)
    min_status: Literal["warn", "alert"] | None = None
    channel_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=20)
    enabled: bool | None = None


class AlertRule(Record, table=True):
    """A project's rule routing findings of a given status to channels."""

    __tablename__ = "governance_alert_rule"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    project_id: uuid.UUID = SQLField(foreign_key="lineage_project.id", index=True)
    name: str = SQLField(sa_column=sa.Column(sa.String(100), nullable=False))
    monitor_kinds: list[str] = SQLField(
        default_factory=list, sa_column=sa.Column(JSON, nullable=False)
    )
    metrics: list[str] = SQLField(default_factory=list, sa_column=sa.Column(JSON, nullable=False))
    source_ids: list[str] = SQLField(
        default_factory=list, sa_column=sa.Column(JSON, nullable=False)
    )
    min_status: str = SQLField(sa_column=sa.Column(sa.String(10), nullable=False))
    enabled: bool = SQLField(default=True, nullable=False)
    created_by: str = SQLField(sa_column=sa.Column(sa.String(200), nullable=False))

    def matches(self, finding: Finding) -> bool:
        """Return whether ``finding`` is in this rule's scope (whatever its status)."""
        return (not self.monitor_kinds or finding.monitor in self.monitor_kinds) and (
            not self.metrics or finding.metric in self.metrics
        )

    def covers(self, source_id: str) -> bool:
        """Return whether this rule watches the given source."""
        return not self.source_ids or source_id in self.source_ids


class RuleChannel(Record, table=True):
    """Links a rule to one of its channels (a channel in use cannot be deleted)."""

    __tablename__ = "governance_alert_rule_channel"
    __table_args__ = (sa.UniqueConstraint("rule_id", "channel_id"),)

    rule_id: uuid.UUID = SQLField(
        sa_column=sa.Column(
            sa.Uuid(),
            sa.ForeignKey("governance_alert_rule.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    channel_id: uuid.UUID = SQLField(foreign_key="governance_alert_channel.id", index=True)


def triggering(rule: AlertRule, findings: list[Finding]) -> list[Finding]:
    """Return the findings in the rule's scope whose status reaches its ``min_status``."""
    floor = Status(rule.min_status).rank
    return [f for f in findings if rule.matches(f) and f.status.rank >= floor]


def judged_in_scope(rule: AlertRule, findings: list[Finding]) -> list[Finding]:
    """Return the findings in the rule's scope that were judged (not ``insufficient``)."""
    return [f for f in findings if rule.matches(f) and f.status != Status.INSUFFICIENT]


def _check_channels(
    *, session: Session, project_id: uuid.UUID, channel_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    unique = list(dict.fromkeys(channel_ids))
    for channel_id in unique:
        channel = session.get(Channel, channel_id)
        if channel is None or channel.project_id != project_id:
            raise InvalidInput(
                f"no alert channel {channel_id} in this project; create it first or fix the id",
                field="channel_ids",
            )
    return unique


def _set_channels(*, session: Session, rule: AlertRule, channel_ids: list[uuid.UUID]) -> None:
    for link in session.exec(select(RuleChannel).where(RuleChannel.rule_id == rule.id)).all():
        session.delete(link)
    session.flush()
    for channel_id in channel_ids:
        session.add(RuleChannel(rule_id=rule.id, channel_id=channel_id))
    session.flush()


def rule_channel_ids(*, session: Session, rule_id: uuid.UUID) -> list[uuid.UUID]:
    """Return the ids of the channels a rule routes to."""
    query = select(RuleChannel.channel_id).where(RuleChannel.rule_id == rule_id)
    return list(session.exec(query).all())


def rule_view(*, session: Session, rule: AlertRule) -> dict[str, Any]:
    """Return the rule as a JSON-ready dict, with its channel ids."""
    return {
        "id": str(rule.id),
        "name": rule.name,
        "monitor_kinds": list(rule.monitor_kinds),
        "metrics": list(rule.metrics),
        "source_ids": list(rule.source_ids),
        "min_status": rule.min_status,
        "channel_ids": [str(c) for c in rule_channel_ids(session=session, rule_id=rule.id)],
        "enabled": rule.enabled,
        "created_at": rule.created_at.isoformat(),
        "created_by": rule.created_by,
    }


def _name_taken(*, session: Session, project_id: uuid.UUID, name: str) -> bool:
    query = select(AlertRule).where(AlertRule.project_id == project_id, AlertRule.name == name)
    return session.exec(query).first() is not None


def create_rule(
    *, session: Session, project_id: uuid.UUID, spec: RuleCreate, created_by: str
) -> AlertRule:
    """Create an alert rule routing to channels of the same project."""
    if _name_taken(session=session, project_id=project_id, name=spec.name):
        raise Conflict(f"an alert rule named {spec.name!r} exists; pick another name", field="name")
    channel_ids = _check_channels(
        session=session, project_id=project_id, channel_ids=spec.channel_ids
    )
    rule = AlertRule(
        project_id=project_id,
        name=spec.name,
        monitor_kinds=list(spec.monitor_kinds),
        metrics=list(spec.metrics),
        source_ids=list(spec.source_ids),
        min_status=spec.min_status,
        enabled=spec.enabled,
        created_by=created_by,
    )
    session.add(rule)
    session.flush()
    _set_channels(session=session, rule=rule, channel_ids=channel_ids)
    return rule


def get_rule(*, session: Session, project_id: uuid.UUID, rule_id: uuid.UUID) -> AlertRule:
    """Return the project's rule or raise :class:`NotFound`."""
    rule = session.get(AlertRule, rule_id)
    if rule is None or rule.project_id != project_id:
        raise NotFound(f"no alert rule {rule_id} in this project; list them first")
    return rule


def list_rules(
    *, session: Session, project_id: uuid.UUID, enabled_only: bool = False
) -> list[AlertRule]:
    """Return the project's rules ordered by name."""
    query = select(AlertRule).where(AlertRule.project_id == project_id)
    if enabled_only:
        query = query.where(AlertRule.enabled == True)  # noqa: E712
    query = query.order_by(col(AlertRule.name).asc())
    return list(session.exec(query).all())


def update_rule(
    *, session: Session, project_id: uuid.UUID, rule_id: uuid.UUID, change: RuleUpdate
) -> AlertRule:
    """Apply a change to a rule; open incidents keep their rule and follow the new filters."""
    rule = get_rule(session=session, project_id=project_id, rule_id=rule_id)
    if change.name is not None and change.name != rule.name:
        if _name_taken(session=session, project_id=project_id, name=change.name):
            raise Conflict(f"an alert rule named {change.name!r} exists", field="name")
        rule.name = change.name
    if change.monitor_kinds is not None:
        rule.monitor_kinds = list(change.monitor_kinds)
    if change.metrics is not None:
        rule.metrics = list(change.metrics)
    if change.source_ids is not None:
        rule.source_ids = list(change.source_ids)
    if change.min_status is not None:
        rule.min_status = change.min_status
    if change.enabled is not None:
        rule.enabled = change.enabled
    session.add(rule)
    session.flush()
    if change.channel_ids is not None:
        channel_ids = _check_channels(
            session=session, project_id=project_id, channel_ids=change.channel_ids
        )
        _set_channels(session=session, rule=rule, channel_ids=channel_ids)
    return rule


def delete_rule(*, session: Session, project_id: uuid.UUID, rule_id: uuid.UUID) -> AlertRule:
    """Delete a rule that has no incidents; disable it instead to keep its history."""
    rule = get_rule(session=session, project_id=project_id, rule_id=rule_id)
    name = rule.name
    try:
        with session.begin_nested():
            for link in session.exec(
                select(RuleChannel).where(RuleChannel.rule_id == rule.id)
            ).all():
                session.delete(link)
            session.flush()
            session.delete(rule)
    except sa.exc.IntegrityError as error:
        raise Conflict(
            f"alert rule {name!r} has incidents; disable it instead of deleting it",
        ) from error
    return rule
