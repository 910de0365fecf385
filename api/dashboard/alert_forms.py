"""Alert authoring: channels (webhook, Slack, e-mail) and the rules routing findings to them.

Each form becomes the REST body (:data:`governance.channels.ChannelSpec`, ``ChannelUpdate``,
``RuleCreate``, ``RuleUpdate``) handed to the REST handlers of :mod:`api.routes.alerts`, so the
outbound guard, the sealing of secrets and the audit are the API's. A new webhook's signing
secret is shown on the page that answers the creation, once, and never again.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session

from api.dashboard.forms import errors_of, form_fields, form_gate, lines, status_of
from api.dashboard.rendering import _render, router
from api.deps import SessionDep
from api.routes import alerts as alert_routes
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.alerts import RuleCreate, RuleUpdate, get_rule, list_rules, rule_view
from governance.channels import ChannelSpec, ChannelUpdate, list_channels, public_view
from governance.permissions import Permission
from lineage.errors import WardenError
from lineage.projects import Project
from monitors.schedules import list_monitors
from monitors.spec import Kind

_CHANNEL_FIELDS = (
    "kind",
    "name",
    "url",
    "smtp_host",
    "smtp_port",
    "security",
    "username",
    "password",
    "sender",
    "recipients",
)
"""The channel form's fields, posted as ``c_<field>`` (the rule form has a ``name`` too)."""
_CHANNEL_ERRORS = {name: f"c_{name}" for name in _CHANNEL_FIELDS}
_RULE_ERRORS = {
    name: name
    for name in ("name", "metrics", "monitor_kinds", "source_ids", "min_status", "channel_ids")
}
_SAVED = {
    "channel-changed": "Channel changed.",
    "rule-created": "Rule created.",
    "rule-changed": "Rule changed.",
}
_CHANNEL_SPEC: TypeAdapter[Any] = TypeAdapter(ChannelSpec)

Writer = Annotated[Actor, Depends(form_gate(Permission.ALERT_WRITE))]
ChannelForm = Annotated[
    dict[str, str], Depends(form_fields(*(f"c_{name}" for name in _CHANNEL_FIELDS)))
]


def _rule_values(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "metrics": ", ".join(view["metrics"])}


def _page(
    request: Request,
    actor: Actor,
    session: Session,
    project: Project,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    rule_id: uuid.UUID | None = None,
    secret: str | None = None,
    saved: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Draw the alerts page: channels, rules, and the forms (a rule's when editing it)."""
    channels = list_channels(session=session, project_id=project.id)
    names = {str(c.id): c.name for c in channels}
    monitors = list_monitors(session=session, project_id=project.id)
    rules = [
        rule_view(session=session, rule=r)
        for r in list_rules(session=session, project_id=project.id)
    ]
    editing = next((r for r in rules if r["id"] == str(rule_id)), None) if rule_id else None
    return _render(
        request,
        "alerts.html",
        actor,
        session,
        status_code=status_code,
        project=project,
        channels=[public_view(c) for c in channels],
        channel_names=names,
        monitor_names={str(m.id): m.name for m in monitors},
        rules=rules,
        editing=editing,
        values=values
        or (_rule_values(editing) if editing else {"min_status": "alert", "c_kind": "webhook"}),
        errors=errors or {},
        kinds=[k.value for k in Kind],
        secret=secret,
        saved=saved,
    )


@router.get("/p/{project}/alerts")
def alerts_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.ALERT_READ))],
    project: CurrentProject,
    session: SessionDep,
    saved: Annotated[str | None, Query(max_length=32)] = None,
    rule: uuid.UUID | None = None,
) -> HTMLResponse:
    """Show channels and rules; writers get the forms (``?rule=<id>`` edits that rule)."""
    if rule is not None:
        get_rule(session=session, project_id=project.id, rule_id=rule)
    return _page(request, actor, session, project, rule_id=rule, saved=_SAVED.get(saved or ""))


def _channel_body(posted: dict[str, str]) -> dict[str, Any]:
    form = {name.removeprefix("c_"): value for name, value in posted.items()}
    body: dict[str, Any] = {"kind": form["kind"], "name": form["name"].strip()}
    if form["kind"] in ("webhook", "slack"):
        body["url"] = form["url"].strip()
    else:
        body.update(
            smtp_host=form["smtp_host"].strip(),
            smtp_port=form["smtp_port"].strip() or 587,
            security=form["security"] or "starttls",
            username=form["username"].strip() or None,
            password=form["password"] or None,
            sender=form["sender"].strip(),
            recipients=lines(form["recipients"]),
        )
    return body


@router.post("/p/{project}/alerts/channels", response_model=None)
def create_channel_form(
    request: Request,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    form: ChannelForm,
) -> Response:
    """Create a channel (the REST handler); show a webhook's signing secret this once."""
    try:
        made = alert_routes.create_alert_channel(
            spec=_CHANNEL_SPEC.validate_python(_channel_body(form)),
            actor=actor,
            project=project,
            session=session,
            box=alert_routes.box_of(request),
        )
    except (ValidationError, WardenError) as error:
        session.rollback()
        shown = {k: v for k, v in form.items() if k != "c_password"}  # never echo a secret
        return _page(
            request,
            actor,
            session,
            project,
            values=shown,
            errors=errors_of(error, _CHANNEL_ERRORS),
            status_code=status_of(error),
        )
    session.commit()  # the page below reads the new channel back
    return _page(
        request,
        actor,
        session,
        project,
        secret=made.signing_secret,
        saved=f"Channel {made.channel.name} created.",
        status_code=201,
    )


@router.post("/p/{project}/alerts/channels/{channel_id}", response_model=None)
def change_channel_form(
    channel_id: uuid.UUID,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    enabled: Annotated[bool, Form()],
) -> Response:
    """Switch a channel on or off (the REST handler)."""
    alert_routes.change_alert_channel(
        channel_id=channel_id,
        change=ChannelUpdate(enabled=enabled),
        actor=actor,
        project=project,
        session=session,
    )
    return RedirectResponse(
        f"/p/{quote(project.name)}/alerts?saved=channel-changed", status_code=303
    )


def _rule_body(
    name: str,
    min_status: str,
    metrics: str,
    monitor_kinds: list[str],
    source_ids: list[str],
    channel_ids: list[str],
    enabled: bool,
) -> dict[str, Any]:
    return {
        "name": name.strip(),
        "min_status": min_status,
        "metrics": lines(metrics),
        "monitor_kinds": monitor_kinds,
        "source_ids": source_ids,
        "channel_ids": channel_ids,
        "enabled": enabled,
    }


@router.post("/p/{project}/alerts/rules", response_model=None)
def save_rule_form(
    request: Request,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
    min_status: Annotated[str, Form(max_length=10)] = "alert",
    metrics: Annotated[str, Form(max_length=4000)] = "",
    monitor_kinds: Annotated[list[str] | None, Form()] = None,
    source_ids: Annotated[list[str] | None, Form()] = None,
    channel_ids: Annotated[list[str] | None, Form()] = None,
    enabled: Annotated[bool, Form()] = False,
    rule_id: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """Create a rule, or change the one named by ``rule_id`` (the REST handlers)."""
    body = _rule_body(
        name, min_status, metrics, monitor_kinds or [], source_ids or [], channel_ids or [], enabled
    )
    try:
        if rule_id is None:
            alert_routes.create_alert_rule(
                spec=RuleCreate.model_validate(body), actor=actor, project=project, session=session
            )
        else:
            alert_routes.change_alert_rule(
                rule_id=rule_id,
                change=RuleUpdate.model_validate(body),
                actor=actor,
                project=project,
                session=session,
            )
    except (ValidationError, WardenError) as error:
        session.rollback()
        return _page(
            request,
            actor,
            session,
            project,
            values={**body, "metrics": metrics},
            rule_id=rule_id,
            errors=errors_of(error, _RULE_ERRORS),
            status_code=status_of(error),
        )
    done = "rule-created" if rule_id is None else "rule-changed"
    return RedirectResponse(f"/p/{quote(project.name)}/alerts?saved={done}", status_code=303)
