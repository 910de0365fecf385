"""Incidents, the approvals inbox (and deciding), and the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.dashboard.audit_names import target_names
from api.dashboard.forms import form_gate
from api.dashboard.rendering import (
    _AUDIT_PAGE,
    _render,
    router,
)
from api.deps import EngineDep, SessionDep
from api.routes.approvals import decide_and_carry_out
from api.routes.audit import get_signer
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.approvals import (
    ApprovalRequest,
    decisions_of,
    list_requests,
    pending_for,
)
from governance.audit import AuditFilter, Outcome, list_entries
from governance.audit_export import readable_project_ids, verify_store
from governance.incidents import list_incidents
from governance.permissions import Permission
from lineage.errors import InvalidInput, NotFound
from lineage.model_versions import get_model_version_by_id
from lineage.models import VersionKind
from lineage.projects import Project
from lineage.store import session_scope


@router.get("/p/{project}/incidents")
def incidents_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.ALERT_READ))],
    project: CurrentProject,
    session: SessionDep,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """List incidents (open first by recency) with their latest findings."""
    open_only = state != "all"
    incidents = list_incidents(
        session=session, project_id=project.id, open_only=open_only, limit=200
    )
    return _render(
        request,
        "incidents.html",
        actor,
        session,
        project=project,
        incidents=incidents,
        open_only=open_only,
    )


def _target(session: Session, project: Project, request: ApprovalRequest) -> tuple[str, str | None]:
    """Name a request's target for people (``income v2``, linked) instead of its raw id."""
    if request.target_kind == "model_version":
        try:
            version = get_model_version_by_id(
                session=session,
                project_id=project.id,
                model_version_id=uuid.UUID(request.target_id),
            )
        except (ValueError, NotFound):
            pass
        else:
            area = "prompts" if version.kind == VersionKind.PROMPT else "models"
            href = (
                f"/p/{quote(project.name)}/{area}/{quote(version.name)}"
                f"/versions/{quote(version.version)}"
            )
            return f"{version.name} v{version.version}", href
    return f"{request.target_kind} {request.target_id}", None


def _approval_rows(
    session: Session, project: Project, requests: list[ApprovalRequest]
) -> list[dict[str, Any]]:
    rows = []
    for request in requests:
        label, href = _target(session, project, request)
        rows.append(
            {
                "request": request,
                "decisions": decisions_of(session=session, approval_id=request.id),
                "label": label,
                "href": href,
            }
        )
    return rows


@router.get("/p/{project}/approvals")
def approvals_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_READ))],
    project: CurrentProject,
    session: SessionDep,
    decided: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """Show what awaits my decision (with approve / reject forms) and every recent request."""
    mine = pending_for(session=session, actor=actor)
    everything = list_requests(session=session, project_id=project.id)[:100]
    return _render(
        request,
        "approvals.html",
        actor,
        session,
        project=project,
        mine=_approval_rows(session, project, mine),
        everything=_approval_rows(session, project, everything),
        decided=decided if decided in ("approved", "rejected") else None,
    )


@router.post("/p/{project}/approvals/{approval_id}", response_model=None)
def decide_approval(
    request: Request,
    approval_id: uuid.UUID,
    actor: Annotated[Actor, Depends(form_gate(Permission.APPROVAL_DECIDE))],
    project: CurrentProject,
    engine: EngineDep,
    session: SessionDep,
    decision: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve or reject a pending request; a reason is required and kept in the audit log."""
    if decision not in ("approve", "reject"):
        raise InvalidInput("choose 'approve' or 'reject'", field="decision")
    if not reason.strip():
        raise InvalidInput(
            "give a reason for your decision; it is kept in the audit log", field="reason"
        )
    approve = decision == "approve"
    decide_and_carry_out(
        http=request,
        engine=engine,
        session=session,
        actor=actor,
        approval_id=approval_id,
        approve=approve,
        reason=reason,
    )
    done = "approved" if approve else "rejected"
    return RedirectResponse(f"/p/{quote(project.name)}/approvals?decided={done}", status_code=303)


@router.get("/p/{project}/audit")
def audit_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.AUDIT_READ))],
    project: CurrentProject,
    engine: EngineDep,
    who: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=300)] = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    after: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """Search the project's audit entries (paginated by cursor) and show the chain's state.

    The chain is verified first, outside the page's transaction: verification reads in
    batches of its own, and on SQLite an open transaction would hold the one write lock.
    """
    if outcome and outcome not in set(Outcome):
        raise InvalidInput(f"outcome must be one of {', '.join(sorted(Outcome))}", field="outcome")
    report = verify_store(engine=engine, public_key=get_signer(request).public_key)
    query = {
        key: value
        for key, value in {
            "who": who,
            "action": action,
            "target": target,
            "outcome": outcome,
        }.items()
        if value
    }
    with session_scope(engine) as session:
        where = AuditFilter(
            project_ids=readable_project_ids(session=session, actor=actor),
            project_id=project.id,
            actor=who or None,
            action=action or None,
            target=target or None,
            outcome=Outcome(outcome) if outcome else None,
            after_seq=after,
        )
        entries = list_entries(session=session, where=where, limit=_AUDIT_PAGE + 1)
        more = len(entries) > _AUDIT_PAGE
        entries = entries[:_AUDIT_PAGE]
        next_url = f"?{urlencode({**query, 'after': entries[-1].seq})}" if more else None
        return _render(
            request,
            "audit.html",
            actor,
            session,
            project=project,
            entries=entries,
            next_url=next_url,
            first_url=f"?{urlencode(query)}" if after else None,
            filters=query,
            outcomes=sorted(Outcome),
            verify=report,
            names=target_names(
                session=session, project=project, targets=[e.target for e in entries]
            ),
        )
