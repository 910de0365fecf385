"""Prompt, LLM deployment and evaluation dataset pages.

Read through the same services as ``GET …/prompts``, ``…/llm-deployments`` and
``…/evaluation/datasets`` (project-filtered, gated by ``model:read``); a version's traces need
``trace:read`` as well and are left out without it. An LLM deployment shows its endpoint's host
and model and where its key comes from (``env:NAME``, ``sealed``, ``none``), never the key.
Asking to promote a version opens an approval request (``approval:request``) decided on the
approvals page. Putting an approved version live in one of its prompt's LLM deployments
(``model:promote``, CSRF-checked by :func:`api.dashboard.forms.form_gate`) calls the REST
route's own handler (:func:`api.routes.llm_deployments.promote`): the same going-live rule,
separation of duties, gates and audit; a refusal is shown on the version page with its reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api.dashboard.evaluation_pages import template_diff, template_lines
from api.dashboard.forms import form_gate, status_of
from api.dashboard.rendering import _render, router
from api.deps import EngineDep, SessionDep
from api.limits import MAX_SQL_INTEGER
from api.routes import llm_deployments as llm_routes
from api.security import CurrentProject, require
from api.web_session import check_csrf
from governance.actors import Actor
from governance.identity import Principal
from governance.permissions import Permission
from governance.roles import permissions_of
from lineage.errors import InvalidInput, NotFound, WardenError
from lineage.models import Deployment
from lineage.projects import Project
from lineage.prompts import Prompt, get_prompt, list_prompt_names, list_prompts
from monitors.traces import spans_of_prompt
from retrain.eval_datasets import get_dataset, get_version, list_datasets, list_versions, records_of
from retrain.llm_deployments import (
    LlmDeployment,
    credentials_label,
    get_llm_deployment,
    list_llm_deployments,
    live_row,
)
from retrain.promotion import request_promotion

__all__ = ["endpoint_host"]

Reader = Annotated[Actor, Depends(require(Permission.MODEL_READ))]
_TRACE_LINKS = 20
"""A version page lists at most this many of its spans; the trace list has the rest."""
_RECORDS = 500
"""A dataset version page shows at most this many records."""


def endpoint_host(base_url: str) -> str:
    """Return an endpoint's host (and port) only: paths may carry tenant ids, never shown."""
    parts = urlsplit(base_url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _names(session: Session, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = session.exec(select(Principal).where(col(Principal.id).in_(wanted))).all()
    return {p.id: p.name for p in rows}


@dataclass(frozen=True, slots=True)
class Served:
    """One stretch of a slot serving a version: which slot, which version, from when to when."""

    name: str
    environment: str
    version: str
    live_from: datetime
    live_until: datetime | None


def _history(session: Session, project_id: uuid.UUID, versions: list[Prompt]) -> list[Served]:
    """Return every stretch any version of the prompt was live, newest first."""
    numbers = {p.version.id: p.number for p in versions}
    if not numbers:
        return []
    rows = session.exec(
        select(Deployment)
        .where(
            Deployment.project_id == project_id,
            col(Deployment.model_version_id).in_(list(numbers)),
        )
        .order_by(sa.desc(col(Deployment.live_from)))
    ).all()
    return [
        Served(r.name, r.environment, numbers[r.model_version_id], r.live_from, r.live_until)
        for r in rows
    ]


def _prompt_url(project: Project, name: str, version: str | None = None) -> str:
    url = f"/p/{quote(project.name)}/prompts/{quote(name, safe='')}"
    return f"{url}/versions/{quote(version, safe='')}" if version else url


@router.get("/p/{project}/prompts")
def prompts_page(
    request: Request, actor: Reader, project: CurrentProject, session: SessionDep
) -> HTMLResponse:
    """List the project's prompts: newest version, where each is live, last change."""
    rows = []
    for name in list_prompt_names(session=session, project_id=project.id):
        versions = list_prompts(session=session, project_id=project.id, name=name)
        history = _history(session, project.id, versions)
        live = sorted(
            ((s.environment, s.name, s.version) for s in history if s.live_until is None),
            key=lambda t: (t[0] != "production", t),
        )
        changes = [versions[-1].version.created_at, *(s.live_from for s in history)]
        changes += [s.live_until for s in history if s.live_until is not None]
        rows.append(
            {
                "name": name,
                "count": len(versions),
                "latest": versions[-1],
                "live": live,
                "changed": max(changes),
            }
        )
    return _render(
        request, "prompts.html", actor, session, project=project, rows=rows, url=_prompt_url
    )


def _bindings_of(session: Session, project_id: uuid.UUID, name: str) -> list[LlmDeployment]:
    return [
        b
        for b in list_llm_deployments(session=session, project_id=project_id)
        if b.prompt_name == name
    ]


@router.get("/p/{project}/prompts/{name}")
def prompt_page(
    request: Request, name: str, actor: Reader, project: CurrentProject, session: SessionDep
) -> HTMLResponse:
    """Show a prompt's versions, which is live in which LLM deployment and since when."""
    versions = list_prompts(session=session, project_id=project.id, name=name)
    if not versions:
        raise NotFound(f"no prompt {name!r} in this project; see the prompts list")
    authors = _names(session, {p.version.registered_by for p in versions})
    history = _history(session, project.id, versions)
    bindings = _bindings_of(session, project.id, name)
    held = permissions_of(session=session, actor=actor, project_id=project.id)
    return _render(
        request,
        "prompt.html",
        actor,
        session,
        project=project,
        name=name,
        versions=list(reversed(versions)),
        authors=authors,
        live={(s.name, s.environment): s for s in history if s.live_until is None},
        history=history,
        bindings=bindings,
        host=endpoint_host,
        credentials=credentials_label,
        traces=Permission.TRACE_READ in held,
        url=_prompt_url,
    )


@router.get("/p/{project}/prompts/{name}/versions/{version}")
def prompt_version_page(
    request: Request,
    name: str,
    version: str,
    actor: Reader,
    project: CurrentProject,
    session: SessionDep,
    against: Annotated[str | None, Query(max_length=32)] = None,
    asked: Annotated[str | None, Query(max_length=8)] = None,
    promoted: Annotated[str | None, Query(max_length=160)] = None,
) -> HTMLResponse:
    """Show a version: template, variables, model; its diff against the previous or a live one."""
    return _version_page(
        request,
        actor,
        project,
        session,
        name,
        version,
        against=against,
        asked=asked == "1",
        promoted=promoted,
    )


def _version_page(
    request: Request,
    actor: Actor,
    project: Project,
    session: Session,
    name: str,
    version: str,
    *,
    against: str | None = None,
    asked: bool = False,
    promoted: str | None = None,
    refused: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Draw a version's page, with a promotion's outcome or refusal when there is one."""
    prompt = get_prompt(session=session, project_id=project.id, name=name, version=version)
    versions = list_prompts(session=session, project_id=project.id, name=name)
    history = _history(session, project.id, versions)
    live = [s for s in history if s.live_until is None]
    index = next(i for i, p in enumerate(versions) if p.number == prompt.number)
    previous = versions[index - 1] if index > 0 else None
    by_number = {p.number: p for p in versions}
    choices: list[tuple[str, str]] = []
    if previous is not None:
        choices.append(("previous", f"previous (v{previous.number})"))
    choices += [
        (f"live:{s.version}", f"live in {s.name} ({s.environment}), v{s.version}")
        for s in live
        if s.version != prompt.number and f"live:{s.version}" not in dict(choices)
    ]
    chosen = against or (choices[0][0] if choices else None)
    if chosen is not None and chosen not in dict(choices):
        raise InvalidInput(
            f"cannot compare against {chosen!r}; choose one of {[c for c, _ in choices]}",
            field="against",
        )
    other = None
    if chosen == "previous":
        other = previous
    elif chosen is not None:
        other = by_number[chosen.removeprefix("live:")]
    diff = (
        template_diff(
            template_lines(other.artifact.template, other.artifact.model_settings),
            template_lines(prompt.artifact.template, prompt.artifact.model_settings),
        )
        if other is not None
        else []
    )
    held = permissions_of(session=session, actor=actor, project_id=project.id)
    spans = (
        spans_of_prompt(session=session, project_id=project.id, prompt=prompt, limit=_TRACE_LINKS)
        if Permission.TRACE_READ in held
        else None
    )
    authors = _names(session, {prompt.version.registered_by})
    live_here = {(s.name, s.environment) for s in live if s.version == prompt.number}
    return _render(
        request,
        "prompt_version.html",
        actor,
        session,
        status_code=status_code,
        project=project,
        prompt=prompt,
        author=authors.get(prompt.version.registered_by) if prompt.version.registered_by else None,
        served=[s for s in history if s.version == prompt.number],
        other=other,
        chosen=chosen,
        choices=choices,
        diff=diff,
        spans=spans,
        span_limit=_TRACE_LINKS,
        asked=asked,
        promoted=promoted,
        refused=refused,
        bindings=[
            b
            for b in _bindings_of(session, project.id, name)
            if (b.name, b.environment) not in live_here
        ],
        url=_prompt_url,
    )


@router.post(
    "/p/{project}/prompts/{name}/versions/{version}/promotion-request", response_model=None
)
def ask_promotion_page(
    request: Request,
    name: str,
    version: str,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_REQUEST))],
    project: CurrentProject,
    session: SessionDep,
    reason: Annotated[str, Form(max_length=4000)] = "",
    csrf_token: Annotated[str | None, Form(max_length=128)] = None,
) -> Response:
    """Open an approval request for a version; it is decided on the approvals page."""
    check_csrf(request, csrf_token)
    if not reason.strip():
        raise InvalidInput(
            "give a reason: it is shown to the approvers and kept in the audit log",
            field="reason",
        )
    prompt = get_prompt(session=session, project_id=project.id, name=name, version=version)
    request_promotion(session=session, actor=actor, model_version=prompt.version, reason=reason)
    return RedirectResponse(
        f"{_prompt_url(project, name, version)}?asked=1#promotion", status_code=303
    )


@router.post("/p/{project}/prompts/{name}/versions/{version}/promote", response_model=None)
def promote_page(
    request: Request,
    name: str,
    version: str,
    actor: Annotated[Actor, Depends(form_gate(Permission.MODEL_PROMOTE))],
    project: CurrentProject,
    session: SessionDep,
    engine: EngineDep,
    deployment: Annotated[str, Form(max_length=64)] = "",
    environment: Annotated[str, Form(max_length=64)] = "production",
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Put an approved version live in one of its prompt's LLM deployments, as the API does."""
    try:
        binding = get_llm_deployment(
            session=session, project_id=project.id, name=deployment, environment=environment
        )
        if binding.prompt_name != name:
            raise InvalidInput(
                f"LLM deployment {deployment!r} serves prompt {binding.prompt_name!r}, not "
                f"{name!r}; choose one of this prompt's deployments",
                field="deployment",
            )
        body = llm_routes.PromptPromoteRequest(
            version=version, environment=environment, reason=reason
        )
        llm_routes.promote(
            name=deployment,
            body=body,
            request=request,
            actor=actor,
            project=project,
            session=session,
            engine=engine,
        )
    except (ValidationError, WardenError) as error:
        session.rollback()  # a refusal leaves nothing behind (its audit entry has its own)
        why = error.detail if isinstance(error, WardenError) else str(error.errors()[0]["msg"])
        return _version_page(
            request,
            actor,
            project,
            session,
            name,
            version,
            refused=f"v{version} was not put live in {deployment} ({environment}): {why}",
            status_code=status_of(error),
        )
    where = quote(f"{deployment} ({environment})")
    return RedirectResponse(
        f"{_prompt_url(project, name, version)}?promoted={where}#promotion", status_code=303
    )


@router.get("/p/{project}/llm-deployments")
def llm_deployments_page(
    request: Request, actor: Reader, project: CurrentProject, session: SessionDep
) -> HTMLResponse:
    """List the LLM deployments: endpoint host and model, key source, live version and since."""
    rows: list[dict[str, Any]] = []
    for binding in list_llm_deployments(session=session, project_id=project.id):
        live = live_row(session=session, binding=binding)
        versions = list_prompts(session=session, project_id=project.id, name=binding.prompt_name)
        by_id = {p.version.id: p.number for p in versions}
        rows.append(
            {
                "binding": binding,
                "host": endpoint_host(binding.base_url),
                "credentials": credentials_label(binding),
                "live": by_id.get(live.model_version_id) if live else None,
                "since": live.live_from if live else None,
                "latest": versions[-1].number if versions else None,
            }
        )
    return _render(
        request, "llm_deployments.html", actor, session, project=project, rows=rows, url=_prompt_url
    )


@router.get("/p/{project}/evaluation/datasets")
def datasets_page(
    request: Request, actor: Reader, project: CurrentProject, session: SessionDep
) -> HTMLResponse:
    """List the evaluation datasets and their versions (records, frozen or open)."""
    rows = [
        (d, list_versions(session=session, dataset=d))
        for d in list_datasets(session=session, project_id=project.id)
    ]
    return _render(request, "datasets.html", actor, session, project=project, rows=rows)


@router.get("/p/{project}/evaluation/datasets/{name}/versions/{version}")
def dataset_version_page(
    request: Request,
    name: str,
    version: Annotated[int, Path(ge=1, le=MAX_SQL_INTEGER)],
    actor: Reader,
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show a dataset version: frozen or open, its content hash, and its records."""
    dataset = get_dataset(session=session, project_id=project.id, name=name)
    row = get_version(session=session, dataset=dataset, version=version)
    records = records_of(session=session, version=row)
    return _render(
        request,
        "dataset_version.html",
        actor,
        session,
        project=project,
        dataset=dataset,
        version=row,
        records=records[:_RECORDS],
        shown=min(len(records), _RECORDS),
        total=len(records),
    )
