"""LLM deployments over REST: bind a slot to a prompt and an endpoint; promote prompt versions.

* ``POST …/llm-deployments`` creates a binding (``deployment:write``, audited); nothing is live.
* ``GET …/llm-deployments`` and ``GET …/llm-deployments/{name}`` read them (``model:read``),
  with the version each serves.
* ``PATCH`` / ``DELETE …/llm-deployments/{name}`` change or remove a binding
  (``deployment:write``, audited before → after); a slot that serves a version is not removed.
* ``POST …/llm-deployments/{name}/promote`` puts an approved prompt version live
  (``model:promote``) through :func:`retrain.promotion.promote_prompt`; a refusal by the rule is
  audited as ``denied``.

The slot is ``(name, environment)``; ``environment`` is a query parameter (``production`` when
left out). Credentials are write-only: answers and audit entries say only where the key comes
from (``env:NAME``, ``sealed`` or ``none``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SessionDep
from api.pages import PageDep
from api.routes.deployments_serving import get_registry
from api.routes.llm_governance import request_box
from api.routes.promotions import PromotionPublic, promotion_public, refusal_audited
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit import act_then_audit
from governance.permissions import Permission
from lineage.models import ModelVersion
from retrain.llm_deployments import (
    LlmDeployment,
    LlmDeploymentCreate,
    LlmDeploymentUpdate,
    create_llm_deployment,
    credentials_label,
    delete_llm_deployment,
    describe,
    get_llm_deployment,
    list_llm_deployments,
    live_row,
    update_llm_deployment,
)
from retrain.promotion import promote_prompt

__all__ = ["LlmDeploymentPublic", "PromptPromoteRequest", "router"]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["llm deployments"]
)

_SLUG = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Environment = Annotated[str, Query(pattern=_SLUG)]
Writer = Annotated[Actor, Depends(require(Permission.DEPLOYMENT_WRITE))]


class LlmDeploymentPublic(BaseModel):
    """An LLM deployment: its endpoint (never its key) and the prompt version it serves."""

    id: uuid.UUID
    name: str
    environment: str
    prompt: str
    base_url: str
    model: str
    credentials: str
    description: str
    live_version: str | None
    live_from: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, binding: LlmDeployment, *, session: Session) -> LlmDeploymentPublic:
        """Present a binding with what its slot serves now."""
        live = live_row(session=session, binding=binding)
        version = session.get(ModelVersion, live.model_version_id) if live else None
        return cls(
            id=binding.id,
            name=binding.name,
            environment=binding.environment,
            prompt=binding.prompt_name,
            base_url=binding.base_url,
            model=binding.model,
            credentials=credentials_label(binding),
            description=binding.description,
            live_version=version.version if version else None,
            live_from=live.live_from if live else None,
            created_at=binding.created_at,
            updated_at=binding.updated_at,
        )


class PromptPromoteRequest(BaseModel):
    """Which approved version of the deployment's prompt goes live, and why."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^[0-9]{1,18}$")
    environment: str = Field(default="production", pattern=_SLUG)
    reason: str = Field(default="", max_length=4000)


@router.post(
    "/llm-deployments",
    status_code=status.HTTP_201_CREATED,
    summary="Create an LLM deployment (prompt + endpoint); nothing goes live",
)
def create(
    spec: LlmDeploymentCreate,
    request: Request,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
) -> LlmDeploymentPublic:
    """Bind a slot to a prompt and an OpenAI-compatible endpoint; a key is sealed at once."""
    binding = act_then_audit(
        lambda: create_llm_deployment(
            session=session,
            project_id=project.id,
            spec=spec,
            box=request_box(request),
            created_by=actor.principal_id,
        ),
        session=session,
        actor=actor,
        action="llm_deployment.create",
        target=lambda made: f"llm_deployment:{made.id}",
        detail=lambda made: {"after": describe(made)},
    )
    return LlmDeploymentPublic.of(binding, session=session)


@router.get(
    "/llm-deployments",
    dependencies=[Depends(require(Permission.MODEL_READ))],
    summary="List LLM deployments",
)
def list_all(
    project: CurrentProject, session: SessionDep, page: PageDep
) -> list[LlmDeploymentPublic]:
    """Return the project's LLM deployments by name and environment, with what each serves."""
    found = page.answer_all(
        list_llm_deployments(session=session, project_id=project.id),
        key_of=lambda b: (b.name, b.environment, b.id),
    )
    return [LlmDeploymentPublic.of(b, session=session) for b in found]


@router.get(
    "/llm-deployments/{name}",
    dependencies=[Depends(require(Permission.MODEL_READ))],
    summary="Read an LLM deployment",
)
def read(
    name: str, project: CurrentProject, session: SessionDep, environment: Environment = "production"
) -> LlmDeploymentPublic:
    """Return one LLM deployment with the version it serves."""
    binding = get_llm_deployment(
        session=session, project_id=project.id, name=name, environment=environment
    )
    return LlmDeploymentPublic.of(binding, session=session)


@router.patch("/llm-deployments/{name}", summary="Change an LLM deployment's endpoint")
def update(
    name: str,
    spec: LlmDeploymentUpdate,
    request: Request,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    environment: Environment = "production",
) -> LlmDeploymentPublic:
    """Change the base URL, model, credentials or description; audited before → after."""
    binding = get_llm_deployment(
        session=session, project_id=project.id, name=name, environment=environment
    )
    before = describe(binding)
    changed = act_then_audit(
        lambda: update_llm_deployment(
            session=session, binding=binding, spec=spec, box=request_box(request)
        ),
        session=session,
        actor=actor,
        action="llm_deployment.update",
        target=f"llm_deployment:{binding.id}",
        detail=lambda made: {
            "before": before,
            "after": describe(made),
            "credentials_replaced": spec.api_key is not None or spec.api_key_env is not None,
        },
    )
    return LlmDeploymentPublic.of(changed, session=session)


@router.delete(
    "/llm-deployments/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an LLM deployment that serves nothing",
)
def delete(
    name: str,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    environment: Environment = "production",
) -> Response:
    """Remove the binding (its slot's history stays in lineage)."""
    binding = get_llm_deployment(
        session=session, project_id=project.id, name=name, environment=environment
    )
    before = describe(binding)
    target = f"llm_deployment:{binding.id}"
    act_then_audit(
        lambda: delete_llm_deployment(session=session, binding=binding),
        session=session,
        actor=actor,
        action="llm_deployment.delete",
        target=target,
        detail={"before": before},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/llm-deployments/{name}/promote",
    summary="Put an approved prompt version live in an LLM deployment",
)
def promote(
    name: str,
    body: PromptPromoteRequest,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_PROMOTE))],
    project: CurrentProject,
    session: SessionDep,
    engine: EngineDep,
) -> PromotionPublic:
    """Check the going-live rule, record the slot's new version, audit, move the alias.

    Refused (403, audited) without an approved request, when its author approved it, or when a
    policy gate or a ``block_promotion`` stops it.
    """
    binding = get_llm_deployment(
        session=session, project_id=project.id, name=name, environment=body.environment
    )
    with refusal_audited(
        session=session,
        engine=engine,
        actor=actor,
        action="prompt.promote",
        target=f"prompt:{binding.prompt_name}/{body.version}",
        detail={"deployment": name, "environment": body.environment},
        project_id=project.id,
    ):
        promotion = promote_prompt(
            session=session,
            binding=binding,
            version=body.version,
            actor=actor,
            registry=get_registry(request),
            reason=body.reason,
        )
    return promotion_public(promotion, session)
