from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from governance.actors import Actor
from governance.approvals import (
    ApprovalAction,
    ApprovalStatus,
    decide,
    decisions_of,
    is_approved,
    pending_for,
    request_approval,
    set_required_approvers,
)
from governance.audit import AuditEntry
from governance.identity import actor_for
from governance.roles import Role
from lineage.errors import Conflict, InvalidInput, NotFound, PermissionDenied, SeparationOfDuties
from lineage.projects import Project
from lineage.store import session_scope
from tests.conftest import Issued

VERSION = str(uuid.uuid4())


@pytest.fixture
def project(make_project: Callable[[str], Project]) -> Project:
    return make_project("acme")


@pytest.fixture
def actor(make_principal: Callable[..., Issued], project: Project) -> Callable[..., Actor]:
    """Make a principal with ``role`` in ``acme`` and return its actor scoped to the project."""

    def make(role: Role | list[Role] | None = None, *, service: bool = False) -> Actor:
        issued = make_principal(role=role, project=project.name, service=service)
        return actor_for(issued.principal, project_id=project.id)

    return make


def _request(engine: Engine, requester: Actor, *, barred: tuple[uuid.UUID, ...] = ()) -> uuid.UUID:
    with session_scope(engine) as session:
        request = request_approval(
            session=session,
            actor=requester,
            action=ApprovalAction.PROMOTE,
            target_kind="model_version",
            target_id=VERSION,
            reason="beats the champion on AUC",
            barred=barred,
        )
        return request.id


def _decide(engine: Engine, who: Actor, approval_id: uuid.UUID, *, approve: bool = True) -> str:
    with session_scope(engine) as session:
        decided = decide(
            session=session, actor=who, approval_id=approval_id, approve=approve, reason="checked"
        )
        return str(decided.status)


def _approved(engine: Engine, project: Project) -> bool:
    with session_scope(engine) as session:
        return is_approved(
            session=session,
            project_id=project.id,
            action="promote",
            target_kind="model_version",
            target_id=VERSION,
        )


def test_one_approver_approves_by_default_and_it_is_audited(
    engine: Engine, actor: Callable[..., Actor], project: Project
) -> None:
    approval_id = _request(engine, actor(Role.DATA_SCIENTIST))
    assert not _approved(engine, project)
    assert _decide(engine, actor(Role.APPROVER), approval_id) == ApprovalStatus.APPROVED
    assert _approved(engine, project)
    with session_scope(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry)).all()]
    assert "approval.request" in actions
    assert "approval.approve" in actions


def test_the_requester_cannot_approve_their_own_request(
    engine: Engine, actor: Callable[..., Actor]
) -> None:
    both = actor([Role.DATA_SCIENTIST, Role.APPROVER])
    approval_id = _request(engine, both)
    with pytest.raises(SeparationOfDuties, match="you requested this"):
        _decide(engine, both, approval_id)


def test_the_trainer_or_registrar_cannot_approve(
    engine: Engine, actor: Callable[..., Actor]
) -> None:
    trainer = actor(Role.APPROVER)
    registrar = actor(Role.APPROVER)
    assert trainer.principal_id is not None
    assert registrar.principal_id is not None
    approval_id = _request(
        engine, actor(Role.DATA_SCIENTIST), barred=(trainer.principal_id, registrar.principal_id)
    )
    for barred in (trainer, registrar):
        with pytest.raises(SeparationOfDuties, match="trained or registered"):
            _decide(engine, barred, approval_id)
    assert _decide(engine, actor(Role.APPROVER), approval_id) == ApprovalStatus.APPROVED


def test_a_service_account_can_request_but_never_approve(
    engine: Engine, actor: Callable[..., Actor], project: Project
) -> None:
    robot = actor(Role.ADMIN, service=True)
    approval_id = _request(engine, robot)
    with pytest.raises(SeparationOfDuties, match="never decide"):
        _decide(engine, robot, approval_id)
    other_robot = actor(Role.ADMIN, service=True)
    with pytest.raises(SeparationOfDuties, match="never decide"):
        _decide(engine, other_robot, approval_id)
    assert not _approved(engine, project)


def test_n_distinct_approvers_are_needed_when_the_project_says_so(
    engine: Engine, actor: Callable[..., Actor], project: Project
) -> None:
    with session_scope(engine) as session:
        set_required_approvers(
            session=session, actor=actor(Role.ADMIN), action=ApprovalAction.PROMOTE, count=2
        )
    approval_id = _request(engine, actor(Role.DATA_SCIENTIST))
    first = actor(Role.APPROVER)
    assert _decide(engine, first, approval_id) == ApprovalStatus.PENDING
    with pytest.raises(Conflict, match="decided this request already"):
        _decide(engine, first, approval_id)
    assert not _approved(engine, project)
    assert _decide(engine, actor(Role.APPROVER), approval_id) == ApprovalStatus.APPROVED
    assert _approved(engine, project)
    with session_scope(engine) as session:
        assert len(decisions_of(session=session, approval_id=approval_id)) == 2


def test_one_rejection_rejects_and_closes_the_request(
    engine: Engine, actor: Callable[..., Actor], project: Project
) -> None:
    with session_scope(engine) as session:
        set_required_approvers(session=session, actor=actor(Role.ADMIN), action="promote", count=2)
    approval_id = _request(engine, actor(Role.DATA_SCIENTIST))
    assert _decide(engine, actor(Role.APPROVER), approval_id) == ApprovalStatus.PENDING
    assert _decide(engine, actor(Role.APPROVER), approval_id, approve=False) == "rejected"
    with pytest.raises(Conflict, match="rejected already"):
        _decide(engine, actor(Role.APPROVER), approval_id)
    assert not _approved(engine, project)


def test_deciding_needs_the_approver_permission(
    engine: Engine, actor: Callable[..., Actor]
) -> None:
    approval_id = _request(engine, actor(Role.DATA_SCIENTIST))
    with pytest.raises(PermissionDenied, match="approval:decide"):
        _decide(engine, actor(Role.DATA_SCIENTIST), approval_id)
    with pytest.raises(PermissionDenied, match="approval:request"):
        _request(engine, actor(Role.VIEWER))


def test_requests_need_a_reason_and_cannot_be_duplicated(
    engine: Engine, actor: Callable[..., Actor]
) -> None:
    scientist = actor(Role.DATA_SCIENTIST)
    with session_scope(engine) as session, pytest.raises(InvalidInput, match="reason is required"):
        request_approval(
            session=session,
            actor=scientist,
            action="promote",
            target_kind="model_version",
            target_id=VERSION,
            reason="  ",
        )
    _request(engine, scientist)
    with pytest.raises(Conflict, match="pending"):
        _request(engine, scientist)


def test_another_projects_request_is_not_found(
    engine: Engine,
    actor: Callable[..., Actor],
    make_principal: Callable[..., Issued],
    make_project: Callable[[str], Project],
) -> None:
    approval_id = _request(engine, actor(Role.DATA_SCIENTIST))
    other = make_project("other")
    outsider = actor_for(
        make_principal(role=Role.APPROVER, project="other").principal, project_id=other.id
    )
    with pytest.raises(NotFound):
        _decide(engine, outsider, approval_id)


def test_pending_for_me_lists_only_what_i_may_decide(
    engine: Engine, actor: Callable[..., Actor]
) -> None:
    approver = actor(Role.APPROVER)
    assert approver.principal_id is not None
    scientist = actor(Role.DATA_SCIENTIST)
    viewer = actor(Role.VIEWER)
    mine = _request(engine, scientist)
    with session_scope(engine) as session:
        request_approval(
            session=session,
            actor=scientist,
            action=ApprovalAction.ROLLBACK,
            target_kind="deployment",
            target_id="prod",
            reason="regression",
            barred=[approver.principal_id],
        )
        assert [r.id for r in pending_for(session=session, actor=approver)] == [mine]
        assert pending_for(session=session, actor=viewer) == []


def test_pending_for_me_drops_what_i_have_already_decided(
    engine: Engine, actor: Callable[..., Actor]
) -> None:
    """A request that needs two approvers stays pending after the first, but no longer waits
    for that first approver; the second still sees it."""
    admin, scientist = actor(Role.ADMIN), actor(Role.DATA_SCIENTIST)
    first, second = actor(Role.APPROVER), actor(Role.APPROVER)
    with session_scope(engine) as session:
        set_required_approvers(session=session, actor=admin, action="promote", count=2)
    approval_id = _request(engine, scientist)
    assert _decide(engine, first, approval_id) == ApprovalStatus.PENDING
    with session_scope(engine) as session:
        assert pending_for(session=session, actor=first) == []
        assert [r.id for r in pending_for(session=session, actor=second)] == [approval_id]
