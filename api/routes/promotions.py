"""Every route that changes what a deployment serves, plus promotion requests and evaluations.

* ``POST …/models/{name}/versions/{version}/promotion-requests`` asks for approval, barring the
  version's trainers from deciding it (``approval:request``).
* ``POST …/models/{name}/versions/{version}/promote`` makes an approved version live in a slot
  with the chosen deployer and moves the ``champion`` alias (``model:promote``).
* ``POST …/deployments`` records that an outside system put an approved version live
  (``deployment:write``).
* ``POST …/deployments/{name}/rollback`` puts the previous version back (``model:promote``).
* ``POST …/deployments/{name}/redeploy`` deploys the live version again, reloaded and
  hash-checked (``model:promote``).
* ``GET …/models/{name}/versions/{version}/evaluations`` reads the stored comparisons with the
  champion (``model:read``).

The rule every one of them applies (approval, separation of duties, policy gates) lives in
:mod:`retrain.promotion`; these routes only gate, parse and present. A refusal by that rule is
audited as ``denied`` in its own transaction, so the record survives the request's rollback.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SessionDep
from api.pages import PageDep
from api.routes.deployments_serving import get_embedded_deployer, get_registry
from api.routes.model_versions import DeploymentPublic
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit import append_in_own_transaction
from governance.permissions import Permission
from lineage.deployments import DeploymentCreate
from lineage.errors import PermissionDenied
from lineage.model_versions import get_model_version
from lineage.models import ModelVersion, VersionKind
from lineage.pages import SortKey, keyset_page
from retrain.champions import Promotion
from retrain.deployers import AliasDeployer, Deployer
from retrain.evaluation import Evaluation
from retrain.promotion import promote, record_live, redeploy, request_promotion, rollback

__all__ = [
    "ApprovalRequestedPublic",
    "EvaluationPublic",
    "PromoteRequest",
    "PromotionPublic",
    "PromotionRequestCreate",
    "Redeployed",
    "RollbackRequest",
    "promotion_public",
    "refusal_audited",
    "router",
]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["promotion"]
)

_SLUG = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class PromotionRequestCreate(BaseModel):
    """Why the version should go live (shown to the approvers)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000)


class PromoteRequest(BaseModel):
    """Where the approved version goes live, and through which deployer."""

    model_config = ConfigDict(extra="forbid")

    deployment: str = Field(pattern=_SLUG)
    environment: str = Field(default="production", pattern=_SLUG)
    deployer: Literal["embedded", "alias"] = "embedded"
    reason: str = Field(default="", max_length=4000)


class RollbackRequest(BaseModel):
    """Which slot to roll back, and why."""

    model_config = ConfigDict(extra="forbid")

    environment: str = Field(default="production", pattern=_SLUG)
    deployer: Literal["embedded", "alias"] = "embedded"
    reason: str = Field(default="", max_length=4000)


class Redeployed(BaseModel):
    """The version a slot serves again after a redeploy."""

    deployment: str
    environment: str
    model_name: str
    model_version: str
    deployer: str


class PromotionPublic(BaseModel):
    """One change of a slot's live version."""

    id: uuid.UUID
    kind: str
    model_name: str
    model_version: str
    previous_version: str | None
    deployment: str
    environment: str
    deployer: str
    approval_id: uuid.UUID | None
    lineage_deployment_id: uuid.UUID
    actor_name: str
    reason: str
    created_at: datetime


class EvaluationPublic(BaseModel):
    """A candidate and the champion scored side by side on the same rows."""

    id: uuid.UUID
    model_name: str
    candidate_version_id: uuid.UUID
    champion_version_id: uuid.UUID | None
    holdout: str
    rows: int
    sensitive_features: list[str]
    performance: dict[str, Any]
    fairness: dict[str, Any]
    created_at: datetime


class ApprovalRequestedPublic(BaseModel):
    """The approval request opened for a promotion."""

    approval_id: uuid.UUID
    status: str
    required_approvals: int


def promotion_public(promotion: Promotion, session: Session) -> PromotionPublic:
    """Present one change of a slot's live version."""
    version = session.get(ModelVersion, promotion.model_version_id)
    previous = (
        session.get(ModelVersion, promotion.previous_version_id)
        if promotion.previous_version_id
        else None
    )
    assert version is not None
    return PromotionPublic(
        id=promotion.id,
        kind=promotion.kind,
        model_name=promotion.model_name,
        model_version=version.version,
        previous_version=previous.version if previous else None,
        deployment=promotion.deployment,
        environment=promotion.environment,
        deployer=promotion.deployer,
        approval_id=promotion.approval_id,
        lineage_deployment_id=promotion.lineage_deployment_id,
        actor_name=promotion.actor_name,
        reason=promotion.reason,
        created_at=promotion.created_at,
    )


@contextmanager
def refusal_audited(
    *,
    session: Session,
    engine: Engine,
    actor: Actor,
    action: str,
    target: str,
    detail: dict[str, Any],
    project_id: uuid.UUID,
) -> Iterator[None]:
    """Audit a refusal by the going-live rule as ``denied``, apart from the failed request."""
    try:
        yield
    except PermissionDenied as denied:
        session.rollback()  # release the store (SQLite's write lock) before auditing apart
        append_in_own_transaction(
            engine=engine,
            actor=actor,
            action=action,
            target=target,
            reason=denied.detail,
            detail=detail,
            project_id=project_id,
        )
        raise


def _deployer(request: Request, kind: str) -> Deployer:
    if kind == "alias":
        return AliasDeployer(registry=get_registry(request))
    return get_embedded_deployer(request)


@router.post(
    "/models/{name}/versions/{version}/promotion-requests",
    status_code=status.HTTP_201_CREATED,
    summary="Ask for approval to promote a version",
)
def ask_promotion(
    name: str,
    version: str,
    body: PromotionRequestCreate,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_REQUEST))],
    project: CurrentProject,
    session: SessionDep,
) -> ApprovalRequestedPublic:
    """Open an approval request; whoever trained or registered the version may not decide it."""
    model_version = get_model_version(
        session=session, project_id=project.id, name=name, version=version
    )
    approval = request_promotion(
        session=session, actor=actor, model_version=model_version, reason=body.reason
    )
    return ApprovalRequestedPublic(
        approval_id=approval.id,
        status=str(approval.status),
        required_approvals=approval.required_approvals,
    )


@router.post(
    "/models/{name}/versions/{version}/promote",
    summary="Promote an approved version to champion of a deployment",
)
def promote_version(
    name: str,
    version: str,
    body: PromoteRequest,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_PROMOTE))],
    project: CurrentProject,
    session: SessionDep,
    engine: EngineDep,
) -> PromotionPublic:
    """Deploy, record the deployment, audit, then move the ``champion`` alias.

    Refused (403, audited) without an approved request, when a trainer approved it, or when a
    policy gate or a ``block_promotion`` stops it.
    """
    with refusal_audited(
        session=session,
        engine=engine,
        actor=actor,
        action="model.promote",
        target=f"model:{name}/{version}",
        detail={"deployment": body.deployment, "environment": body.environment},
        project_id=project.id,
    ):
        promotion = promote(
            session=session,
            project_id=project.id,
            model_name=name,
            version=version,
            deployment=body.deployment,
            environment=body.environment,
            actor=actor,
            registry=get_registry(request),
            deployer=_deployer(request, body.deployer),
            reason=body.reason,
        )
    return promotion_public(promotion, session)


@router.post(
    "/deployments",
    status_code=status.HTTP_201_CREATED,
    summary="Record that an approved version went live outside Warden",
)
def create_deployment(
    spec: DeploymentCreate,
    actor: Annotated[Actor, Depends(require(Permission.DEPLOYMENT_WRITE))],
    project: CurrentProject,
    session: SessionDep,
    engine: EngineDep,
) -> DeploymentPublic:
    """Record a deployment under the promotion rule, ending the slot's previous one.

    Refused (403, audited) like a promotion: the version needs an approved promotion request
    decided by people who did not train it, and must pass the policy gates.
    """
    with refusal_audited(
        session=session,
        engine=engine,
        actor=actor,
        action="deployment.record",
        target=f"model:{spec.model_name}/{spec.model_version}",
        detail={"deployment": spec.name, "environment": spec.environment},
        project_id=project.id,
    ):
        deployment = record_live(session=session, project_id=project.id, spec=spec, actor=actor)
    return DeploymentPublic.of(deployment, session=session)


@router.post("/deployments/{name}/rollback", summary="Roll a deployment back one version")
def roll_back(
    name: str,
    body: RollbackRequest,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_PROMOTE))],
    project: CurrentProject,
    session: SessionDep,
    engine: EngineDep,
) -> PromotionPublic:
    """Put the version the live one replaced back live, in one audited call.

    It asks for no new approval, but the earlier version must still hold its approval and pass
    the gates that judge a version by itself (403, audited, otherwise).
    """
    with refusal_audited(
        session=session,
        engine=engine,
        actor=actor,
        action="model.rollback",
        target=f"deployment:{body.environment}:{name}",
        detail={"deployment": name, "environment": body.environment},
        project_id=project.id,
    ):
        promotion = rollback(
            session=session,
            project_id=project.id,
            deployment=name,
            environment=body.environment,
            actor=actor,
            registry=get_registry(request),
            deployer=_deployer(request, body.deployer),
            reason=body.reason,
        )
    return promotion_public(promotion, session)


@router.post("/deployments/{name}/redeploy", summary="Deploy a deployment's live version again")
def redeploy_live(
    name: str,
    body: RollbackRequest,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_PROMOTE))],
    project: CurrentProject,
    session: SessionDep,
    engine: EngineDep,
) -> Redeployed:
    """Load the live version again (hash-checked) through the deployer, audited ``model.redeploy``.

    Judged like a rollback: no new approval, but the live version must still hold its approval
    and pass the gates that judge a version by itself (403, audited, otherwise).
    """
    deployer = _deployer(request, body.deployer)
    with refusal_audited(
        session=session,
        engine=engine,
        actor=actor,
        action="model.redeploy",
        target=f"deployment:{body.environment}:{name}",
        detail={"deployment": name, "environment": body.environment},
        project_id=project.id,
    ):
        version = redeploy(
            session=session,
            project_id=project.id,
            deployment=name,
            environment=body.environment,
            actor=actor,
            deployer=deployer,
            reason=body.reason,
            registry=get_registry(request),
        )
    return Redeployed(
        deployment=name,
        environment=body.environment,
        model_name=version.name,
        model_version=version.version,
        deployer="prompt" if version.kind == VersionKind.PROMPT else deployer.name,
    )


@router.get(
    "/deployments/{name}/promotions",
    dependencies=[Depends(require(Permission.MODEL_READ))],
    summary="List a deployment's promotions and rollbacks",
)
def read_promotions(
    name: str, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[PromotionPublic]:
    """Return the slot's history of promotions and rollbacks, newest first."""
    found = keyset_page(
        session=session,
        query=select(Promotion).where(
            Promotion.project_id == project.id, Promotion.deployment == name
        ),
        keys=[SortKey(col(Promotion.created_at), "desc"), SortKey(col(Promotion.id), "desc")],
        key_of=lambda p: (p.created_at, p.id),
        limit=page.limit,
        cursor=page.cursor,
    )
    return [promotion_public(row, session) for row in page.answer(found)]


@router.get(
    "/models/{name}/versions/{version}/evaluations",
    dependencies=[Depends(require(Permission.MODEL_READ))],
    summary="List a version's evaluations against the champion",
)
def read_evaluations(
    name: str, version: str, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[EvaluationPublic]:
    """Return the stored evaluations of a candidate version, newest first."""
    model_version = get_model_version(
        session=session, project_id=project.id, name=name, version=version
    )
    found = keyset_page(
        session=session,
        query=select(Evaluation).where(
            Evaluation.project_id == project.id,
            Evaluation.candidate_version_id == model_version.id,
        ),
        keys=[SortKey(col(Evaluation.created_at), "desc"), SortKey(col(Evaluation.id), "desc")],
        key_of=lambda e: (e.created_at, e.id),
        limit=page.limit,
        cursor=page.cursor,
    )
    return [
        EvaluationPublic.model_validate(row, from_attributes=True) for row in page.answer(found)
    ]
