from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from governance.actors import Actor
from governance.identity import actor_for
from governance.permissions import Permission
from governance.roles import (
    ROLE_PERMISSIONS,
    Role,
    authorize,
    grant_role,
    holds_anywhere,
    permissions_of,
    project_permissions,
    render_matrix,
    revoke_role,
    visible_project_ids,
)
from lineage.errors import Conflict, InvalidInput, NotFound, PermissionDenied, SeparationOfDuties
from lineage.projects import Project
from lineage.store import session_scope
from tests.conftest import Issued

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_the_docs_matrix_is_the_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- matrix:start -->\n(.*?)<!-- matrix:end -->", text, re.S)
    assert block is not None, "docs/security.md lost its matrix markers"
    assert block.group(1) == render_matrix()


def test_every_role_reads_and_only_the_right_roles_write_decide_or_audit() -> None:
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
    for role in Role:
        assert Permission.PROJECT_READ in ROLE_PERMISSIONS[role]
    holders = {p: {r for r in Role if p in ROLE_PERMISSIONS[r]} for p in Permission}
    assert holders[Permission.APPROVAL_DECIDE] == {Role.APPROVER, Role.ADMIN}
    assert holders[Permission.APPROVAL_REQUEST] == {Role.DATA_SCIENTIST, Role.ADMIN}
    assert holders[Permission.AUDIT_READ] == {Role.AUDITOR, Role.ADMIN}
    assert holders[Permission.PROJECT_ADMIN] == {Role.ADMIN}
    assert not {p for p in ROLE_PERMISSIONS[Role.VIEWER] if not p.value.endswith(":read")}


def test_authorize_hides_projects_without_a_role_and_refuses_missing_permissions(
    engine: Engine,
    make_principal: Callable[..., Issued],
    make_project: Callable[[str], Project],
) -> None:
    acme, other = make_project("acme"), make_project("other")
    viewer = actor_for(make_principal(role=Role.VIEWER, project="acme").principal)
    with session_scope(engine) as session:
        authorize(
            session=session, actor=viewer, project_id=acme.id, permission=Permission.MODEL_READ
        )
        with pytest.raises(PermissionDenied, match="lack 'model:write'"):
            authorize(
                session=session,
                actor=viewer,
                project_id=acme.id,
                permission=Permission.MODEL_WRITE,
            )
        with pytest.raises(NotFound, match="no role in it"):
            authorize(
                session=session,
                actor=viewer,
                project_id=other.id,
                permission=Permission.MODEL_READ,
            )
        assert visible_project_ids(session=session, actor=viewer) == {acme.id}
        assert holds_anywhere(session=session, actor=viewer, permission=Permission.MODEL_READ)
        assert not holds_anywhere(session=session, actor=viewer, permission=Permission.MODEL_WRITE)


def test_a_global_admin_holds_everything_everywhere(
    engine: Engine, make_principal: Callable[..., Issued], make_project: Callable[[str], Project]
) -> None:
    other = make_project("other")
    admin = actor_for(make_principal(admin=True).principal)
    with session_scope(engine) as session:
        assert permissions_of(session=session, actor=admin, project_id=other.id) == frozenset(
            Permission
        )
        assert visible_project_ids(session=session, actor=admin) is None


def test_the_gates_one_read_finds_the_project_and_only_the_actors_own_roles(
    engine: Engine, make_principal: Callable[..., Issued], make_project: Callable[[str], Project]
) -> None:
    acme = make_project("acme")
    make_project("other")
    both = actor_for(make_principal(role=[Role.VIEWER, Role.APPROVER], project="acme").principal)
    make_principal(role=Role.ADMIN, project="other")  # someone else's grant must not leak
    outsider = actor_for(make_principal(role=Role.ADMIN, project="other").principal)
    admin = actor_for(make_principal(admin=True).principal)
    with session_scope(engine) as session:
        project, held = project_permissions(session=session, actor=both, name="acme")
        assert project is not None
        assert project.id == acme.id
        assert held == ROLE_PERMISSIONS[Role.VIEWER] | ROLE_PERMISSIONS[Role.APPROVER]
        assert held == permissions_of(session=session, actor=both, project_id=acme.id)
        assert project_permissions(session=session, actor=both, name="other")[1] == frozenset()
        assert project_permissions(session=session, actor=outsider, name="acme")[1] == frozenset()
        assert project_permissions(session=session, actor=admin, name="acme")[1] == frozenset(
            Permission
        )
        assert project_permissions(session=session, actor=both, name="nowhere") == (
            None,
            frozenset(),
        )


def test_roles_combine_and_can_be_revoked(
    engine: Engine, make_principal: Callable[..., Issued], make_project: Callable[[str], Project]
) -> None:
    acme = make_project("acme")
    both = actor_for(make_principal(role=[Role.AUDITOR, Role.APPROVER], project="acme").principal)
    assert both.principal_id is not None
    with session_scope(engine) as session:
        held = permissions_of(session=session, actor=both, project_id=acme.id)
        assert {Permission.AUDIT_READ, Permission.APPROVAL_DECIDE} <= held
        revoke_role(
            session=session,
            actor=Actor.system(),
            project_id=acme.id,
            principal_id=both.principal_id,
            role=Role.AUDITOR,
        )
        assert Permission.AUDIT_READ not in permissions_of(
            session=session, actor=both, project_id=acme.id
        )


def test_no_one_grants_themselves_a_role(
    engine: Engine, make_principal: Callable[..., Issued], make_project: Callable[[str], Project]
) -> None:
    acme = make_project("acme")
    project_admin = make_principal(role=Role.ADMIN, project="acme").principal
    newcomer = make_principal().principal
    admin = actor_for(project_admin, project_id=acme.id)
    with session_scope(engine) as session:
        with pytest.raises(SeparationOfDuties, match="cannot grant itself"):
            grant_role(
                session=session,
                actor=admin,
                project_id=acme.id,
                principal_id=project_admin.id,
                role=Role.AUDITOR,
            )
        grant_role(
            session=session,
            actor=admin,
            project_id=acme.id,
            principal_id=newcomer.id,
            role="auditor",
        )
        with pytest.raises(Conflict, match="already"):
            grant_role(
                session=session,
                actor=admin,
                project_id=acme.id,
                principal_id=newcomer.id,
                role=Role.AUDITOR,
            )
        with pytest.raises(InvalidInput, match="unknown role 'root'"):
            grant_role(
                session=session,
                actor=admin,
                project_id=acme.id,
                principal_id=newcomer.id,
                role="root",
            )
