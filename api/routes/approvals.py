"""Approval requests and decisions, and how many approvers each action needs.

Requesting needs ``approval:request``; deciding needs ``approval:decide`` *and* passing the
separation-of-duty rules of :mod:`governance.approvals` (a refusal by a duty rule is a 403 and is
audited in its own transaction, like every denial). ``GET …/approvals?for_me=true`` lists what
the caller may still decide.

An approved ``rollback`` or ``redeploy`` request is carried out
(:func:`retrain.promotion.carry_out`) at once by the approving decision, or by
``POST …/approvals/{id}/carry-out`` from its requester (or, for a request automation opened,
anyone holding ``model:promote``) — the project's choice, set with
``PUT …/approval-rules/{action}`` (``carry_out``: ``on_approval`` or ``by_requester``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SessionDep
from api.pages import PageDep
from api.routes.deployments_serving import get_embedded_deployer, get_registry
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.approvals import (
    MAX_REQUIRED_APPROVERS,
    ApprovalAction,
    ApprovalDecision,
    ApprovalRequest,
    ApprovalStatus,
    CarryOut,
    carried_out_actions,
    decide,
    decisions_of,
    decisions_of_all,
    get_request,
    list_rules,
    page_requests,
    pending_for,
    request_approval,
    rule_settings,
    set_carry_out,
    set_required_approvers,
)
from governance.audit import append_in_own_transaction
from governance.permissions import Permission
from governance.roles import permissions_of
from lineage.errors import PermissionDenied
from lineage.models import ModelVersion
from retrain.promotion import carry_out, clear_challenger

__all__ = [
    "ApprovalCreate",
    "ApprovalDecisionCreate",
    "ApprovalDecisionPublic",
    "ApprovalPublic",
    "ApprovalRulePublic",
    "ApprovalRuleUpdate",
    "decide_and_carry_out",
    "router",
]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["approvals"]
)


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
    """How many distinct approvers an action needs, and who carries it out once approved."""

    model_config = ConfigDict(extra="forbid")

    required_approvers: int | None = Field(default=None, ge=1, le=MAX_REQUIRED_APPROVERS)
    carry_out: CarryOut | None = Field(
        default=None,
        description="rollback/redeploy only: 'on_approval' (at once) or 'by_requester' (one call).",
    )

    @model_validator(mode="after")
    def _something(self) -> ApprovalRuleUpdate:
        if self.required_approvers is None and self.carry_out is None:
            raise ValueError("set required_approvers, carry_out or both")
        return self


class ApprovalRulePublic(BaseModel):
    """One action's rule in the project."""

    action: ApprovalAction
    required_approvers: int
    carry_out: CarryOut | None


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
    carry_out: CarryOut | None = Field(
        description="Who carries it out once approved (rollback and redeploy only)."
    )
    carried_out_at: datetime | None
    outcome: dict[str, Any] | None = Field(
        description="What carrying it out did: outcome done or failed, with the error."
    )

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
            carry_out=(
                CarryOut(request.carry_out)
                if ApprovalAction(request.action) in carried_out_actions()
                else None
            ),
            carried_out_at=request.carried_out_at,
            outcome=request.outcome,
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
    page: PageDep,
    status: ApprovalStatus | None = None,
    for_me: Annotated[bool, Query(description="Only what I may still decide.")] = False,
) -> list[ApprovalPublic]:
    """List the project's approval requests, newest first (or only those awaiting me)."""
    if for_me:  # pending requests only, filtered by who decided: read whole
        found = pending_for(session=session, actor=actor)
        chosen = page.answer_all(found, key_of=lambda r: (r.created_at, r.id), descending=True)
    else:
        chosen = page.answer(
            page_requests(
                session=session,
                project_id=project.id,
                status=status,
                limit=page.limit,
                cursor=page.cursor,
            )
        )
    decided = decisions_of_all(session=session, approval_ids=[r.id for r in chosen])
    return [ApprovalPublic.of(r, decided.get(r.id, [])) for r in chosen]


@router.get("/approvals/{approval_id}", dependencies=[Depends(require(Permission.PROJECT_READ))])
def read(approval_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> ApprovalPublic:
    """Return one approval request with its decisions."""
    return _public(
        session, get_request(session=session, project_id=project.id, approval_id=approval_id)
    )


def decide_and_carry_out(
    *,
    http: Request,
    engine: Engine,
    session: Session,
    actor: Actor,
    approval_id: uuid.UUID,
    approve: bool,
    reason: str,
) -> ApprovalRequest:
    """Decide a request; carry it out at once when that approval completes it and the rule says so.

    A rejected promotion also clears MLflow's ``challenger`` alias if it named that version.

    A refused decision is audited as ``denied`` in its own transaction. A carry-out the going-live
    rule refuses leaves the approval standing, its failure recorded on the request.
    """
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
    if (
        request.status == ApprovalStatus.REJECTED
        and request.action == ApprovalAction.PROMOTE
        and request.target_kind == "model_version"
    ):
        rejected = session.get(ModelVersion, uuid.UUID(request.target_id))
        if rejected is not None and rejected.project_id == request.project_id:
            clear_challenger(registry=get_registry(http), model_version=rejected)
    if (
        request.status == ApprovalStatus.APPROVED
        and ApprovalAction(request.action) in carried_out_actions()
        and request.carry_out == CarryOut.ON_APPROVAL
    ):
        carry_out(
            session=session,
            actor=actor,
            request=request,
            registry=get_registry(http),
            deployer=get_embedded_deployer(http),
        )
    return request


def _decide(
    *,
    http: Request,
    engine: EngineDep,
    session: SessionDep,
    actor: Actor,
    approval_id: uuid.UUID,
    approve: bool,
    reason: str,
) -> ApprovalPublic:
    request = decide_and_carry_out(
        http=http,
        engine=engine,
        session=session,
        actor=actor,
        approval_id=approval_id,
        approve=approve,
        reason=reason,
    )
    return _public(session, request)


@router.post("/approvals/{approval_id}/approve")
def approve(
    approval_id: uuid.UUID,
    body: ApprovalDecisionCreate,
    http: Request,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_DECIDE))],
    engine: EngineDep,
    session: SessionDep,
) -> ApprovalPublic:
    """Approve a pending request (not your own, not as a barred or automated principal).

    When this approval completes a rollback or redeploy request whose project carries them out
    ``on_approval``, it is performed now; the response's ``outcome`` says how it went.
    """
    return _decide(
        http=http,
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
    http: Request,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_DECIDE))],
    engine: EngineDep,
    session: SessionDep,
) -> ApprovalPublic:
    """Reject a pending request; one rejection closes it."""
    return _decide(
        http=http,
        engine=engine,
        session=session,
        actor=actor,
        approval_id=approval_id,
        approve=False,
        reason=body.reason,
    )


@router.post("/approvals/{approval_id}/carry-out")
def carry_out_request(
    approval_id: uuid.UUID,
    http: Request,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_REQUEST))],
    project: CurrentProject,
    session: SessionDep,
    engine: EngineDep,
) -> ApprovalPublic:
    """Carry out an approved rollback or redeploy request, in one call.

    Its requester may; a request automation opened (a policy in ``request`` mode) may be carried
    out by anyone holding ``model:promote``. A refusal by the going-live rule is recorded on the
    request and audited (``approval.carry_out``, failure), then returned as its problem.
    """
    request = get_request(session=session, project_id=project.id, approval_id=approval_id)
    is_requester = actor.principal_id is not None and actor.principal_id == request.requested_by_id
    may_promote = Permission.MODEL_PROMOTE in permissions_of(
        session=session, actor=actor, project_id=project.id
    )
    if not is_requester and not (request.requested_by_id is None and may_promote):
        denied = PermissionDenied(
            f"only its requester ({request.requested_by_name}) carries out this request"
            + ("" if request.requested_by_id is not None else " or someone with model:promote")
        )
        session.rollback()
        append_in_own_transaction(
            engine=engine,
            actor=actor,
            action="approval.carry_out",
            target=f"approval:{approval_id}",
            reason=denied.detail,
            project_id=project.id,
        )
        raise denied
    _, refused = carry_out(
        session=session,
        actor=actor,
        request=request,
        registry=get_registry(http),
        deployer=get_embedded_deployer(http),
    )
    if refused is not None:
        session.commit()  # the failure stays recorded on the request and in the audit log
        raise refused
    return _public(session, request)


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
    """Set how many distinct approvers ``action`` needs and who carries it out once approved.

    Requests already made keep the rule they were made with.
    """
    if body.required_approvers is not None:
        set_required_approvers(
            session=session, actor=actor, action=action, count=body.required_approvers
        )
    if body.carry_out is not None:
        set_carry_out(session=session, actor=actor, action=action, carry_out=body.carry_out)
    assert actor.project_id is not None
    return list_rules(session=session, project_id=actor.project_id)


@router.get("/approval-rules/{action}", dependencies=[Depends(require(Permission.PROJECT_READ))])
def read_rule(
    action: ApprovalAction, project: CurrentProject, session: SessionDep
) -> ApprovalRulePublic:
    """Return one action's rule: approvers needed and (rollback, redeploy) who carries it out."""
    found = rule_settings(session=session, project_id=project.id, action=action)
    return ApprovalRulePublic(
        action=found.action,
        required_approvers=found.required_approvers,
        carry_out=found.carry_out if action in carried_out_actions() else None,
    )
