"""Reports over REST: model cards, project audit reports and "as of T", in HTML, JSON or PDF.

Every route needs ``report:read``; sensitive fields are shown only to readers who also hold
``audit:read`` in the project (see :mod:`reports.sensitive`). Generating a report is audited in the
request's transaction. Long reports are queued for the worker (``POST …/reports/renders``) and
fetched when done; the assembly itself lives in ``reports`` (this module holds no logic).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AwareDatetime, BaseModel

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SessionDep, SettingsDep, WritingSessionDep
from api.routes.audit import SignerDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit_verify import verify_store
from governance.permissions import Permission
from lineage.model_versions import get_model_version
from lineage.runtime.queue import RuntimeJob
from lineage.tables import utcnow
from reports import (
    CARD_FIELDS,
    MEDIA_TYPES,
    Format,
    ModelCardUpdate,
    RenderRequest,
    as_of,
    audit_generation,
    generate_model_card,
    generate_project_report,
    get_render_job,
    queue_render,
    render,
    rendered_file,
    sees_sensitive,
    update_model_card,
)

__all__ = ["ModelCardPublic", "RenderJobPublic", "router"]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}/reports", tags=["reports"]
)

Reader = Annotated[Actor, Depends(require(Permission.REPORT_READ))]
FormatQuery = Annotated[Format, Query(description="html, json or pdf.")]


class ModelCardPublic(BaseModel):
    """The hand-filled fields of a model card, and who last changed them."""

    intended_use: str
    out_of_scope_use: str
    limitations: str
    ethical_considerations: str
    updated_by: str
    updated_at: datetime


class RenderJobPublic(BaseModel):
    """A queued or finished render: poll it, then fetch ``file_url``."""

    id: uuid.UUID
    state: str
    progress: float
    message: str
    error: str | None
    result: dict[str, Any] | None
    file_url: str

    @classmethod
    def of(cls, job: RuntimeJob, project: str) -> RenderJobPublic:
        """Build the public view of a render job."""
        return cls(
            id=job.id,
            state=job.state,
            progress=job.progress,
            message=job.message,
            error=job.error,
            result=job.result,
            file_url=f"/api/v1/projects/{project}/reports/renders/{job.id}/file",
        )


def _respond(document: dict[str, Any], fmt: Format, stem: str) -> Response:
    headers = {"Content-Disposition": f'inline; filename="{stem}.{fmt}"'}
    return Response(render(document, fmt), media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get("/models/{name}/{version}", summary="The model card of a version")
def read_model_card(
    name: str,
    version: str,
    actor: Reader,
    project: CurrentProject,
    session: WritingSessionDep,
    format: FormatQuery = "html",
) -> Response:
    """Return a model version's report (model card), built from what Warden recorded (audited)."""
    document = generate_model_card(
        session=session,
        actor=actor,
        project_id=project.id,
        name=name,
        version=version,
        fmt=format,
    )
    return _respond(document, format, f"model-card-{name}-{version}")


@router.put("/models/{name}/{version}/card", summary="Fill in intended use and limitations")
def write_model_card(
    name: str,
    version: str,
    spec: ModelCardUpdate,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> ModelCardPublic:
    """Store the hand-filled model card fields of a version (audited)."""
    model_version = get_model_version(
        session=session, project_id=project.id, name=name, version=version
    )
    card = update_model_card(session=session, actor=actor, model_version=model_version, spec=spec)
    return ModelCardPublic(
        **{field: getattr(card, field) for field in CARD_FIELDS},
        updated_by=card.updated_by_name,
        updated_at=card.updated_at,
    )


@router.get("/project", summary="The audit report of a period")
def read_project_report(
    actor: Reader,
    project: CurrentProject,
    session: WritingSessionDep,
    engine: EngineDep,
    signer: SignerDep,
    since: Annotated[AwareDatetime, Query(alias="from", description="Period start (ISO 8601).")],
    until: Annotated[
        AwareDatetime | None, Query(alias="to", description="Period end; now if unset.")
    ] = None,
    format: FormatQuery = "html",
) -> Response:
    """Return every audited change of the period and the verdict on the audit chain (audited)."""
    end = until or utcnow()
    verification = verify_store(engine=engine, public_key=signer.public_key)
    document = generate_project_report(
        session=session,
        actor=actor,
        project_id=project.id,
        since=since,
        until=end,
        verification=verification,
        fmt=format,
    )
    return _respond(document, format, f"audit-{project.name}")


@router.get("/as-of", summary="What served where at a moment, and who changed it")
def read_as_of(
    actor: Reader,
    project: CurrentProject,
    session: WritingSessionDep,
    at: Annotated[AwareDatetime, Query(description="The moment (ISO 8601 with offset).")],
    format: FormatQuery = "html",
) -> Response:
    """Return the deployments, policies and baselines in force at ``at`` (audited)."""
    full = sees_sensitive(session=session, actor=actor, project_id=project.id)
    document = as_of(session=session, project_id=project.id, at=at, full=full)
    audit_generation(
        session=session,
        actor=actor,
        project_id=project.id,
        report="as_of",
        target=f"as_of:{at.isoformat()}",
        fmt=format,
    )
    return _respond(document, format, f"as-of-{project.name}")


@router.post(
    "/renders",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Render a long report in the worker",
)
def queue_report_render(
    request: RenderRequest, actor: Reader, project: CurrentProject, session: SessionDep
) -> RenderJobPublic:
    """Queue a report render; poll ``GET …/renders/{id}`` for progress."""
    full = sees_sensitive(session=session, actor=actor, project_id=project.id)
    job = queue_render(
        session=session, actor=actor, project_id=project.id, request=request, full=full
    )
    return RenderJobPublic.of(job, project.name)


@router.get("/renders/{job_id}", summary="Progress of a render")
def read_report_render(
    job_id: uuid.UUID, actor: Reader, project: CurrentProject, session: SessionDep
) -> RenderJobPublic:
    """Return a render job's state and progress."""
    job = get_render_job(session=session, project_id=project.id, job_id=job_id)
    return RenderJobPublic.of(job, project.name)


@router.get("/renders/{job_id}/file", summary="The rendered report")
def read_report_file(
    job_id: uuid.UUID,
    actor: Reader,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Return the file a finished render job wrote to the artifact store."""
    full = sees_sensitive(session=session, actor=actor, project_id=project.id)
    job, fmt, body = rendered_file(
        session=session,
        store=settings.artifact_store(),
        project_id=project.id,
        job_id=job_id,
        full=full,
    )
    return Response(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="report-{job.id}.{fmt}"'},
    )
