"""Incidents, the approvals inbox (and deciding), and the audit log."""

from __future__ import annotations

import contextlib
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
    decisions_of_all,
    page_requests,
    pending_for,
)
from governance.audit import AuditFilter, Outcome, list_entries
from governance.audit_export import readable_project_ids
from governance.audit_verify import verify_store
from governance.incidents import page_incidents
from governance.permissions import Permission
from lineage.errors import InvalidInput
from lineage.model_versions import get_model_versions_by_id
from lineage.models import VersionKind
from lineage.projects import Project
from lineage.store import session_scope

_INCIDENTS_PAGE = 100
"""Incidents per page of the incidents list."""
_APPROVALS_PAGE = 50
"""Requests per page of the approvals inbox's list of all requests."""


@router.get("/p/{project}/incidents")
def incidents_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.ALERT_READ))],
    project: CurrentProject,
    session: SessionDep,
    state: Annotated[str | None, Query(max_length=20)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """List incidents (most recently seen first) with their latest findings, a page at a time."""
    open_only = state != "all"
    page = page_incidents(
        session=session,
        project_id=project.id,
        open_only=open_only,
        limit=_INCIDENTS_PAGE,
        cursor=cursor or None,
    )
    here = f"/p/{quote(project.name)}/incidents"
    kept = {} if open_only else {"state": "all"}
    return _render(
        request,
        "incidents.html",
        actor,
        session,
        project=project,
        incidents=page.items,
        older=f"{here}?{urlencode({**kept, 'cursor': page.next_cursor})}"
        if page.next_cursor
        else None,
        newest=f"{here}?{urlencode(kept)}" if cursor else None,
        open_only=open_only,
    )


def _approval_rows(
    session: Session, project: Project, requests: list[ApprovalRequest]
) -> list[dict[str, Any]]:
    """Rows for the inbox: each request's decisions and its target named for people.

    Two queries for any number of requests (decisions, then the model versions targeted).
    """
    decisions = decisions_of_all(session=session, approval_ids=[r.id for r in requests])
    targeted: dict[uuid.UUID, uuid.UUID] = {}
    for request in requests:
        if request.target_kind == "model_version":
            with contextlib.suppress(ValueError):  # a malformed id is shown as it is
                targeted[request.id] = uuid.UUID(request.target_id)
    versions = get_model_versions_by_id(
        session=session, project_id=project.id, ids=targeted.values()
    )
    rows = []
    for request in requests:
        label, href = f"{request.target_kind} {request.target_id}", None
        version = versions.get(targeted[request.id]) if request.id in targeted else None
        if version is not None:  # named for people (``income v2``, linked), not its raw id
            area = "prompts" if version.kind == VersionKind.PROMPT else "models"
            label = f"{version.name} v{version.version}"
            href = (
                f"/p/{quote(project.name)}/{area}/{quote(version.name)}"
                f"/versions/{quote(version.version)}"
            )
        rows.append(
            {
                "request": request,
                "decisions": decisions.get(request.id, []),
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
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """Show what awaits my decision (with approve / reject forms) and every request by page."""
    mine = pending_for(session=session, actor=actor)
    here = f"/p/{quote(project.name)}/approvals"
    page = page_requests(
        session=session, project_id=project.id, limit=_APPROVALS_PAGE, cursor=cursor or None
    )
    return _render(
        request,
        "approvals.html",
        actor,
        session,
        project=project,
        mine=_approval_rows(session, project, mine),
        everything=_approval_rows(session, project, page.items),
        older=f"{here}?{urlencode({'cursor': page.next_cursor})}" if page.next_cursor else None,
        newest=here if cursor else None,
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
