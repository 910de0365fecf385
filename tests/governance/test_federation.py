"""Federated principals: known by issuer and subject, roles in step with groups, one-time logins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance.actors import Actor, PrincipalKind
from governance.audit import AuditEntry
from governance.federation import (
    FederatedClaims,
    begin_login,
    consume_login,
    create_group_mapping,
    sign_in_federated,
)
from governance.identity import Principal, disable_principal
from governance.roles import Role, RoleGrant, grant_role, roles_of
from lineage.errors import InvalidInput, Unauthenticated
from lineage.projects import Project
from lineage.store import session_scope
from lineage.tables import utcnow

ISSUER = "https://login.example.org"


def _claims(subject: str, *groups: str, name: str = "sam", kind: str = "person") -> FederatedClaims:
    return FederatedClaims(
        issuer=ISSUER,
        subject=subject,
        kind=PrincipalKind(kind),
        preferred_name=name,
        groups=groups,
    )


def _sign_in(engine: Engine, claims: FederatedClaims, *, jit: bool = True) -> Principal:
    with session_scope(engine) as session:
        principal = sign_in_federated(session=session, claims=claims, jit=jit)
        session.expunge(principal)
        return principal


def _grants(session: Session, principal: Principal) -> set[tuple[str, str]]:
    rows = session.exec(select(RoleGrant).where(RoleGrant.principal_id == principal.id)).all()
    return {(str(g.role), g.source) for g in rows}


def test_people_are_recognised_by_issuer_and_subject_never_by_name(engine: Engine) -> None:
    first = _sign_in(engine, _claims("sub-1", name="Sam.Lee@Example.org"))
    twin = _sign_in(engine, _claims("sub-2", name="Sam.Lee@Example.org"))
    renamed = _sign_in(engine, _claims("sub-1", name="samuel"))
    assert first.name == "sam.lee-example.org"
    assert twin.name == "sam.lee-example.org-2"
    assert renamed.id == first.id
    assert renamed.name == first.name
    with pytest.raises(Unauthenticated, match="no Warden account yet"):
        _sign_in(engine, _claims("sub-3"), jit=False)
    with pytest.raises(Unauthenticated, match="another kind"):
        _sign_in(engine, _claims("sub-1", kind="service"))
    with session_scope(engine) as session:
        disable_principal(session=session, actor=Actor.system(), principal_id=first.id)
    with pytest.raises(Unauthenticated, match="disabled"):
        _sign_in(engine, _claims("sub-1"))


def test_group_roles_follow_the_groups_and_leave_direct_grants_alone(
    engine: Engine, make_project: Callable[[str], Project]
) -> None:
    acme, beta = make_project("acme"), make_project("beta")
    system = Actor.system()
    with session_scope(engine) as session:
        for group, project, role in (
            ("approvers", acme, Role.APPROVER),
            ("approvers", beta, Role.VIEWER),
            ("scientists", acme, Role.DATA_SCIENTIST),
        ):
            create_group_mapping(
                session=session, actor=system, group=group, project_id=project.id, role=role
            )
    sam = _sign_in(engine, _claims("sub-1", "approvers", "unmapped"))
    with session_scope(engine) as session:
        assert roles_of(session=session, principal_id=sam.id, project_id=acme.id) == {Role.APPROVER}
        grant_role(
            session=session,
            actor=system,
            project_id=acme.id,
            principal_id=sam.id,
            role=Role.AUDITOR,
        )
    _sign_in(engine, _claims("sub-1", "scientists"))
    with session_scope(engine) as session:
        assert _grants(session, sam) == {("data_scientist", "group"), ("auditor", "direct")}
        entries = session.exec(
            select(AuditEntry)
            .where(AuditEntry.target == f"principal:{sam.id}")
            .order_by(col(AuditEntry.seq))  # the (target, project, seq) index orders otherwise
        ).all()
        changes = [(e.action, e.actor_name) for e in entries if e.action.startswith("role.")]
    assert changes == [
        ("role.grant", "warden"),
        ("role.grant", "warden"),
        ("role.grant", "warden"),  # the auditor role, by hand
        ("role.revoke", "warden"),
        ("role.revoke", "warden"),
        ("role.grant", "warden"),
    ]
    _sign_in(engine, _claims("sub-1"))  # no groups at all
    with session_scope(engine) as session:
        assert _grants(session, sam) == {("auditor", "direct")}


def test_a_mapping_names_a_project_and_a_role_or_neither(
    engine: Engine, make_project: Callable[[str], Project]
) -> None:
    acme = make_project("acme")
    with session_scope(engine) as session:
        with pytest.raises(InvalidInput, match="both a project and a role"):
            create_group_mapping(
                session=session, actor=Actor.system(), group="g", project_id=acme.id, role=None
            )
        with pytest.raises(InvalidInput, match="as the provider writes it"):
            create_group_mapping(
                session=session, actor=Actor.system(), group="x" * 257, project_id=None, role=None
            )


def test_a_sign_in_in_progress_is_used_once_by_the_browser_that_began_it(engine: Engine) -> None:
    later = utcnow() + timedelta(minutes=10)
    with session_scope(engine) as session:
        for state in ("s1", "s2"):
            begin_login(
                session=session,
                state=state,
                binder="b",
                sealed="x",
                next_url="/p/acme",
                expires_at=later,
            )
        begin_login(
            session=session,
            state="old",
            binder="b",
            sealed="x",
            next_url="/",
            expires_at=utcnow() + timedelta(seconds=1),
        )
    with session_scope(engine) as session:
        assert consume_login(session=session, state="s1", binder="b").next_url == "/p/acme"
    for state, binder, now in (
        ("s1", "b", None),  # replayed
        ("s2", "other", None),  # another browser
        ("s2", None, None),  # no binder cookie at all
        ("old", "b", utcnow() + timedelta(seconds=5)),  # expired
        ("never", "b", None),
    ):
        with session_scope(engine) as session, pytest.raises(Unauthenticated, match="start again"):
            consume_login(session=session, state=state, binder=binder, now=now)
    with session_scope(engine) as session:
        assert consume_login(session=session, state="s2", binder="b").next_url == "/p/acme"
