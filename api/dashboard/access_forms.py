"""Project access, for its administrators: approval rules and role grants.

Each form calls the REST handler behind it (:func:`api.routes.approvals.set_rule`,
:func:`api.routes.projects.grant` and ``revoke``), so separation of duties (no one grants
themselves a role) and the audit are the API's. A grant names the person by name; the page
shows names, never bare principal ids.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.dashboard.forms import errors_of, form_gate, status_of
from api.dashboard.rendering import _render, router
from api.deps import EngineDep, SessionDep
from api.routes import approvals as approval_routes
from api.routes import projects as project_routes
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.approvals import ApprovalAction, carried_out_actions, rule_settings
from governance.identity import Principal, get_principal_by_name
from governance.permissions import Permission
from governance.roles import Role, list_grants
from lineage.errors import WardenError
from lineage.projects import Project

_SAVED = {"rule": "Approval rule saved.", "granted": "Role granted.", "revoked": "Role revoked."}

Admin = Annotated[Actor, Depends(form_gate(Permission.PROJECT_ADMIN))]


def _page(
    request: Request,
    actor: Actor,
    session: Session,
    project: Project,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    grants = list_grants(session=session, project_id=project.id)
    people = {g.principal_id: session.get(Principal, g.principal_id) for g in grants}
    return _render(
        request,
        "access.html",
        actor,
        session,
        status_code=status_code,
        project=project,
        rules=[
            rule_settings(session=session, project_id=project.id, action=a) for a in ApprovalAction
        ],
        carried_out={a.value for a in carried_out_actions()},
        grants=[(g, people[g.principal_id]) for g in grants],
        roles=[(r.value, r.value) for r in Role],
        values=values or {"role": Role.VIEWER.value},
        errors=errors or {},
        saved=saved,
    )


@router.get("/p/{project}/access")
def access_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_ADMIN))],
    project: CurrentProject,
    session: SessionDep,
    saved: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """Show the approval rules and who holds which role, with the forms to change them."""
    return _page(request, actor, session, project, saved=_SAVED.get(saved or ""))


def _back(project: Project, saved: str) -> RedirectResponse:
    return RedirectResponse(f"/p/{quote(project.name)}/access?saved={saved}", status_code=303)


@router.post("/p/{project}/access/approval-rules/{action}", response_model=None)
def set_approval_rule_form(
    request: Request,
    action: ApprovalAction,
    actor: Admin,
    project: CurrentProject,
    session: SessionDep,
    required_approvers: Annotated[int, Form(ge=1)],
    carry_out: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Set how many approvers ``action`` needs (and who carries it out) via the REST handler."""
    try:
        body = approval_routes.ApprovalRuleUpdate.model_validate(
            {"required_approvers": required_approvers, "carry_out": carry_out or None}
        )
        approval_routes.set_rule(action=action, body=body, actor=actor, session=session)
    except (ValidationError, WardenError) as error:
        session.rollback()
        errors = errors_of(error, {"required_approvers": "rule", "carry_out": "rule"})
        return _page(request, actor, session, project, errors=errors, status_code=status_of(error))
    return _back(project, "rule")


@router.post("/p/{project}/access/grants", response_model=None)
def grant_form(
    request: Request,
    actor: Admin,
    project: CurrentProject,
    engine: EngineDep,
    session: SessionDep,
    person: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Grant a role to the person named (the REST handler: never to oneself)."""
    try:
        principal = get_principal_by_name(session=session, name=person.strip())
        body = project_routes.GrantCreate.model_validate(
            {"principal_id": principal.id, "role": role}
        )
        project_routes.grant(
            body=body, actor=actor, project=project, engine=engine, session=session
        )
    except (ValidationError, WardenError) as error:
        session.rollback()
        errors = errors_of(error, {"role": "role", "principal_id": "person", "": "person"})
        return _page(
            request,
            actor,
            session,
            project,
            values={"person": person, "role": role},
            errors=errors,
            status_code=status_of(error),
        )
    return _back(project, "granted")


@router.post("/p/{project}/access/grants/{grant_id}/revoke", response_model=None)
def revoke_form(
    grant_id: uuid.UUID, actor: Admin, project: CurrentProject, session: SessionDep
) -> Response:
    """Withdraw a role grant (the REST handler)."""
    project_routes.revoke(grant_id=grant_id, actor=actor, project=project, session=session)
    return _back(project, "revoked")
