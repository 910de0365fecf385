"""Policy authoring: list policies, write a new one or a new version, dry-run it before saving.

The editor posts the document's text to the REST handlers of :mod:`api.routes.policies`
(create, add a version, enable/disable), so the service, approval rule and audit are the API's.
A refused document is shown again with its error at its line
(:func:`governance.policy_language.error_line`). "Dry-run" evaluates the text as written on the
project's recent findings (:func:`governance.decisions.replay`, the API's dry-run) and saves
nothing; a new version of an existing policy honours that policy's cooldowns.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api.dashboard.forms import FORM_ERROR, form_fields, form_gate, status_of
from api.dashboard.rendering import _render, router
from api.deps import SessionDep
from api.routes import policies as policy_routes
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.decisions import PolicyDecision, replay
from governance.permissions import Permission
from governance.policies import Policy, get_policy, get_version, list_policies, list_versions
from governance.policy_evaluation import PolicyRef
from governance.policy_language import error_line, load_source, parse_document
from lineage.errors import InvalidInput, WardenError
from lineage.projects import Project
from lineage.tables import utcnow

_DRY_RUN_RUNS = 20
"""How many of the project's latest monitor runs a dry-run judges."""

_EXAMPLE = """\
description: Alert and retrain when the income model drifts
rules:
  - name: retrain-on-drift
    scope: {model: income}
    when: {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
    consecutive_runs: 1
    cooldown_seconds: 21600
    actions:
      - {type: alert}
"""

Writer = Annotated[Actor, Depends(form_gate(Permission.POLICY_WRITE))]
Reader = Annotated[Actor, Depends(form_gate(Permission.POLICY_READ))]
EditorForm = Annotated[dict[str, str], Depends(form_fields("name", "source", "reason"))]


def _numbered(source: str, bad: int | None) -> list[tuple[int, str, bool]]:
    return [(n, text, n == bad) for n, text in enumerate(source.splitlines(), start=1)]


def _editor(
    request: Request,
    actor: Actor,
    session: Session,
    project: Project,
    *,
    policy: Policy | None,
    values: dict[str, str],
    error: WardenError | None = None,
    dry_run: dict[str, Any] | None = None,
    saved: str | None = None,
) -> HTMLResponse:
    """Draw the policy page (an existing policy) or the new-policy page, with the editor."""
    line = None
    errors: dict[str, str] = {}
    if error is not None:
        if isinstance(error, InvalidInput):
            line = error_line(values.get("source", ""), error)
        field = "name" if error.field == "name" else ("source" if line else FORM_ERROR)
        where = f"line {line}: " if line and f"line {line}," not in error.detail else ""
        errors[field] = f"{where}{error.detail}"
    versions = list_versions(session=session, policy=policy) if policy else []
    decisions = (
        session.exec(
            select(PolicyDecision)
            .where(PolicyDecision.policy_id == policy.id)
            .order_by(col(PolicyDecision.decided_at).desc())
            .limit(20)
        ).all()
        if policy
        else []
    )
    return _render(
        request,
        "policy.html",
        actor,
        session,
        status_code=status_of(error) if error is not None else 200,
        project=project,
        policy=policy,
        versions=list(reversed(versions)),
        decisions=decisions,
        values=values,
        errors=errors,
        error_line=line,
        numbered=_numbered(values.get("source", ""), line) if (line or dry_run) else [],
        dry_run=dry_run,
        saved=saved,
    )


@router.get("/p/{project}/policies")
def policies_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.POLICY_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """List the project's policies: which version decides, whether it is on."""
    policies = list_policies(session=session, project_id=project.id)
    return _render(request, "policies.html", actor, session, project=project, policies=policies)


@router.get("/p/{project}/policies/new")
def new_policy_form(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.POLICY_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show the editor for a new policy, with an example document."""
    values = {"name": "", "source": _EXAMPLE, "reason": ""}
    return _editor(request, actor, session, project, policy=None, values=values)


@router.post("/p/{project}/policies/new", response_model=None)
def create_policy_form(
    request: Request,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    form: EditorForm,
) -> Response:
    """Store the policy and its first version (the REST handler)."""
    try:
        body = policy_routes.PolicyCreate(
            name=form["name"].strip(), source=form["source"], reason=form["reason"]
        )
        made = policy_routes.create(body=body, actor=actor, project=project, session=session)
    except ValidationError as invalid:  # the name's pattern
        session.rollback()
        error = InvalidInput(
            f"name: {invalid.errors()[0]['msg']} (lower case, digits, . _ -)", field="name"
        )
        return _editor(request, actor, session, project, policy=None, values=form, error=error)
    except WardenError as error:
        session.rollback()
        return _editor(request, actor, session, project, policy=None, values=form, error=error)
    return RedirectResponse(
        f"/p/{quote(project.name)}/policies/{made.id}?saved=created", status_code=303
    )


@router.post("/p/{project}/policies/dry-run", response_model=None)
def dry_run_policy_form(
    request: Request,
    actor: Reader,
    project: CurrentProject,
    session: SessionDep,
    form: EditorForm,
    policy_id: Annotated[uuid.UUID | None, Form()] = None,
) -> HTMLResponse:
    """Evaluate the text as written on the project's recent findings; save nothing."""
    policy = (
        get_policy(session=session, project_id=project.id, policy_id=policy_id)
        if policy_id
        else None
    )
    try:
        document = parse_document(load_source(form["source"]))
    except InvalidInput as error:
        return _editor(request, actor, session, project, policy=policy, values=form, error=error)
    ref = PolicyRef(
        policy_id=policy.id if policy else uuid.UUID(int=0),
        name=policy.name if policy else form["name"].strip() or "draft",
        version=(policy.latest_version + 1) if policy else 1,
        document=document,
    )
    judged, decisions = replay(
        session=session,
        project_id=project.id,
        policy=ref,
        now=utcnow(),
        last_runs=_DRY_RUN_RUNS,
        with_cooldowns=policy is not None,
    )
    result = {"runs": judged, "decisions": [d.to_dict() for d in decisions]}
    return _editor(request, actor, session, project, policy=policy, values=form, dry_run=result)


@router.get("/p/{project}/policies/{policy_id}")
def policy_page(
    request: Request,
    policy_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.POLICY_READ))],
    project: CurrentProject,
    session: SessionDep,
    saved: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """Show a policy: its versions, recent decisions, and (for writers) the editor."""
    policy = get_policy(session=session, project_id=project.id, policy_id=policy_id)
    latest = get_version(session=session, policy=policy, version=policy.latest_version)
    values = {"name": policy.name, "source": latest.source, "reason": ""}
    shown = saved if saved in ("created", "versioned", "enabled", "disabled") else None
    return _editor(request, actor, session, project, policy=policy, values=values, saved=shown)


@router.post("/p/{project}/policies/{policy_id}/versions", response_model=None)
def add_policy_version_form(
    request: Request,
    policy_id: uuid.UUID,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    form: EditorForm,
) -> Response:
    """Store a new version (the REST handler): active at once, or pending an approval."""
    try:
        policy_routes.create_version(
            policy_id=policy_id,
            body=policy_routes.VersionCreate(source=form["source"], reason=form["reason"]),
            actor=actor,
            project=project,
            session=session,
        )
    except WardenError as error:
        session.rollback()
        policy = get_policy(session=session, project_id=project.id, policy_id=policy_id)
        return _editor(request, actor, session, project, policy=policy, values=form, error=error)
    return RedirectResponse(
        f"/p/{quote(project.name)}/policies/{policy_id}?saved=versioned", status_code=303
    )


@router.post("/p/{project}/policies/{policy_id}/enabled", response_model=None)
def set_policy_enabled_form(
    policy_id: uuid.UUID,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    enabled: Annotated[bool, Form()],
) -> Response:
    """Turn the policy on or off (the REST handler)."""
    policy_routes.update(
        policy_id=policy_id,
        body=policy_routes.PolicyUpdate(enabled=enabled),
        actor=actor,
        project=project,
        session=session,
    )
    state = "enabled" if enabled else "disabled"
    return RedirectResponse(
        f"/p/{quote(project.name)}/policies/{policy_id}?saved={state}", status_code=303
    )
