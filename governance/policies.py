"""Policy storage: named policies of a project, numbered immutable versions, the active one.

A :class:`Policy` has numbered :class:`PolicyVersion` rows, never edited; the policy's
``active_version`` is the one that decides. A version is parsed once, when it is stored
(:func:`governance.policy_language.parse_document`), and keeps the canonical form, which
:meth:`PolicyVersion.parsed` reads back typed. When the project has an approval rule for
``policy_change``, a new version waits for an approved request before it can be activated.
The language is in :mod:`governance.policy_language`, the evaluation in
:mod:`governance.policy_evaluation`. Services here never commit.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field as SQLField
from sqlmodel import Session, col, select

from governance.actors import Actor
from governance.approvals import (
    ApprovalAction,
    ApprovalRule,
    find_approved,
    request_approval,
)
from governance.audit import append
from governance.policy_evaluation import PolicyRef
from governance.policy_language import (
    PolicyDocument,
    dump_document,
    load_document,
    load_source,
    parse_document,
)
from lineage.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from lineage.tables import Record

__all__ = [
    "Policy",
    "PolicyVersion",
    "activate_version",
    "active_policies",
    "add_version",
    "create_policy",
    "get_policy",
    "get_version",
    "list_policies",
    "list_versions",
    "set_enabled",
]


class Policy(Record, table=True):
    """A named policy of a project; its content lives in numbered versions."""

    __tablename__ = "governance_policy"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    project_id: uuid.UUID = SQLField(foreign_key="lineage_project.id", index=True)
    name: str = SQLField(sa_column=sa.Column(sa.String(63), nullable=False))
    active_version: int | None = SQLField(default=None)
    latest_version: int = SQLField(default=0, nullable=False)
    enabled: bool = SQLField(default=True, nullable=False)
    created_by: str = SQLField(sa_column=sa.Column(sa.String(256), nullable=False))


class PolicyVersion(Record, table=True):
    """One immutable version of a policy document, and the approval that cleared it, if any."""

    __tablename__ = "governance_policy_version"
    __table_args__ = (sa.UniqueConstraint("policy_id", "version"),)

    policy_id: uuid.UUID = SQLField(foreign_key="governance_policy.id", index=True)
    version: int = SQLField(nullable=False)
    document: dict[str, Any] = SQLField(sa_column=sa.Column(sa.JSON(), nullable=False))
    source: str = SQLField(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    created_by: str = SQLField(sa_column=sa.Column(sa.String(256), nullable=False))
    approval_id: uuid.UUID | None = SQLField(default=None)

    def parsed(self) -> PolicyDocument:
        """Return the stored document as the typed form it was parsed into when stored."""
        return load_document(self.document)


_TARGET = "policy_version"


def _approval_required(session: Session, project_id: uuid.UUID) -> bool:
    rule = session.exec(
        select(ApprovalRule).where(
            ApprovalRule.project_id == project_id,
            ApprovalRule.action == ApprovalAction.POLICY_CHANGE,
        )
    ).first()
    return rule is not None


def _document(document: Any, source: str | None) -> tuple[PolicyDocument, dict[str, Any], str]:
    if source is not None:
        raw = load_source(source)
    elif document is not None:
        raw = document
    else:
        raise InvalidInput(
            "give the policy as 'document' (an object) or 'source' (YAML/JSON text)",
            field="document",
        )
    parsed = parse_document(raw)
    stored = dump_document(parsed)
    json.dumps(stored)
    return parsed, stored, source or ""


def _new_version(
    *,
    session: Session,
    policy: Policy,
    actor: Actor,
    stored: dict[str, Any],
    source: str,
    reason: str,
) -> PolicyVersion:
    policy.latest_version += 1
    version = PolicyVersion(
        policy_id=policy.id,
        version=policy.latest_version,
        document=stored,
        source=source[:100_000],
        created_by=actor.name,
    )
    session.add(version)
    session.flush()
    if _approval_required(session, policy.project_id):
        request = request_approval(
            session=session,
            actor=actor.in_project(policy.project_id),
            action=ApprovalAction.POLICY_CHANGE,
            target_kind=_TARGET,
            target_id=str(version.id),
            reason=reason or f"policy {policy.name!r} version {version.version}",
        )
        version.approval_id = request.id
    else:
        policy.active_version = version.version
    session.add_all([policy, version])
    session.flush()
    append(
        session=session,
        actor=actor,
        action="policy.version",
        target=f"policy:{policy.id}",
        reason=reason[:4000],
        detail={
            "name": policy.name,
            "version": version.version,
            "active_version": policy.active_version,
            "approval_id": str(version.approval_id) if version.approval_id else None,
        },
        project_id=policy.project_id,
    )
    return version


def create_policy(
    *,
    session: Session,
    project_id: uuid.UUID,
    actor: Actor,
    name: str,
    document: Any = None,
    source: str | None = None,
    reason: str = "",
) -> tuple[Policy, PolicyVersion]:
    """Create a policy with its first version (active at once, or pending an approval).

    Raises:
        InvalidInput: The document is invalid (``field`` is the exact path).
        Conflict: The name is taken in the project.
    """
    _, stored, text = _document(document, source)
    taken = session.exec(
        select(Policy).where(Policy.project_id == project_id, Policy.name == name)
    ).first()
    if taken is not None:
        raise Conflict(f"policy {name!r} exists already; add a version to it", field="name")
    policy = Policy(project_id=project_id, name=name, created_by=actor.name)
    session.add(policy)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="policy.create",
        target=f"policy:{policy.id}",
        detail={"name": name},
        project_id=project_id,
    )
    version = _new_version(
        session=session, policy=policy, actor=actor, stored=stored, source=text, reason=reason
    )
    return policy, version


def add_version(
    *,
    session: Session,
    policy: Policy,
    actor: Actor,
    document: Any = None,
    source: str | None = None,
    reason: str = "",
) -> PolicyVersion:
    """Store a new version of a policy (active at once, or pending an approval)."""
    _, stored, text = _document(document, source)
    return _new_version(
        session=session, policy=policy, actor=actor, stored=stored, source=text, reason=reason
    )


def get_policy(*, session: Session, project_id: uuid.UUID, policy_id: uuid.UUID) -> Policy:
    """Return a policy of the project, or raise :class:`NotFound`."""
    policy = session.get(Policy, policy_id)
    if policy is None or policy.project_id != project_id:
        raise NotFound(f"no policy {policy_id} in this project; list policies first")
    return policy


def list_policies(*, session: Session, project_id: uuid.UUID) -> list[Policy]:
    """Return a project's policies by name."""
    query = select(Policy).where(Policy.project_id == project_id).order_by(col(Policy.name))
    return list(session.exec(query).all())


def get_version(*, session: Session, policy: Policy, version: int) -> PolicyVersion:
    """Return one version of a policy, or raise :class:`NotFound`."""
    row = session.exec(
        select(PolicyVersion).where(
            PolicyVersion.policy_id == policy.id, PolicyVersion.version == version
        )
    ).first()
    if row is None:
        raise NotFound(f"policy {policy.name!r} has no version {version}")
    return row


def list_versions(*, session: Session, policy: Policy) -> list[PolicyVersion]:
    """Return a policy's versions, oldest first."""
    query = (
        select(PolicyVersion)
        .where(PolicyVersion.policy_id == policy.id)
        .order_by(col(PolicyVersion.version))
    )
    return list(session.exec(query).all())


def activate_version(
    *, session: Session, policy: Policy, version: int, actor: Actor
) -> PolicyVersion:
    """Make a version the one that decides (approved first, when the project requires it).

    Raises:
        NotFound: No such version.
        PermissionDenied: The project requires approval and the version has none approved.
    """
    row = get_version(session=session, policy=policy, version=version)
    if _approval_required(session, policy.project_id):
        approved = find_approved(
            session=session,
            project_id=policy.project_id,
            action=ApprovalAction.POLICY_CHANGE,
            target_kind=_TARGET,
            target_id=str(row.id),
        )
        if approved is None:
            raise PermissionDenied(
                f"version {version} of policy {policy.name!r} needs an approved policy_change "
                f"request before it decides; approval {row.approval_id} is not approved yet"
            )
    before = policy.active_version
    policy.active_version = version
    session.add(policy)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="policy.activate",
        target=f"policy:{policy.id}",
        detail={"before": before, "after": version},
        project_id=policy.project_id,
    )
    return row


def set_enabled(*, session: Session, policy: Policy, enabled: bool, actor: Actor) -> Policy:
    """Turn a policy on or off (off: it decides nothing and gates nothing); audited."""
    before = policy.enabled
    policy.enabled = enabled
    session.add(policy)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="policy.enable" if enabled else "policy.disable",
        target=f"policy:{policy.id}",
        detail={"before": before, "after": enabled},
        project_id=policy.project_id,
    )
    return policy


def active_policies(*, session: Session, project_id: uuid.UUID) -> list[PolicyRef]:
    """Return the enabled policies of a project at their active versions."""
    refs = []
    for policy in list_policies(session=session, project_id=project_id):
        if not policy.enabled or policy.active_version is None:
            continue
        row = get_version(session=session, policy=policy, version=policy.active_version)
        refs.append(
            PolicyRef(
                policy_id=policy.id, name=policy.name, version=row.version, document=row.parsed()
            )
        )
    return refs
