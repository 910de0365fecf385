"""Approvals: a risky action (promote, redeploy, roll back, change a policy) waits for people.

Contract for other rooms (services never commit; the caller's transaction does)::

    approval = request_approval(session=session, actor=actor, action=ApprovalAction.PROMOTE,
                                target_kind="model_version", target_id=str(version.id),
                                reason="beats champion on AUC", barred={trainer_id, registrar_id})
    ...
    if not is_approved(session=session, project_id=project.id, action=ApprovalAction.PROMOTE,
                       target_kind="model_version", target_id=str(version.id)):
        raise PermissionDenied("promotion needs an approved request")

Separation-of-duty rules, enforced by :func:`decide`, each refusing with
:class:`~lineage.errors.SeparationOfDuties`:

- the requester, and everyone the caller listed in ``barred`` (the trainer and the registrar of a
  model version, say), cannot approve or reject the request;
- service accounts (and Warden itself) may request, never decide: automation proposes, people
  dispose;
- one principal counts once: a request needs ``required_approvals`` *distinct* approvers, fixed
  when the request is made from the project's :class:`ApprovalRule` for the action (default 1);
  any one rejection rejects it.

Every request and decision writes an audit entry in the same transaction.

**Carrying out.** A ``rollback`` or ``redeploy`` request is carried out once approved: at once, by
the decision that approved it, or by its requester with one call — the project's
:class:`CarryOut` choice, stored with its :class:`ApprovalRule` and fixed on the request when it
is made. The work is :mod:`retrain.promotion`'s; :func:`record_outcome` stores and audits what
came of it against the request (``approval.carry_out``, target ``approval:<id>``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, col, select

from governance.actors import Actor, PrincipalKind
from governance.audit import Outcome, append
from governance.permissions import Permission
from governance.roles import authorize, permissions_of
from lineage.errors import Conflict, InvalidInput, NotFound, SeparationOfDuties
from lineage.pages import (
    DEFAULT_PAGE_SIZE,
    Page,
    newest_first,
    newest_first_page,
)
from lineage.tables import AwareDateTime, Record, utcnow

__all__ = [
    "MAX_REQUIRED_APPROVERS",
    "ApprovalAction",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalRule",
    "ApprovalStatus",
    "CarryOut",
    "RuleSettings",
    "carried_out_actions",
    "decide",
    "decisions_of",
    "decisions_of_all",
    "find_approved",
    "get_request",
    "is_approved",
    "list_requests",
    "list_rules",
    "page_requests",
    "pending_for",
    "record_outcome",
    "request_approval",
    "required_approvers",
    "rule_settings",
    "set_carry_out",
    "set_required_approvers",
]

MAX_REQUIRED_APPROVERS = 10


class ApprovalAction(StrEnum):
    """What an approval request asks to do."""

    PROMOTE = "promote"
    REDEPLOY = "redeploy"
    ROLLBACK = "rollback"
    POLICY_CHANGE = "policy_change"


class ApprovalStatus(StrEnum):
    """Where a request stands: waiting, approved by enough people, or rejected by one."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class CarryOut(StrEnum):
    """Who carries out an approved rollback or redeploy: the approval itself, or its requester."""

    ON_APPROVAL = "on_approval"
    BY_REQUESTER = "by_requester"


def carried_out_actions() -> frozenset[ApprovalAction]:
    """Return the actions Warden carries out once approved (the others only unlock a call)."""
    return frozenset({ApprovalAction.ROLLBACK, ApprovalAction.REDEPLOY})


class ApprovalRequest(Record, table=True):
    """A request to carry out a risky action, who asked, why, and who may not decide it."""

    __tablename__ = "governance_approval_request"

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    action: ApprovalAction = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    target_kind: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    target_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    requested_by_id: uuid.UUID | None = Field(default=None, foreign_key="governance_principal.id")
    requested_by_name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    barred_principal_ids: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    required_approvals: int = Field(default=1, nullable=False)
    status: ApprovalStatus = Field(
        default=ApprovalStatus.PENDING,
        sa_column=sa.Column(sa.String(16), nullable=False, index=True),
    )
    decided_at: datetime | None = Field(default=None, sa_type=AwareDateTime, nullable=True)
    carry_out: CarryOut = Field(
        default=CarryOut.BY_REQUESTER,
        sa_column=sa.Column(
            sa.String(16), nullable=False, server_default=CarryOut.BY_REQUESTER.value
        ),
    )
    carried_out_at: datetime | None = Field(default=None, sa_type=AwareDateTime, nullable=True)
    outcome: dict[str, Any] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON, nullable=True)
    )

    def barred(self) -> set[uuid.UUID]:
        """Return everyone who may not decide this request: the barred list and the requester."""
        ids = {uuid.UUID(i) for i in self.barred_principal_ids}
        if self.requested_by_id is not None:
            ids.add(self.requested_by_id)
        return ids


class ApprovalDecision(Record, table=True):
    """One approver's yes or no on one request, with their reason (one per approver)."""

    __tablename__ = "governance_approval_decision"
    __table_args__ = (sa.UniqueConstraint("request_id", "principal_id"),)

    request_id: uuid.UUID = Field(foreign_key="governance_approval_request.id", index=True)
    principal_id: uuid.UUID = Field(foreign_key="governance_principal.id")
    principal_name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    approve: bool = Field(nullable=False)
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))


class ApprovalRule(Record, table=True):
    """How many distinct approvers a project requires for one kind of action."""

    __tablename__ = "governance_approval_rule"
    __table_args__ = (sa.UniqueConstraint("project_id", "action"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id")
    action: ApprovalAction = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    required_approvers: int = Field(nullable=False)
    carry_out: CarryOut = Field(
        default=CarryOut.BY_REQUESTER,
        sa_column=sa.Column(
            sa.String(16), nullable=False, server_default=CarryOut.BY_REQUESTER.value
        ),
    )


@dataclass(frozen=True)
class RuleSettings:
    """One action's rule in a project: how many approvers, and who carries it out."""

    action: ApprovalAction
    required_approvers: int
    carry_out: CarryOut


def _project_of(actor: Actor) -> uuid.UUID:
    if actor.project_id is None:
        raise InvalidInput("approvals belong to a project; scope the actor to one first")
    return actor.project_id


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput("a reason is required; say why, for the audit log", field="reason")
    if len(reason) > 2000:
        raise InvalidInput("the reason is longer than 2000 characters; shorten it", field="reason")
    return reason


def _action(action: ApprovalAction | str) -> ApprovalAction:
    try:
        return ApprovalAction(action)
    except ValueError:
        known = ", ".join(a.value for a in ApprovalAction)
        raise InvalidInput(
            f"unknown action {action!r}; use one of: {known}", field="action"
        ) from None


def required_approvers(
    *, session: Session, project_id: uuid.UUID, action: ApprovalAction | str
) -> int:
    """Return how many distinct approvers ``action`` needs in the project (default 1)."""
    rule = session.exec(
        select(ApprovalRule).where(
            ApprovalRule.project_id == project_id, ApprovalRule.action == _action(action)
        )
    ).first()
    return rule.required_approvers if rule is not None else 1


def set_required_approvers(
    *, session: Session, actor: Actor, action: ApprovalAction | str, count: int
) -> ApprovalRule:
    """Require ``count`` distinct approvers for ``action`` in the actor's project.

    Requests made earlier keep the number they were made with, so changing the rule cannot
    approve a request that is in flight.

    Raises:
        InvalidInput: ``count`` is outside 1..:data:`MAX_REQUIRED_APPROVERS`.
    """
    project_id = _project_of(actor)
    action = _action(action)
    if not 1 <= count <= MAX_REQUIRED_APPROVERS:
        raise InvalidInput(
            f"required_approvers must be between 1 and {MAX_REQUIRED_APPROVERS}",
            field="required_approvers",
        )
    rule = session.exec(
        select(ApprovalRule).where(
            ApprovalRule.project_id == project_id, ApprovalRule.action == action
        )
    ).first()
    before = rule.required_approvers if rule is not None else 1
    if rule is None:
        rule = ApprovalRule(project_id=project_id, action=action, required_approvers=count)
    rule.required_approvers = count
    session.add(rule)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="approval_rule.set",
        target=f"approval_rule:{action.value}",
        detail={"before": {"required_approvers": before}, "after": {"required_approvers": count}},
    )
    return rule


def list_rules(*, session: Session, project_id: uuid.UUID) -> dict[ApprovalAction, int]:
    """Return the number of approvers each action needs in the project (defaults included)."""
    rules = {a: 1 for a in ApprovalAction}
    for rule in session.exec(select(ApprovalRule).where(ApprovalRule.project_id == project_id)):
        rules[ApprovalAction(rule.action)] = rule.required_approvers
    return rules


def _rule(session: Session, project_id: uuid.UUID, action: ApprovalAction) -> ApprovalRule | None:
    return session.exec(
        select(ApprovalRule).where(
            ApprovalRule.project_id == project_id, ApprovalRule.action == action
        )
    ).first()


def rule_settings(
    *, session: Session, project_id: uuid.UUID, action: ApprovalAction | str
) -> RuleSettings:
    """Return one action's rule in the project (default: one approver; its requester acts)."""
    action = _action(action)
    rule = _rule(session, project_id, action)
    if rule is None:
        return RuleSettings(action=action, required_approvers=1, carry_out=CarryOut.BY_REQUESTER)
    return RuleSettings(
        action=action,
        required_approvers=rule.required_approvers,
        carry_out=CarryOut(rule.carry_out),
    )


def set_carry_out(
    *, session: Session, actor: Actor, action: ApprovalAction | str, carry_out: CarryOut | str
) -> ApprovalRule:
    """Choose who carries out an approved ``action`` (rollback, redeploy) in the actor's project.

    Requests made earlier keep the choice they were made with.

    Raises:
        InvalidInput: ``action`` is not one Warden carries out, or ``carry_out`` is unknown.
    """
    project_id = _project_of(actor)
    action = _action(action)
    if action not in carried_out_actions():
        raise InvalidInput(
            f"{action.value} is not carried out by Warden once approved; only "
            + ", ".join(sorted(a.value for a in carried_out_actions()))
            + " are",
            field="carry_out",
        )
    try:
        chosen = CarryOut(carry_out)
    except ValueError:
        known = ", ".join(c.value for c in CarryOut)
        raise InvalidInput(
            f"unknown carry_out {carry_out!r}; use one of: {known}", field="carry_out"
        ) from None
    rule = _rule(session, project_id, action)
    before = CarryOut(rule.carry_out) if rule is not None else CarryOut.BY_REQUESTER
    if rule is None:
        rule = ApprovalRule(project_id=project_id, action=action, required_approvers=1)
    rule.carry_out = chosen
    session.add(rule)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="approval_rule.set",
        target=f"approval_rule:{action.value}",
        detail={"before": {"carry_out": before.value}, "after": {"carry_out": chosen.value}},
    )
    return rule


def record_outcome(
    *, session: Session, actor: Actor, request: ApprovalRequest, outcome: dict[str, Any]
) -> ApprovalRequest:
    """Store and audit what carrying out an approved request did (``outcome``: done or failed).

    A done request is closed (``carried_out_at``); a failed one may be carried out again.
    """
    done = outcome.get("outcome") == "done"
    request.outcome = dict(outcome)
    if done:
        request.carried_out_at = utcnow()
    session.add(request)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="approval.carry_out",
        target=f"approval:{request.id}",
        outcome=Outcome.SUCCESS if done else Outcome.FAILURE,
        reason=str(outcome.get("error", "")),
        detail={"action": str(request.action), "after": dict(outcome)},
        project_id=request.project_id,
    )
    return request


def request_approval(
    *,
    session: Session,
    actor: Actor,
    action: ApprovalAction | str,
    target_kind: str,
    target_id: str,
    reason: str,
    barred: Iterable[uuid.UUID] = (),
) -> ApprovalRequest:
    """Ask for approval to carry out ``action`` on a target, in the actor's project.

    Args:
        session: The caller's session (not committed here).
        actor: Who asks; scoped to the project. People and service accounts may ask.
        action: What to do (promote, redeploy, rollback, policy_change).
        target_kind: The kind of object, e.g. ``model_version`` or ``policy``.
        target_id: Its id (or name), as text.
        reason: Why, shown to approvers and kept in the audit log.
        barred: Principals who must not decide it besides the requester, e.g. the trainer and
            the registrar of the model version to promote.

    Raises:
        PermissionDenied: The actor lacks ``approval:request`` in the project.
        Conflict: The same action on the same target is pending already.
    """
    project_id = _project_of(actor)
    action = _action(action)
    if actor.kind != PrincipalKind.SYSTEM:
        authorize(
            session=session,
            actor=actor,
            project_id=project_id,
            permission=Permission.APPROVAL_REQUEST,
        )
    if not target_kind.strip() or not target_id.strip():
        raise InvalidInput("name the target: target_kind and target_id", field="target_id")
    pending = session.exec(
        select(ApprovalRequest).where(
            ApprovalRequest.project_id == project_id,
            ApprovalRequest.action == action,
            ApprovalRequest.target_kind == target_kind,
            ApprovalRequest.target_id == target_id,
            ApprovalRequest.status == ApprovalStatus.PENDING,
        )
    ).first()
    if pending is not None:
        raise Conflict(
            f"request {pending.id} for the same action and target is pending; decide it first"
        )
    request = ApprovalRequest(
        project_id=project_id,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        reason=_reason(reason),
        requested_by_id=actor.principal_id,
        requested_by_name=actor.name,
        barred_principal_ids=sorted({str(b) for b in barred}),
        required_approvals=required_approvers(
            session=session, project_id=project_id, action=action
        ),
        carry_out=rule_settings(session=session, project_id=project_id, action=action).carry_out,
    )
    session.add(request)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="approval.request",
        target=f"approval:{request.id}",
        reason=request.reason,
        detail={
            "after": {
                "action": action.value,
                "target": f"{target_kind}:{target_id}",
                "barred": request.barred_principal_ids,
                "required_approvals": request.required_approvals,
            }
        },
    )
    return request


def get_request(
    *, session: Session, project_id: uuid.UUID, approval_id: uuid.UUID
) -> ApprovalRequest:
    """Return a request of the project or raise :class:`NotFound` (other projects' are hidden)."""
    request = session.get(ApprovalRequest, approval_id)
    if request is None or request.project_id != project_id:
        raise NotFound("no such approval request in this project; list them first")
    return request


def decisions_of(*, session: Session, approval_id: uuid.UUID) -> list[ApprovalDecision]:
    """Return the decisions on a request, oldest first."""
    return decisions_of_all(session=session, approval_ids=[approval_id]).get(approval_id, [])


def decisions_of_all(
    *, session: Session, approval_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[ApprovalDecision]]:
    """Return the decisions on each of ``approval_ids``, oldest first, in one query (a page)."""
    ids = list(approval_ids)
    found: dict[uuid.UUID, list[ApprovalDecision]] = {}
    if not ids:
        return found
    query = (
        select(ApprovalDecision)
        .where(col(ApprovalDecision.request_id).in_(ids))
        .order_by(sa.asc(col(ApprovalDecision.created_at)), sa.asc(col(ApprovalDecision.id)))
    )
    for decision in session.exec(query):
        found.setdefault(decision.request_id, []).append(decision)
    return found


def _check_may_decide(*, session: Session, actor: Actor, request: ApprovalRequest) -> uuid.UUID:
    if actor.kind != PrincipalKind.PERSON or actor.principal_id is None:
        raise SeparationOfDuties(
            "service accounts and automation may request approvals but never decide them; "
            "a person with the approver role must decide"
        )
    authorize(
        session=session,
        actor=actor,
        project_id=request.project_id,
        permission=Permission.APPROVAL_DECIDE,
    )
    if actor.principal_id == request.requested_by_id:
        raise SeparationOfDuties("you requested this; another approver must decide it")
    if actor.principal_id in request.barred():
        raise SeparationOfDuties(
            "you are barred from deciding this request (you trained or registered its target); "
            "another approver must decide it"
        )
    return actor.principal_id


def decide(
    *, session: Session, actor: Actor, approval_id: uuid.UUID, approve: bool, reason: str
) -> ApprovalRequest:
    """Approve or reject a pending request on behalf of ``actor``.

    The request becomes ``approved`` once ``required_approvals`` distinct eligible people have
    approved it, and ``rejected`` at the first rejection.

    Raises:
        NotFound: No such request in the actor's project.
        Conflict: The request was decided already, or the actor decided it already.
        SeparationOfDuties: The actor requested it, is barred, or is not a person.
        PermissionDenied: The actor lacks ``approval:decide``.
        InvalidInput: The reason is empty.
    """
    request = get_request(session=session, project_id=_project_of(actor), approval_id=approval_id)
    reason = _reason(reason)
    principal_id = _check_may_decide(session=session, actor=actor, request=request)
    if request.status != ApprovalStatus.PENDING:
        raise Conflict(f"the request is {request.status} already; make a new request")
    if any(
        d.principal_id == principal_id
        for d in decisions_of(session=session, approval_id=request.id)
    ):
        raise Conflict("you decided this request already; it needs a different approver")
    session.add(
        ApprovalDecision(
            request_id=request.id,
            principal_id=principal_id,
            principal_name=actor.name,
            approve=approve,
            reason=reason,
        )
    )
    session.flush()
    approvals = sum(1 for d in decisions_of(session=session, approval_id=request.id) if d.approve)
    before = request.status
    if not approve:
        request.status = ApprovalStatus.REJECTED
    elif approvals >= request.required_approvals:
        request.status = ApprovalStatus.APPROVED
    if request.status != ApprovalStatus.PENDING:
        request.decided_at = utcnow()
    session.add(request)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="approval.approve" if approve else "approval.reject",
        target=f"approval:{request.id}",
        reason=reason,
        detail={
            "before": {"status": before},
            "after": {"status": request.status, "approvals": approvals},
            "required_approvals": request.required_approvals,
        },
    )
    return request


def find_approved(
    *,
    session: Session,
    project_id: uuid.UUID,
    action: ApprovalAction | str,
    target_kind: str,
    target_id: str,
) -> ApprovalRequest | None:
    """Return the latest approved request for ``action`` on the target, if there is one."""
    query = (
        select(ApprovalRequest)
        .where(
            ApprovalRequest.project_id == project_id,
            ApprovalRequest.action == _action(action),
            ApprovalRequest.target_kind == target_kind,
            ApprovalRequest.target_id == target_id,
            ApprovalRequest.status == ApprovalStatus.APPROVED,
        )
        .order_by(sa.desc(col(ApprovalRequest.decided_at)))
    )
    return session.exec(query).first()


def is_approved(
    *,
    session: Session,
    project_id: uuid.UUID,
    action: ApprovalAction | str,
    target_kind: str,
    target_id: str,
) -> bool:
    """Return whether ``action`` on the target has an approved request in the project."""
    found = find_approved(
        session=session,
        project_id=project_id,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
    )
    return found is not None


def list_requests(
    *, session: Session, project_id: uuid.UUID, status: ApprovalStatus | None = None
) -> list[ApprovalRequest]:
    """Return the project's requests, newest first, optionally only those in ``status``."""
    query = _requests_of(project_id, status)
    return list(session.exec(newest_first(query, ApprovalRequest)).all())


def _requests_of(project_id: uuid.UUID, status: ApprovalStatus | None) -> Any:
    query = select(ApprovalRequest).where(ApprovalRequest.project_id == project_id)
    return query if status is None else query.where(ApprovalRequest.status == status)


def page_requests(
    *,
    session: Session,
    project_id: uuid.UUID,
    status: ApprovalStatus | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[ApprovalRequest]:
    """Return a page of the project's requests (only those in ``status``), newest first.

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    return newest_first_page(
        session=session,
        query=_requests_of(project_id, status),
        record=ApprovalRequest,
        limit=limit,
        cursor=cursor,
    )


def pending_for(*, session: Session, actor: Actor) -> list[ApprovalRequest]:
    """Return the pending requests of the actor's project that the actor may still decide."""
    project_id = _project_of(actor)
    if actor.kind != PrincipalKind.PERSON or actor.principal_id is None:
        return []
    held = permissions_of(session=session, actor=actor, project_id=project_id)
    if Permission.APPROVAL_DECIDE not in held:
        return []
    pending = list_requests(session=session, project_id=project_id, status=ApprovalStatus.PENDING)
    decided = set(  # one query for all of them: the actor's own decisions on pending requests
        session.exec(
            select(ApprovalDecision.request_id)
            .join(ApprovalRequest, col(ApprovalRequest.id) == col(ApprovalDecision.request_id))
            .where(ApprovalRequest.project_id == project_id)
            .where(ApprovalRequest.status == ApprovalStatus.PENDING)
            .where(ApprovalDecision.principal_id == actor.principal_id)
        ).all()
    )
    return [
        request
        for request in pending
        if request.id not in decided and actor.principal_id not in request.barred()
    ]
