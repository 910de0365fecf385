"""Approval requests and decisions, and how many approvers each action needs.

Requesting needs ``approval:request``; deciding needs ``approval:decide`` *and* passing the
separation-of-duty rules of :mod:`governance.approvals` (a refusal by a duty rule is a 403 and is
audited in its own transaction, like every denial). ``GET …/approvals?for_me=true`` lists what
the caller may still decide.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import EngineDep, SessionDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.approvals import (
    MAX_REQUIRED_APPROVERS,
    ApprovalAction,
    ApprovalDecision,
    ApprovalRequest,
    ApprovalStatus,
    decide,
    decisions_of,
    get_request,
    list_requests,
    list_rules,
    pending_for,
    request_approval,
    set_required_approvers,
)
from governance.audit import append_in_own_transaction
from governance.permissions import Permission
from lineage.errors import PermissionDenied

__all__ = [
    "ApprovalCreate",
    "ApprovalDecisionCreate",
    "ApprovalDecisionPublic",
    "ApprovalPublic",
    "ApprovalRuleUpdate",
    "router",
]

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["approvals"])


class ApprovalCreate(BaseModel):
    """Ask for approval: what to do, to what, and why; who may not decide it besides you."""

    model_config = ConfigDict(extra="forbid")

    action: ApprovalAction
    target_kind: str = Field(min_length=1, max_length=64)
    target_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    barred_principal_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=100,
        description="Principals who must not decide, e.g. the trainer and the registrar.",
    )


class ApprovalDecisionCreate(BaseModel):
    """An approver's reason for approving or rejecting (required, kept in the audit log)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class ApprovalRuleUpdate(BaseModel):
    """How many distinct approvers an action needs in this project."""

    model_config = ConfigDict(extra="forbid")

    required_approvers: int = Field(ge=1, le=MAX_REQUIRED_APPROVERS)


class ApprovalDecisionPublic(BaseModel):
    """One approver's decision."""

    principal_id: uuid.UUID
    principal_name: str
    approve: bool
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, decision: ApprovalDecision) -> ApprovalDecisionPublic:
        """Build the public view of a stored decision."""
        return cls(
            principal_id=decision.principal_id,
            principal_name=decision.principal_name,
            approve=decision.approve,
            reason=decision.reason,
            created_at=decision.created_at,
        )


class ApprovalPublic(BaseModel):
    """An approval request, its state and its decisions."""

    id: uuid.UUID
    action: ApprovalAction
    target_kind: str
    target_id: str
    reason: str
    requested_by_id: uuid.UUID | None
    requested_by_name: str
    barred_principal_ids: list[uuid.UUID]
    required_approvals: int
    status: ApprovalStatus
    created_at: datetime
    decided_at: datetime | None
    decisions: list[ApprovalDecisionPublic]

    @classmethod
    def of(cls, request: ApprovalRequest, decisions: list[ApprovalDecision]) -> ApprovalPublic:
        """Build the public view of a stored request and its decisions."""
        return cls(
            id=request.id,
            action=ApprovalAction(request.action),
            target_kind=request.target_kind,
            target_id=request.target_id,
            reason=request.reason,
            requested_by_id=request.requested_by_id,
            requested_by_name=request.requested_by_name,
            barred_principal_ids=[uuid.UUID(i) for i in request.barred_principal_ids],
            required_approvals=request.required_approvals,
            status=ApprovalStatus(request.status),
            created_at=request.created_at,
            decided_at=request.decided_at,
            decisions=[ApprovalDecisionPublic.of(d) for d in decisions],
        )


def _public(session: SessionDep, request: ApprovalRequest) -> ApprovalPublic:
    return ApprovalPublic.of(request, decisions_of(session=session, approval_id=request.id))


@router.post("/approvals", status_code=status.HTTP_201_CREATED)
def create(
    body: ApprovalCreate,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_REQUEST))],
    session: SessionDep,
) -> ApprovalPublic:
    """Request approval for a promotion, redeployment, rollback or policy change."""
    request = request_approval(
        session=session,
        actor=actor,
        action=body.action,
        target_kind=body.target_kind,
        target_id=body.target_id,
        reason=body.reason,
        barred=body.barred_principal_ids,
    )
    return _public(session, request)


@router.get("/approvals")
def list_all(
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_READ))],
    project: CurrentProject,
    session: SessionDep,
    status: ApprovalStatus | None = None,
    for_me: Annotated[bool, Query(description="Only what I may still decide.")] = False,
) -> list[ApprovalPublic]:
    """List the project's approval requests, newest first (or only those awaiting me)."""
    if for_me:
        found = pending_for(session=session, actor=actor)
    else:
        found = list_requests(session=session, project_id=project.id, status=status)
    return [_public(session, r) for r in found]


@router.get("/approvals/{approval_id}", dependencies=[Depends(require(Permission.PROJECT_READ))])
def read(approval_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> ApprovalPublic:
    """Return one approval request with its decisions."""
    return _public(
        session, get_request(session=session, project_id=project.id, approval_id=approval_id)
    )


def _decide(
    *,
    engine: EngineDep,
    session: SessionDep,
    actor: Actor,
    approval_id: uuid.UUID,
    approve: bool,
    reason: str,
) -> ApprovalPublic:
    try:
        request = decide(
            session=session, actor=actor, approval_id=approval_id, approve=approve, reason=reason
        )
    except PermissionDenied as error:
        session.rollback()  # release the request's transaction (SQLite's write lock) first
        append_in_own_transaction(
            engine=engine,
            actor=actor,
            action="approval.approve" if approve else "approval.reject",
            target=f"approval:{approval_id}",
            reason=error.detail,
        )
        raise
    return _public(session, request)


@router.post("/approvals/{approval_id}/approve")
def approve(
    approval_id: uuid.UUID,
    body: ApprovalDecisionCreate,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_DECIDE))],
    engine: EngineDep,
    session: SessionDep,
) -> ApprovalPublic:
    """Approve a pending request (not your own, not as a barred or automated principal)."""
    return _decide(
        engine=engine,
        session=session,
        actor=actor,
        approval_id=approval_id,
        approve=True,
        reason=body.reason,
    )


@router.post("/approvals/{approval_id}/reject")
def reject(
    approval_id: uuid.UUID,
    body: ApprovalDecisionCreate,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_DECIDE))],
    engine: EngineDep,
    session: SessionDep,
) -> ApprovalPublic:
    """Reject a pending request; one rejection closes it."""
    return _decide(
        engine=engine,
        session=session,
        actor=actor,
        approval_id=approval_id,
        approve=False,
        reason=body.reason,
    )


@router.get("/approval-rules", dependencies=[Depends(require(Permission.PROJECT_READ))])
def rules(project: CurrentProject, session: SessionDep) -> dict[ApprovalAction, int]:
    """Return how many distinct approvers each action needs in this project."""
    return list_rules(session=session, project_id=project.id)


@router.put("/approval-rules/{action}")
def set_rule(
    action: ApprovalAction,
    body: ApprovalRuleUpdate,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_ADMIN))],
    session: SessionDep,
) -> dict[ApprovalAction, int]:
    """Require N distinct approvers for ``action``; requests already pending keep their number."""
    set_required_approvers(
        session=session, actor=actor, action=action, count=body.required_approvers
    )
    assert actor.project_id is not None
    return list_rules(session=session, project_id=actor.project_id)
