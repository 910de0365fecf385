"""Prompts over REST: register immutable versions, read them (cacheable), ask to promote them.

* ``POST …/prompts/{name}/versions`` registers a version in lineage and MLflow's prompt registry
  (``model:write``, audited ``prompt_version.register``).
* ``GET …/prompts``, ``GET …/prompts/{name}`` and ``GET …/prompts/{name}/versions`` list them
  (``model:read``).
* ``GET …/prompts/{name}@{alias}`` (``production``, any environment, or ``latest``),
  ``GET …/prompts/{name}/versions/{version}`` and ``GET …/prompts/{name}/{version}`` return one
  version with a strong ``ETag``; ``If-None-Match`` with that tag answers ``304`` and no body, so
  applications can ask on every call and download only after a promotion.
* ``GET …/prompts/{name}/versions/{version}/traces`` lists the spans the version produced
  (``trace:read``; see :mod:`monitors.traces.prompt_links`).
* ``POST …/prompts/{name}/versions/{version}/promotion-requests`` asks for approval
  (``approval:request``), barring the version's author from deciding it, exactly as for models.

Nothing here puts a version live: that is ``POST …/llm-deployments/{name}/promote``.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.pages import PageDep
from api.routes.deployments_serving import get_registry
from api.routes.promotions import ApprovalRequestedPublic, PromotionRequestCreate
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit import act_then_audit
from governance.permissions import Permission
from lineage.errors import NotFound
from lineage.models import Deployment
from lineage.prompts import (
    Prompt,
    PromptVersionCreate,
    get_prompt,
    list_prompt_names,
    list_prompts,
    page_prompts,
    prompt_uri,
    resolve_alias,
)
from monitors.traces import spans_of_prompt
from retrain.promotion import request_promotion
from retrain.prompts import register_prompt

__all__ = [
    "PromptPublic",
    "PromptSpanPublic",
    "PromptVersionPublic",
    "router",
    "version_response",
]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["prompts"]
)

_READ = [Depends(require(Permission.MODEL_READ))]


class PromptVersionPublic(BaseModel):
    """One immutable prompt version: template, model configuration and where it came from."""

    id: uuid.UUID
    name: str
    version: str
    uri: str
    template_type: str
    template: str | list[dict[str, str]]
    variables: list[str]
    model: dict[str, Any]
    commit_message: str
    content_sha256: str
    registered_by: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, prompt: Prompt) -> PromptVersionPublic:
        """Present a prompt version."""
        version, artifact = prompt.version, prompt.artifact
        return cls(
            id=version.id,
            name=version.name,
            version=version.version,
            uri=prompt_uri(version.name, version.version),
            template_type=artifact.template_type,
            template=artifact.template,
            variables=list(artifact.variables),
            model=dict(artifact.model_settings),
            commit_message=artifact.commit_message,
            content_sha256=artifact.content_sha256,
            registered_by=version.registered_by,
            created_at=version.created_at,
        )


class PromptSpanPublic(BaseModel):
    """A span a prompt version produced: named by its attributes, or live in its slot then."""

    trace_id: str
    span_id: str
    start_at: datetime
    linked_by: Literal["attribute", "deployment"]


class PromptPublic(BaseModel):
    """A prompt: how many versions it has, its newest, and which version each environment serves."""

    name: str
    versions: int
    latest: str
    aliases: dict[str, str]


def version_response(prompt: Prompt, if_none_match: str | None) -> Response:
    """Answer with a version and its strong ETag, or ``304`` when the client holds it already."""
    body = JSONResponse(PromptVersionPublic.of(prompt).model_dump(mode="json"))
    tag = f'"{hashlib.sha256(body.body).hexdigest()[:40]}"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if if_none_match is not None:
        offered = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        if tag in offered or "*" in offered:
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    body.headers.update(headers)
    return body


def _summary(session: Session, project_id: uuid.UUID, name: str) -> PromptPublic:
    versions = list_prompts(session=session, project_id=project_id, name=name)
    if not versions:
        raise NotFound(f"no prompt {name!r} in this project; register a version first")
    ids = {p.version.id: p.number for p in versions}
    live = session.exec(
        select(Deployment)
        .where(
            Deployment.project_id == project_id,
            col(Deployment.model_version_id).in_(list(ids)),
            col(Deployment.live_until).is_(None),
        )
        .order_by(col(Deployment.live_from))
    ).all()
    aliases = {row.environment: ids[row.model_version_id] for row in live}
    return PromptPublic(
        name=name, versions=len(versions), latest=versions[-1].number, aliases=aliases
    )


_CACHED: dict[int | str, dict[str, Any]] = {
    200: {"description": "The version, with its ETag."},
    304: {"description": "Not modified: the client's copy (If-None-Match) is current."},
}


@router.post(
    "/prompts/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Register a prompt version",
)
def register_version(
    name: str,
    spec: PromptVersionCreate,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> PromptVersionPublic:
    """Register an immutable version in lineage and in MLflow's prompt registry."""
    prompt = act_then_audit(
        lambda: register_prompt(
            session=session,
            project_id=project.id,
            name=name,
            spec=spec,
            registered_by=actor.principal_id,
            registry=get_registry(request),
        ),
        session=session,
        actor=actor,
        action="prompt_version.register",
        target=lambda made: f"model_version:{made.version.id}",
        detail=lambda made: {
            "name": name,
            "version": made.number,
            "content_sha256": made.artifact.content_sha256,
            "commit_message": made.artifact.commit_message,
        },
    )
    return PromptVersionPublic.of(prompt)


@router.get("/prompts", dependencies=_READ, summary="List prompts")
def list_all(project: CurrentProject, session: SessionDep, page: PageDep) -> list[PromptPublic]:
    """Return the project's prompts by name, each with its newest version and live aliases."""
    names = list_prompt_names(session=session, project_id=project.id)
    return [_summary(session, project.id, n) for n in page.answer_all(names, key_of=lambda n: (n,))]


@router.get("/prompts/{name}/versions", dependencies=_READ, summary="List the versions of a prompt")
def list_versions(
    name: str, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[PromptVersionPublic]:
    """Return the versions of a prompt, oldest first."""
    found = page_prompts(
        session=session, project_id=project.id, name=name, limit=page.limit, cursor=page.cursor
    )
    if not found.items and page.cursor is None:
        raise NotFound(f"no prompt {name!r} in this project; register a version first")
    return [PromptVersionPublic.of(p) for p in page.answer(found)]


@router.get(
    "/prompts/{name}/versions/{version}",
    dependencies=_READ,
    response_model=PromptVersionPublic,
    responses=_CACHED,
    summary="Read one prompt version (ETag, If-None-Match)",
)
def read_version(
    name: str,
    version: str,
    project: CurrentProject,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Return one version with a strong ETag; ``304`` when ``If-None-Match`` holds it."""
    prompt = get_prompt(session=session, project_id=project.id, name=name, version=version)
    return version_response(prompt, if_none_match)


@router.get(
    "/prompts/{name}/versions/{version}/traces",
    dependencies=[Depends(require(Permission.TRACE_READ))],
    summary="List the spans a prompt version produced",
)
def version_traces(
    name: str,
    version: str,
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
) -> list[PromptSpanPublic]:
    """Return the spans naming the version, and those its slot served while it was live."""
    prompt = get_prompt(session=session, project_id=project.id, name=name, version=version)
    every = spans_of_prompt(session=session, project_id=project.id, prompt=prompt, limit=_ALL)
    return [
        PromptSpanPublic(
            trace_id=link.trace_id,
            span_id=link.span_id,
            start_at=link.start_at,
            linked_by=link.linked_by,
        )
        for link in page.answer_all(
            every, key_of=lambda k: (k.start_at, k.trace_id, k.span_id), descending=True
        )
    ]


_ALL = 2**62  # spans_of_prompt reads every link before it sorts; the page is cut here


@router.get(
    "/prompts/{name}/{version}",
    dependencies=_READ,
    response_model=PromptVersionPublic,
    responses=_CACHED,
    summary="Read one prompt version (short form of …/versions/{version})",
)
def read_version_short(
    name: str,
    version: str,
    project: CurrentProject,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Return one version, as ``…/prompts/{name}/versions/{version}`` does."""
    prompt = get_prompt(session=session, project_id=project.id, name=name, version=version)
    return version_response(prompt, if_none_match)


@router.get(
    "/prompts/{ref}",
    dependencies=_READ,
    response_model=PromptVersionPublic | PromptPublic,
    responses=_CACHED,
    summary="Read a prompt, or the version an alias names: {name}@production, @latest",
)
def read_prompt(
    ref: str,
    project: CurrentProject,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response | PromptPublic:
    """Return ``name@alias``'s version (ETag, ``304``), or the prompt ``name``'s summary."""
    name, at, alias = ref.partition("@")
    if not at:
        return _summary(session, project.id, name)
    prompt = resolve_alias(session=session, project_id=project.id, name=name, alias=alias)
    return version_response(prompt, if_none_match)


@router.post(
    "/prompts/{name}/versions/{version}/promotion-requests",
    status_code=status.HTTP_201_CREATED,
    summary="Ask for approval to promote a prompt version",
)
def ask_promotion(
    name: str,
    version: str,
    body: PromotionRequestCreate,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_REQUEST))],
    project: CurrentProject,
    session: SessionDep,
) -> ApprovalRequestedPublic:
    """Open an approval request; whoever registered the version may not decide it."""
    prompt = get_prompt(session=session, project_id=project.id, name=name, version=version)
    approval = request_promotion(
        session=session, actor=actor, model_version=prompt.version, reason=body.reason
    )
    return ApprovalRequestedPublic(
        approval_id=approval.id,
        status=str(approval.status),
        required_approvals=approval.required_approvals,
    )
