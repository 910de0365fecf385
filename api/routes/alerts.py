"""Alerts over HTTP: channels, rules, deliveries and incidents.

Every route is under ``/api/v1/projects/{project}`` and gated: reading needs ``alert:read``,
changing channels and rules and re-sending needs ``alert:write``, acknowledging or resolving an
incident needs ``incident:ack``. The outbound allow-list (which switches the SSRF guard off for a
destination) is :mod:`api.routes.outbound`. Every change is audited in the request's
transaction. A webhook's signing secret is in the creation response and nowhere else.

Channel secrets are sealed with the key in ``<data dir>/keys/outbound.key`` (created on first
use, mode 0600); the worker opens them with the same file
(:func:`governance.delivery.deliver_due_now`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.pages import PageDep
from api.security import CurrentProject, require
from api.settings import Settings
from governance.actors import Actor
from governance.alerts import (
    RuleCreate,
    RuleUpdate,
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    rule_view,
    update_rule,
)
from governance.audit import act_then_audit
from governance.channels import (
    ChannelSpec,
    ChannelUpdate,
    SecretBox,
    create_channel,
    delete_channel,
    get_channel,
    list_channels,
    public_view,
    update_channel,
)
from governance.delivery import (
    Delivery,
    DeliveryState,
    build_event,
    delivery_view,
    enqueue,
    get_delivery,
    list_attempts,
    list_deliveries,
    resend,
)
from governance.incidents import (
    Incident,
    IncidentState,
    acknowledge_incident,
    get_incident,
    incident_view,
    page_incidents,
    resolve_incident,
)
from governance.outbound import (
    guard_for_project,
)
from governance.permissions import Permission
from lineage.errors import Conflict

__all__ = [
    "ChannelCreatedPublic",
    "ChannelPublic",
    "DeliveryPublic",
    "IncidentNoteRequest",
    "IncidentPublic",
    "RulePublic",
    "box_of",
    "outbound_key_path",
    "router",
    "secret_box",
]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["alerts"]
)

Reader = Annotated[Actor, Depends(require(Permission.ALERT_READ))]
Writer = Annotated[Actor, Depends(require(Permission.ALERT_WRITE))]
Acker = Annotated[Actor, Depends(require(Permission.INCIDENT_ACK))]


def outbound_key_path(settings: Settings) -> Path:
    """Return where the key sealing channel secrets lives (``WARDEN_OUTBOUND_KEY_PATH``)."""
    return settings.resolved_outbound_key_path()


def secret_box(settings: Settings) -> SecretBox:
    """Return the box sealing channel secrets (API and worker must share the key file)."""
    return SecretBox.from_key_file(outbound_key_path(settings))


def box_of(request: Request) -> SecretBox:
    """Return the app's box sealing channel secrets (loaded once, shared by API and dashboard)."""
    box = getattr(request.app.state, "secret_box", None)
    if not isinstance(box, SecretBox):
        box = secret_box(request.app.state.settings)
        request.app.state.secret_box = box
    return box


Box = Annotated[SecretBox, Depends(box_of)]


# --- public shapes ---------------------------------------------------------------------------


class ChannelPublic(BaseModel):
    """A channel as clients see it: never a secret (a Slack URL is shown masked)."""

    id: uuid.UUID
    name: str
    kind: Literal["webhook", "slack", "email"]
    enabled: bool
    config: dict[str, Any]
    created_at: datetime
    created_by: str


class ChannelCreatedPublic(BaseModel):
    """The answer to a channel creation; ``signing_secret`` is shown this once (webhooks)."""

    channel: ChannelPublic
    signing_secret: str | None = Field(
        description="The Standard Webhooks secret (whsec_…) to verify deliveries; store it now."
    )


class RulePublic(BaseModel):
    """An alert rule and the channels it routes to."""

    id: uuid.UUID
    name: str
    monitor_kinds: list[str]
    metrics: list[str]
    source_ids: list[str]
    min_status: Literal["warn", "alert"]
    channel_ids: list[uuid.UUID]
    enabled: bool
    created_at: datetime
    created_by: str


class AttemptPublic(BaseModel):
    """One attempt at a delivery."""

    number: int
    at: datetime
    outcome: str
    status_code: int | None
    duration_ms: float
    error: str


class DeliveryPublic(BaseModel):
    """A delivery of one event to one channel, with its attempts when read one by one."""

    id: uuid.UUID
    channel_id: uuid.UUID
    incident_id: uuid.UUID | None
    resent_from: uuid.UUID | None
    event_id: str
    event_type: str
    state: Literal["pending", "succeeded", "failed"]
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptPublic] | None = None


class IncidentPublic(BaseModel):
    """An incident: one continuing problem of one source under one rule."""

    id: uuid.UUID
    rule_id: uuid.UUID
    rule_name: str | None
    source_kind: str
    source_id: str
    state: Literal["open", "acknowledged", "resolved"]
    severity: str
    count: int
    first_seen_at: datetime
    last_seen_at: datetime
    last_run_id: str | None
    findings: list[dict[str, Any]]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    note: str


class IncidentNoteRequest(BaseModel):
    """An optional note with an acknowledgement or a resolution."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


# --- channels -------------------------------------------------------------------------------


@router.post("/alert-channels", status_code=status.HTTP_201_CREATED, summary="Create a channel")
def create_alert_channel(
    spec: ChannelSpec,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    box: Box,
) -> ChannelCreatedPublic:
    """Create a webhook, Slack or e-mail channel; the destination must pass the outbound guard."""
    channel, signing_secret = act_then_audit(
        lambda: create_channel(
            session=session,
            project_id=project.id,
            spec=spec,
            box=box,
            created_by=actor.name,
            check_target=guard_for_project(session=session, project_id=project.id),
        ),
        session=session,
        actor=actor,
        action="alert_channel.create",
        target=lambda made: f"alert_channel:{made[0].id}",
        detail=lambda made: {"name": made[0].name, "kind": made[0].kind, "config": made[0].config},
    )
    return ChannelCreatedPublic(
        channel=ChannelPublic.model_validate(public_view(channel)), signing_secret=signing_secret
    )


@router.get("/alert-channels", summary="List channels")
def list_alert_channels(
    _actor: Reader, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[ChannelPublic]:
    """Return the project's channels, without secrets, by name."""
    found = list_channels(session=session, project_id=project.id)
    return [
        ChannelPublic.model_validate(public_view(c))
        for c in page.answer_all(found, key_of=lambda c: (c.name, c.id))
    ]


@router.get("/alert-channels/{channel_id}", summary="Read a channel")
def read_alert_channel(
    channel_id: uuid.UUID, _actor: Reader, project: CurrentProject, session: SessionDep
) -> ChannelPublic:
    """Return one channel, without secrets."""
    channel = get_channel(session=session, project_id=project.id, channel_id=channel_id)
    return ChannelPublic.model_validate(public_view(channel))


@router.patch("/alert-channels/{channel_id}", summary="Rename or enable/disable a channel")
def change_alert_channel(
    channel_id: uuid.UUID,
    change: ChannelUpdate,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
) -> ChannelPublic:
    """Rename a channel or switch it on or off (recreate it to change its destination)."""
    before = public_view(get_channel(session=session, project_id=project.id, channel_id=channel_id))
    channel = act_then_audit(
        lambda: update_channel(
            session=session, project_id=project.id, channel_id=channel_id, change=change
        ),
        session=session,
        actor=actor,
        action="alert_channel.update",
        target=f"alert_channel:{channel_id}",
        detail=lambda changed: {
            "before": {"name": before["name"], "enabled": before["enabled"]},
            "after": {"name": changed.name, "enabled": changed.enabled},
        },
    )
    return ChannelPublic.model_validate(public_view(channel))


@router.delete(
    "/alert-channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an unused channel",
)
def delete_alert_channel(
    channel_id: uuid.UUID, actor: Writer, project: CurrentProject, session: SessionDep
) -> Response:
    """Delete a channel no rule uses and nothing was delivered to; otherwise disable it."""
    act_then_audit(
        lambda: delete_channel(session=session, project_id=project.id, channel_id=channel_id),
        session=session,
        actor=actor,
        action="alert_channel.delete",
        target=f"alert_channel:{channel_id}",
        detail=lambda gone: {"name": gone.name, "kind": gone.kind},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/alert-channels/{channel_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a test message",
)
def test_alert_channel(
    channel_id: uuid.UUID, actor: Writer, project: CurrentProject, session: SessionDep
) -> DeliveryPublic:
    """Queue an ``io.warden.test`` event to the channel, to check the receiver end to end."""
    channel = get_channel(session=session, project_id=project.id, channel_id=channel_id)
    event = build_event(
        project=project,
        event_type="io.warden.test",
        subject=f"alert-channels/{channel.id}",
        data={
            "title": f"Test message for channel {channel.name}",
            "summary": f"{actor.name} asked Warden to check this channel.",
        },
    )

    def queue_test() -> Delivery:
        queued = enqueue(
            session=session, project_id=project.id, channel_ids=[channel.id], event=event
        )
        if not queued:
            raise Conflict("the channel is disabled; enable it first", field="enabled")
        return queued[0]

    delivery = act_then_audit(
        queue_test,
        session=session,
        actor=actor,
        action="alert_channel.test",
        target=f"alert_channel:{channel.id}",
        detail=lambda queued: {"delivery_id": str(queued.id)},
    )
    return DeliveryPublic.model_validate(delivery_view(delivery))


# --- rules ----------------------------------------------------------------------------------


@router.post("/alert-rules", status_code=status.HTTP_201_CREATED, summary="Create a rule")
def create_alert_rule(
    spec: RuleCreate, actor: Writer, project: CurrentProject, session: SessionDep
) -> RulePublic:
    """Create a rule routing findings of a status (and kind, metric, source) to channels."""
    rule = act_then_audit(
        lambda: create_rule(
            session=session, project_id=project.id, spec=spec, created_by=actor.name
        ),
        session=session,
        actor=actor,
        action="alert_rule.create",
        target=lambda made: f"alert_rule:{made.id}",
        detail=lambda made: {"after": rule_view(session=session, rule=made)},
    )
    return RulePublic.model_validate(rule_view(session=session, rule=rule))


@router.get("/alert-rules", summary="List rules")
def list_alert_rules(
    _actor: Reader, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[RulePublic]:
    """Return the project's rules by name."""
    found = list_rules(session=session, project_id=project.id)
    return [
        RulePublic.model_validate(rule_view(session=session, rule=r))
        for r in page.answer_all(found, key_of=lambda r: (r.name, r.id))
    ]


@router.get("/alert-rules/{rule_id}", summary="Read a rule")
def read_alert_rule(
    rule_id: uuid.UUID, _actor: Reader, project: CurrentProject, session: SessionDep
) -> RulePublic:
    """Return one rule."""
    rule = get_rule(session=session, project_id=project.id, rule_id=rule_id)
    return RulePublic.model_validate(rule_view(session=session, rule=rule))


@router.patch("/alert-rules/{rule_id}", summary="Change a rule")
def change_alert_rule(
    rule_id: uuid.UUID,
    change: RuleUpdate,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
) -> RulePublic:
    """Change a rule's filters, channels or switch it on or off."""
    rule = get_rule(session=session, project_id=project.id, rule_id=rule_id)
    before = rule_view(session=session, rule=rule)
    rule = act_then_audit(
        lambda: update_rule(session=session, project_id=project.id, rule_id=rule_id, change=change),
        session=session,
        actor=actor,
        action="alert_rule.update",
        target=f"alert_rule:{rule_id}",
        detail=lambda changed: {
            "before": before,
            "after": rule_view(session=session, rule=changed),
        },
    )
    return RulePublic.model_validate(rule_view(session=session, rule=rule))


@router.delete(
    "/alert-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a rule"
)
def delete_alert_rule(
    rule_id: uuid.UUID, actor: Writer, project: CurrentProject, session: SessionDep
) -> Response:
    """Delete a rule that never opened an incident; otherwise disable it."""
    rule = get_rule(session=session, project_id=project.id, rule_id=rule_id)
    before = rule_view(session=session, rule=rule)
    act_then_audit(
        lambda: delete_rule(session=session, project_id=project.id, rule_id=rule_id),
        session=session,
        actor=actor,
        action="alert_rule.delete",
        target=f"alert_rule:{rule_id}",
        detail={"before": before},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- deliveries -----------------------------------------------------------------------------


@router.get("/deliveries", summary="List deliveries")
def list_alert_deliveries(
    _actor: Reader,
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
    state: DeliveryState | None = None,
    channel_id: uuid.UUID | None = None,
    incident_id: uuid.UUID | None = None,
) -> list[DeliveryPublic]:
    """Return deliveries, newest first, filtered by state, channel or incident."""
    found = list_deliveries(
        session=session,
        project_id=project.id,
        state=state,
        channel_id=channel_id,
        incident_id=incident_id,
        limit=page.limit,
        cursor=page.cursor,
    )
    return [DeliveryPublic.model_validate(delivery_view(d)) for d in page.answer(found)]


@router.get("/deliveries/{delivery_id}", summary="Read a delivery and its attempts")
def read_alert_delivery(
    delivery_id: uuid.UUID, _actor: Reader, project: CurrentProject, session: SessionDep
) -> DeliveryPublic:
    """Return one delivery with every attempt (time, outcome, status code, error)."""
    delivery = get_delivery(session=session, project_id=project.id, delivery_id=delivery_id)
    attempts = list_attempts(session=session, delivery_id=delivery.id)
    return DeliveryPublic.model_validate(delivery_view(delivery, attempts))


@router.post(
    "/deliveries/{delivery_id}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Re-send a delivery",
)
def resend_alert_delivery(
    delivery_id: uuid.UUID, actor: Writer, project: CurrentProject, session: SessionDep
) -> DeliveryPublic:
    """Queue the same event to the same channel again (same event id, fresh attempts)."""
    copy = act_then_audit(
        lambda: resend(session=session, project_id=project.id, delivery_id=delivery_id),
        session=session,
        actor=actor,
        action="delivery.resend",
        target=f"delivery:{delivery_id}",
        detail=lambda sent: {"new_delivery_id": str(sent.id), "event_id": sent.event_id},
    )
    return DeliveryPublic.model_validate(delivery_view(copy))


# --- incidents ------------------------------------------------------------------------------


def _incident(session: Session, incident: Incident) -> IncidentPublic:
    rule = get_rule(session=session, project_id=incident.project_id, rule_id=incident.rule_id)
    return IncidentPublic.model_validate(incident_view(incident, rule_name=rule.name))


@router.get("/incidents", summary="List incidents")
def list_alert_incidents(
    _actor: Reader,
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
    state: IncidentState | None = None,
) -> list[IncidentPublic]:
    """Return incidents, most recently seen first, optionally by state."""
    found = page_incidents(
        session=session, project_id=project.id, state=state, limit=page.limit, cursor=page.cursor
    )
    return [_incident(session, i) for i in page.answer(found)]


@router.get("/incidents/{incident_id}", summary="Read an incident")
def read_alert_incident(
    incident_id: uuid.UUID, _actor: Reader, project: CurrentProject, session: SessionDep
) -> IncidentPublic:
    """Return one incident with its latest findings."""
    return _incident(
        session, get_incident(session=session, project_id=project.id, incident_id=incident_id)
    )


@router.post("/incidents/{incident_id}/ack", summary="Acknowledge an incident")
def acknowledge_alert_incident(
    incident_id: uuid.UUID,
    actor: Acker,
    project: CurrentProject,
    session: SessionDep,
    body: IncidentNoteRequest | None = None,
) -> IncidentPublic:
    """Say you are on it (audited); the incident stays open and still resolves by itself."""
    incident = acknowledge_incident(
        session=session,
        actor=actor,
        project_id=project.id,
        incident_id=incident_id,
        note=body.note if body else "",
    )
    return _incident(session, incident)


@router.post("/incidents/{incident_id}/resolve", summary="Resolve an incident by hand")
def resolve_alert_incident(
    incident_id: uuid.UUID,
    actor: Acker,
    project: CurrentProject,
    session: SessionDep,
    body: IncidentNoteRequest | None = None,
) -> IncidentPublic:
    """Close an incident (audited); if its findings still fire, the next run opens a new one."""
    incident = resolve_incident(
        session=session,
        actor=actor,
        project_id=project.id,
        incident_id=incident_id,
        note=body.note if body else "",
    )
    return _incident(session, incident)
