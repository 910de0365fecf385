"""Promotion and rollback: the guarded way a model version becomes (or stops being) champion.

:func:`promote` makes a registered version live in a deployment slot:

1. **Approval.** The project's approval rule for ``promote`` (N distinct approvers) must be met
   by an approved request for this version (:func:`governance.approvals.is_approved`); none of
   its approvers may be whoever trained or registered the version (separation of duties,
   checked here again even if the request forgot to bar them). Open one with
   :func:`request_promotion`, which bars them up front.
2. **Deploy.** The :class:`~retrain.deployers.Deployer` makes the version live (the embedded one
   loads it after its hash check); if it refuses, nothing changed.
3. **Record.** The deployment is recorded in lineage, a :class:`Promotion` row remembers which
   version it replaced, and an audit entry ``model.promote`` says who, what, before and after —
   all in the caller's transaction.
4. **Aliases.** Last, MLflow's ``champion`` alias moves to the version (and ``challenger`` is
   cleared if it pointed there). Aliases are not transactional: they move after every database
   write is flushed, and are moved back if that fails.

:func:`rollback` is one call: the slot goes back to the version the current one replaced, with
the same deploy → record → alias steps, audited as ``model.rollback``. It needs no approval —
undoing a change must never wait — but it needs ``model:promote`` at the route. Rolling back
again walks further back through the slot's history.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Field, Session, col, select

from governance import Actor, append
from governance.approvals import (
    ApprovalAction,
    ApprovalRequest,
    decisions_of,
    find_approved,
    request_approval,
)
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.errors import Conflict, NotFound, PermissionDenied, SeparationOfDuties
from lineage.models import ModelVersion
from lineage.registry import get_model_version
from lineage.tables import Record
from retrain.deployers import Deployer, mlflow_coordinates
from retrain.pipelines import PipelineRun
from retrain.registry import CHALLENGER, CHAMPION, Registry

__all__ = [
    "Promotion",
    "PromotionGate",
    "current_champion",
    "promote",
    "request_promotion",
    "rollback",
    "trainers_of",
]

_TARGET_KIND = "model_version"


class Promotion(Record, table=True):
    """One change of the live version of a slot: a promotion or a rollback."""

    __tablename__ = "retrain_promotion"

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    model_name: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    deployment: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    environment: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    model_version_id: uuid.UUID = Field(foreign_key="lineage_model_version.id", index=True)
    previous_version_id: uuid.UUID | None = Field(
        default=None, foreign_key="lineage_model_version.id"
    )
    lineage_deployment_id: uuid.UUID = Field(foreign_key="lineage_deployment.id")
    approval_id: uuid.UUID | None = Field(default=None)
    deployer: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    actor_id: uuid.UUID | None = Field(default=None)
    actor_name: str = Field(sa_column=sa.Column(sa.String(256), nullable=False))
    reason: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))


class PromotionGate(Protocol):
    """A rule a version must pass to go live (policies plug in here); raise to block it.

    Called after the approval check and before anything changes, with the version and the
    champion it would replace. A gate blocks by raising
    :class:`~lineage.errors.PermissionDenied` with a message naming the rule and the numbers.
    """

    def __call__(
        self, *, session: Session, model_version: ModelVersion, champion: ModelVersion | None
    ) -> None:
        """Return to let the promotion proceed; raise to block it."""


def trainers_of(*, session: Session, model_version: ModelVersion) -> set[uuid.UUID]:
    """Return who trained or registered a version: they may not approve its promotion."""
    people = {model_version.registered_by} if model_version.registered_by else set()
    runs = session.exec(
        select(PipelineRun.requested_by).where(PipelineRun.model_version_id == model_version.id)
    ).all()
    return people | {r for r in runs if r is not None}


def _latest(
    session: Session, project_id: uuid.UUID, deployment: str, environment: str
) -> Promotion | None:
    return session.exec(
        select(Promotion)
        .where(
            Promotion.project_id == project_id,
            Promotion.deployment == deployment,
            Promotion.environment == environment,
        )
        .order_by(sa.desc(col(Promotion.created_at)))
    ).first()


def current_champion(
    *, session: Session, project_id: uuid.UUID, model_name: str
) -> ModelVersion | None:
    """Return the version most recently made live for ``model_name`` (any slot), if any."""
    row = session.exec(
        select(Promotion)
        .where(Promotion.project_id == project_id, Promotion.model_name == model_name)
        .order_by(sa.desc(col(Promotion.created_at)))
    ).first()
    return None if row is None else session.get(ModelVersion, row.model_version_id)


def request_promotion(
    *, session: Session, actor: Actor, model_version: ModelVersion, reason: str
) -> ApprovalRequest:
    """Ask for approval to promote a version, barring its trainers from deciding."""
    return request_approval(
        session=session,
        actor=actor,
        action=ApprovalAction.PROMOTE,
        target_kind=_TARGET_KIND,
        target_id=str(model_version.id),
        reason=reason,
        barred=trainers_of(session=session, model_version=model_version),
    )


def _check_approval(session: Session, project_id: uuid.UUID, version: ModelVersion) -> uuid.UUID:
    approval = find_approved(
        session=session,
        project_id=project_id,
        action=ApprovalAction.PROMOTE,
        target_kind=_TARGET_KIND,
        target_id=str(version.id),
    )
    if approval is None:
        raise PermissionDenied(
            f"promoting {version.name!r} version {version.version} needs an approved request; "
            f"ask with POST …/models/{version.name}/versions/{version.version}:request-promotion "
            "and wait for the approvers"
        )
    barred = trainers_of(session=session, model_version=version)
    approvers = {d.principal_id for d in decisions_of(session=session, approval_id=approval.id)}
    if approvers & barred:
        raise SeparationOfDuties(
            f"version {version.version} of {version.name!r} was approved by someone who trained "
            "or registered it; a different person must approve it"
        )
    return approval.id


def _make_live(
    *,
    session: Session,
    project_id: uuid.UUID,
    version: ModelVersion,
    previous: ModelVersion | None,
    previous_of_new: uuid.UUID | None,
    deployment: str,
    environment: str,
    kind: str,
    actor: Actor,
    registry: Registry,
    deployer: Deployer,
    reason: str,
    approval_id: uuid.UUID | None,
) -> Promotion:
    deployer.deploy(model_version=version, deployment=deployment, environment=environment)
    lineage_deployment = record_deployment(
        session=session,
        project_id=project_id,
        spec=DeploymentCreate(
            name=deployment,
            environment=environment,
            model_name=version.name,
            model_version=version.version,
        ),
        recorded_by=actor.principal_id,
    )
    promotion = Promotion(
        project_id=project_id,
        model_name=version.name,
        deployment=deployment,
        environment=environment,
        kind=kind,
        model_version_id=version.id,
        previous_version_id=previous_of_new,
        lineage_deployment_id=lineage_deployment.id,
        approval_id=approval_id,
        deployer=deployer.name,
        actor_id=actor.principal_id,
        actor_name=actor.name,
        reason=reason[:4000],
    )
    session.add(promotion)
    session.flush()
    detail: dict[str, Any] = {
        "model_name": version.name,
        "deployment": deployment,
        "environment": environment,
        "before": previous.version if previous else None,
        "after": version.version,
        "deployer": deployer.name,
    }
    if approval_id is not None:
        detail["approval_id"] = str(approval_id)
    append(
        session=session,
        actor=actor,
        action=f"model.{kind}",
        target=f"{_TARGET_KIND}:{version.id}",
        reason=reason[:4000],
        detail=detail,
        project_id=project_id,
    )
    name, mlflow_version = mlflow_coordinates(version)
    before = registry.alias_version(name, CHAMPION)
    registry.set_alias(name, CHAMPION, mlflow_version)
    try:
        if registry.alias_version(name, CHALLENGER) == mlflow_version:
            registry.delete_alias(name, CHALLENGER)
        session.flush()
    except BaseException:
        if before is None:
            registry.delete_alias(name, CHAMPION)
        else:
            registry.set_alias(name, CHAMPION, before)
        raise
    return promotion


def promote(
    *,
    session: Session,
    project_id: uuid.UUID,
    model_name: str,
    version: str,
    deployment: str,
    environment: str,
    actor: Actor,
    registry: Registry,
    deployer: Deployer,
    reason: str = "",
    gates: Sequence[PromotionGate] = (),
) -> Promotion:
    """Make ``model_name`` ``version`` live in a slot after its approval; see the module doc.

    Raises:
        NotFound: No such version in the project.
        PermissionDenied: No approved request for this version.
        SeparationOfDuties: Someone who trained or registered it approved it.
        PermissionDenied: A gate blocked it.
        Conflict: It is live in the slot already, or the deployer refused it.
    """
    target = get_model_version(
        session=session, project_id=project_id, name=model_name, version=version
    )
    approval_id = _check_approval(session, project_id, target)
    latest = _latest(session, project_id, deployment, environment)
    previous = session.get(ModelVersion, latest.model_version_id) if latest else None
    if previous is not None and previous.id == target.id:
        raise Conflict(
            f"version {version} of {model_name!r} is live in {deployment!r} ({environment}) already"
        )
    for gate in gates:
        gate(session=session, model_version=target, champion=previous)
    return _make_live(
        session=session,
        project_id=project_id,
        version=target,
        previous=previous,
        previous_of_new=previous.id if previous else None,
        deployment=deployment,
        environment=environment,
        kind="promote",
        actor=actor,
        registry=registry,
        deployer=deployer,
        reason=reason,
        approval_id=approval_id,
    )


def rollback(
    *,
    session: Session,
    project_id: uuid.UUID,
    deployment: str,
    environment: str,
    actor: Actor,
    registry: Registry,
    deployer: Deployer,
    reason: str = "",
) -> Promotion:
    """Put the version the current one replaced back live in the slot (one call, audited).

    Raises:
        NotFound: Nothing was ever promoted in the slot.
        Conflict: The live version replaced nothing, so there is nothing to go back to.
    """
    latest = _latest(session, project_id, deployment, environment)
    if latest is None:
        raise NotFound(f"nothing was promoted in deployment {deployment!r} ({environment})")
    if latest.previous_version_id is None:
        raise Conflict(
            f"the live version of {deployment!r} ({environment}) replaced nothing; "
            "there is no earlier version to roll back to"
        )
    current = session.get(ModelVersion, latest.model_version_id)
    target = session.get(ModelVersion, latest.previous_version_id)
    assert current is not None
    assert target is not None
    # Where the target itself came from, so a second rollback goes one step further back.
    made_target_live = session.exec(
        select(Promotion)
        .where(
            Promotion.project_id == project_id,
            Promotion.deployment == deployment,
            Promotion.environment == environment,
            Promotion.model_version_id == target.id,
        )
        .order_by(sa.desc(col(Promotion.created_at)))
    ).first()
    return _make_live(
        session=session,
        project_id=project_id,
        version=target,
        previous=current,
        previous_of_new=made_target_live.previous_version_id if made_target_live else None,
        deployment=deployment,
        environment=environment,
        kind="rollback",
        actor=actor,
        registry=registry,
        deployer=deployer,
        reason=reason or f"roll back from version {current.version}",
        approval_id=None,
    )
