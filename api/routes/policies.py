"""Policies over REST: create, version, activate, enable/disable, list decisions, dry-run.

A policy is sent as ``document`` (a JSON object) or ``source`` (YAML or JSON text). An invalid
one answers 422 with ``field`` set to the exact path of the error
(``rules[0].when.all[1].threshold``). Policies are never deleted — decisions point at their
versions — so "delete" is ``PATCH {"enabled": false}``. When the project has an approval rule for
``policy_change``, each new version opens an approval request and decides nothing until it is
approved and activated (``POST …/versions/{n}:activate``).

``POST …/policies/{id}:dry-run`` evaluates one version (the active one unless named) on the
findings given, or on the project's last recorded monitor runs, with the cooldowns of decisions
already taken, and returns the decisions without acting on any.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SessionDep
from api.limits import MAX_SQL_INTEGER
from api.pages import PageDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit import append_in_own_transaction
from governance.decisions import PolicyDecision, replay
from governance.permissions import Permission
from governance.policies import (
    Policy,
    PolicyVersion,
    activate_version,
    add_version,
    create_policy,
    get_policy,
    get_version,
    list_policies,
    list_versions,
    set_enabled,
)
from governance.policy_evaluation import PolicyRef, RunFindings
from lineage.errors import InvalidInput, PermissionDenied
from lineage.pages import SortKey, keyset_page
from lineage.tables import utcnow
from monitors.findings import Finding, Status

__all__ = [
    "DryRunPublic",
    "DryRunRequest",
    "FindingRecord",
    "PolicyCreate",
    "PolicyDecisionPublic",
    "PolicyPublic",
    "PolicyUpdate",
    "RunRecord",
    "VersionCreate",
    "VersionPublic",
    "router",
]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["policies"]
)

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class VersionCreate(BaseModel):
    """A new version of a policy: the document as an object or as YAML/JSON text."""

    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] | None = None
    source: str | None = Field(default=None, max_length=100_000)
    reason: str = Field(default="", max_length=2000)


class PolicyCreate(VersionCreate):
    """A new policy and its first version."""

    name: str = Field(pattern=_NAME)


class PolicyUpdate(BaseModel):
    """Turn a policy on or off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


class VersionPublic(BaseModel):
    """One stored version of a policy."""

    version: int
    document: dict[str, Any]
    source: str
    created_by: str
    created_at: datetime
    approval_id: uuid.UUID | None
    active: bool

    @classmethod
    def of(cls, row: PolicyVersion, policy: Policy) -> VersionPublic:
        """Build the public view of a version."""
        return cls(
            version=row.version,
            document=row.document,
            source=row.source,
            created_by=row.created_by,
            created_at=row.created_at,
            approval_id=row.approval_id,
            active=policy.active_version == row.version,
        )


class PolicyPublic(BaseModel):
    """A policy: its name, whether it acts, and which version decides."""

    id: uuid.UUID
    name: str
    enabled: bool
    active_version: int | None
    latest_version: int
    created_by: str
    created_at: datetime
    pending_approval_id: uuid.UUID | None

    @classmethod
    def of(cls, policy: Policy, session: Session) -> PolicyPublic:
        """Build the public view; ``pending_approval_id`` is the latest version's, if inactive."""
        pending = None
        if policy.latest_version and policy.active_version != policy.latest_version:
            pending = get_version(
                session=session, policy=policy, version=policy.latest_version
            ).approval_id
        return cls(
            id=policy.id,
            name=policy.name,
            enabled=policy.enabled,
            active_version=policy.active_version,
            latest_version=policy.latest_version,
            created_by=policy.created_by,
            created_at=policy.created_at,
            pending_approval_id=pending,
        )


class FindingRecord(BaseModel):
    """One finding, as a monitor reports it (see ``monitors.findings.Finding``)."""

    model_config = ConfigDict(extra="forbid")

    monitor: str = Field(min_length=1, max_length=64)
    metric: str = Field(min_length=1, max_length=128)
    scope: str = Field(default="dataset", min_length=1, max_length=256)
    value: float | None = Field(default=None, allow_inf_nan=False)
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    status: Status = Status.OK

    def finding(self) -> Finding:
        """Return the monitors' own type."""
        return Finding(
            self.monitor, self.metric, self.scope, self.value, self.threshold, self.status
        )


class RunRecord(BaseModel):
    """The findings of one (real or imagined) monitor run."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=100)
    source_id: str = Field(default="dry-run", min_length=1, max_length=100)
    at: AwareDatetime | None = None
    model: str | None = Field(default=None, max_length=256)
    deployment: str | None = Field(default=None, max_length=64)
    environment: str | None = Field(default=None, max_length=64)
    findings: list[FindingRecord] = Field(max_length=1000)


class DryRunRequest(BaseModel):
    """What to evaluate: given runs (oldest first), or the last recorded runs of the project."""

    model_config = ConfigDict(extra="forbid")

    runs: list[RunRecord] | None = Field(default=None, max_length=100)
    last_runs: int | None = Field(default=None, ge=1, le=100)
    version: int | None = Field(default=None, ge=1, le=MAX_SQL_INTEGER)
    now: AwareDatetime | None = None
    with_cooldowns: bool = True


class DryRunPublic(BaseModel):
    """The decisions the policy would take; nothing was done."""

    policy_version: int
    runs: int
    decisions: list[dict[str, Any]]


class PolicyDecisionPublic(BaseModel):
    """A decision taken by the loop, with its inputs and outcomes."""

    id: uuid.UUID
    policy_version: int
    rule: str
    scope_key: str
    status: str
    decided_at: datetime
    source_id: str
    run_ids: list[str]
    finding_ids: list[str]
    outcomes: list[dict[str, Any]]
    reason: str


@router.post("/policies", status_code=status.HTTP_201_CREATED, summary="Create a policy")
def create(
    body: PolicyCreate,
    actor: Annotated[Actor, Depends(require(Permission.POLICY_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> PolicyPublic:
    """Store a policy and its first version (active, or pending an approval)."""
    policy, _ = create_policy(
        session=session,
        project_id=project.id,
        actor=actor,
        name=body.name,
        document=body.document,
        source=body.source,
        reason=body.reason,
    )
    return PolicyPublic.of(policy, session)


@router.get(
    "/policies", dependencies=[Depends(require(Permission.POLICY_READ))], summary="List policies"
)
def read_policies(
    project: CurrentProject, session: SessionDep, page: PageDep
) -> list[PolicyPublic]:
    """Return the project's policies by name."""
    found = list_policies(session=session, project_id=project.id)
    return [
        PolicyPublic.of(p, session) for p in page.answer_all(found, key_of=lambda p: (p.name, p.id))
    ]


@router.get(
    "/policies/{policy_id}",
    dependencies=[Depends(require(Permission.POLICY_READ))],
    summary="Read a policy",
)
def read_policy(policy_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> PolicyPublic:
    """Return one policy."""
    return PolicyPublic.of(
        get_policy(session=session, project_id=project.id, policy_id=policy_id), session
    )


@router.patch("/policies/{policy_id}", summary="Enable or disable a policy")
def update(
    policy_id: uuid.UUID,
    body: PolicyUpdate,
    actor: Annotated[Actor, Depends(require(Permission.POLICY_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> PolicyPublic:
    """Turn a policy on or off (off: it decides nothing and gates nothing)."""
    policy = get_policy(session=session, project_id=project.id, policy_id=policy_id)
    return PolicyPublic.of(
        set_enabled(session=session, policy=policy, enabled=body.enabled, actor=actor), session
    )


@router.post(
    "/policies/{policy_id}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Add a version to a policy",
)
def create_version(
    policy_id: uuid.UUID,
    body: VersionCreate,
    actor: Annotated[Actor, Depends(require(Permission.POLICY_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> VersionPublic:
    """Store a new version (active at once, or pending an approval the project requires)."""
    policy = get_policy(session=session, project_id=project.id, policy_id=policy_id)
    row = add_version(
        session=session,
        policy=policy,
        actor=actor,
        document=body.document,
        source=body.source,
        reason=body.reason,
    )
    return VersionPublic.of(row, policy)


@router.get(
    "/policies/{policy_id}/versions",
    dependencies=[Depends(require(Permission.POLICY_READ))],
    summary="List a policy's versions",
)
def read_versions(
    policy_id: uuid.UUID, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[VersionPublic]:
    """Return the policy's versions, oldest first."""
    policy = get_policy(session=session, project_id=project.id, policy_id=policy_id)
    found = list_versions(session=session, policy=policy)
    return [
        VersionPublic.of(v, policy) for v in page.answer_all(found, key_of=lambda v: (v.version,))
    ]


@router.post("/policies/{policy_id}/versions/{version}:activate", summary="Activate a version")
def activate(
    policy_id: uuid.UUID,
    version: Annotated[int, Path(ge=1, le=MAX_SQL_INTEGER)],
    actor: Annotated[Actor, Depends(require(Permission.POLICY_WRITE))],
    project: CurrentProject,
    session: SessionDep,
    engine: EngineDep,
) -> VersionPublic:
    """Make a version the one that decides (it must be approved if the project says so).

    A refusal is audited as ``denied`` in its own transaction, after this request's transaction
    is rolled back (on SQLite it holds the write lock the audit needs).
    """
    policy = get_policy(session=session, project_id=project.id, policy_id=policy_id)
    try:
        row = activate_version(session=session, policy=policy, version=version, actor=actor)
    except PermissionDenied as denied:
        session.rollback()
        append_in_own_transaction(
            engine=engine,
            actor=actor,
            action="policy.activate",
            target=f"policy:{policy_id}",
            reason=denied.detail,
            detail={"version": version},
            project_id=project.id,
        )
        raise
    return VersionPublic.of(row, policy)


@router.get(
    "/policies/{policy_id}/decisions",
    dependencies=[Depends(require(Permission.POLICY_READ))],
    summary="List a policy's decisions",
)
def read_decisions(
    policy_id: uuid.UUID, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[PolicyDecisionPublic]:
    """Return the policy's decisions, newest first, with their inputs and outcomes."""
    policy = get_policy(session=session, project_id=project.id, policy_id=policy_id)
    found = keyset_page(
        session=session,
        query=select(PolicyDecision).where(PolicyDecision.policy_id == policy.id),
        keys=[
            SortKey(col(PolicyDecision.decided_at), "desc"),
            SortKey(col(PolicyDecision.id), "desc"),
        ],
        key_of=lambda d: (d.decided_at, d.id),
        limit=page.limit,
        cursor=page.cursor,
    )
    return [
        PolicyDecisionPublic.model_validate(r, from_attributes=True) for r in page.answer(found)
    ]


@router.post(
    "/policies/{policy_id}:dry-run",
    dependencies=[Depends(require(Permission.POLICY_READ))],
    summary="Show what a policy would decide, without acting",
)
def dry_run(
    policy_id: uuid.UUID, body: DryRunRequest, project: CurrentProject, session: SessionDep
) -> DryRunPublic:
    """Evaluate a version on given findings or on the last recorded runs; act on nothing."""
    if (body.runs is None) == (body.last_runs is None):
        raise InvalidInput("give either 'runs' (findings) or 'last_runs' (a count)", field="runs")
    policy = get_policy(session=session, project_id=project.id, policy_id=policy_id)
    number = body.version or policy.active_version or policy.latest_version
    row = get_version(session=session, policy=policy, version=number)
    ref = PolicyRef(policy_id=policy.id, name=policy.name, version=number, document=row.parsed())
    now = body.now or utcnow()
    runs = (
        None
        if body.runs is None
        else [
            RunFindings(
                run_id=r.run_id,
                source_id=r.source_id,
                at=r.at or now,
                findings=tuple(f.finding() for f in r.findings),
                model=r.model,
                deployment=r.deployment,
                environment=r.environment,
            )
            for r in body.runs
        ]
    )
    judged, decisions = replay(
        session=session,
        project_id=project.id,
        policy=ref,
        now=now,
        runs=runs,
        last_runs=body.last_runs or 1,
        with_cooldowns=body.with_cooldowns,
    )
    return DryRunPublic(
        policy_version=number, runs=judged, decisions=[d.to_dict() for d in decisions]
    )
