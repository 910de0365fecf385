"""Render long reports in the worker: queue a ``report_render`` job, write the file, read it back.

A project report over a long period reads and verifies the whole audit chain and a PDF takes
seconds to lay out, so neither belongs in a request handler. :func:`queue_render` records the
request (what, which format, and whether the requester may see sensitive fields) as a job in the
caller's transaction and audits it; :class:`ReportRenderHandler` (registered for
the :data:`REPORT_RENDER` kind by ``api.worker_process``) builds the document, reports
progress, and writes the file under
``reports/<project id>/renders/<job id>.<format>`` in the artifact store (:mod:`lineage.storage`:
the data directory or a bucket) — a key made of ids only.
:func:`rendered_file` returns that path for a finished job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session

from governance.actors import Actor
from governance.audit_verify import verify_store
from lineage.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from lineage.model_versions import MODEL_NAME_PATTERN, VERSION_PATTERN
from lineage.runtime.handlers import JobContext
from lineage.runtime.queue import JobState, RuntimeJob, enqueue, get_job
from lineage.storage import ObjectStore
from lineage.store import session_scope
from reports.as_of import as_of
from reports.generation import audit_generation
from reports.model_card import model_card
from reports.project_report import project_report
from reports.render import Format, render

__all__ = [
    "REPORT_RENDER",
    "RenderRequest",
    "ReportRenderHandler",
    "get_render_job",
    "queue_render",
    "render_document",
    "rendered_file",
    "report_key",
]

REPORT_RENDER = "report_render"
"""The job kind of a report render."""


class RenderRequest(BaseModel):
    """A report to render in the worker.

    Attributes:
        report: ``model`` (a model card), ``project`` (an audit report) or ``as_of``.
        format: The file format.
        name: The model name (``model`` reports).
        version: The model version (``model`` reports).
        since: Start of the period (``project`` reports).
        until: End of the period (``project`` reports); the moment for ``as_of``.
    """

    model_config = ConfigDict(extra="forbid")

    report: Literal["model", "project", "as_of"]
    format: Format = "pdf"
    name: str | None = Field(default=None, pattern=MODEL_NAME_PATTERN)
    version: str | None = Field(default=None, pattern=VERSION_PATTERN)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _complete(self) -> RenderRequest:
        if self.report == "model" and (self.name is None or self.version is None):
            raise ValueError("a model report needs 'name' and 'version'")
        if self.report == "project" and (self.since is None or self.until is None):
            raise ValueError("a project report needs 'since' and 'until'")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("the period is empty: give 'until' after 'since'")
        if self.report == "as_of" and self.until is None:
            raise ValueError("an as_of report needs 'until' (the moment)")
        return self

    def target(self) -> str:
        """Return what the report is about, as the audit log names it."""
        if self.report == "model":
            return f"model:{self.name}:{self.version}"
        if self.report == "project":
            return f"period:{_iso(self.since)}..{_iso(self.until)}"
        return f"as_of:{_iso(self.until)}"


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def render_document(
    *,
    session: Session,
    project_id: uuid.UUID,
    request: RenderRequest,
    full: bool,
    verification: Any = None,
) -> dict[str, Any]:
    """Build the document a request asks for (``verification`` is needed for project reports)."""
    if request.report == "model" and request.name and request.version:
        return model_card(
            session=session,
            project_id=project_id,
            name=request.name,
            version=request.version,
            full=full,
        )
    if request.report == "project" and request.since and request.until:
        return project_report(
            session=session,
            project_id=project_id,
            since=request.since,
            until=request.until,
            verification=verification,
            full=full,
        )
    if request.report == "as_of" and request.until:
        return as_of(session=session, project_id=project_id, at=request.until, full=full)
    raise InvalidInput(f"the {request.report} report request is incomplete", field="report")


def queue_render(
    *, session: Session, actor: Actor, project_id: uuid.UUID, request: RenderRequest, full: bool
) -> RuntimeJob:
    """Queue a render job and audit the generation, both in the caller's transaction."""
    job = enqueue(
        session=session,
        project_id=project_id,
        kind=REPORT_RENDER,
        payload={
            "request": request.model_dump(mode="json"),
            "full": full,
            "requested_by": str(actor.principal_id) if actor.principal_id else None,
        },
        max_attempts=2,
    )
    audit_generation(
        session=session,
        actor=actor,
        project_id=project_id,
        report=request.report,
        target=request.target(),
        fmt=f"{request.format} (job {job.id})",
    )
    return job


def report_key(project_id: uuid.UUID, job_id: uuid.UUID, fmt: str) -> str:
    """Return the artifact-store key of a render job's file (ids only, never user strings)."""
    return f"reports/{project_id}/renders/{job_id}.{fmt}"


@dataclass(frozen=True, slots=True)
class ReportRenderHandler:
    """Render ``report_render`` jobs to objects in the artifact store.

    Attributes:
        store: The artifact store (the data directory or a bucket).
        public_key: The audit checkpoint key, to verify signatures in project reports.
    """

    store: ObjectStore
    public_key: Ed25519PublicKey | None = None

    def __call__(self, context: JobContext) -> dict[str, Any]:
        """Build, render and write the report; return where it is (the job's result)."""
        request = RenderRequest.model_validate(context.payload["request"])
        full = bool(context.payload.get("full"))
        project_id = context.project_id
        verification = None
        if request.report == "project":
            context.progress(0.1, "verifying the audit chain")
            verification = verify_store(engine=context.engine, public_key=self.public_key)
        context.progress(0.4, f"assembling the {request.report} report")
        with session_scope(context.engine) as session:
            document = render_document(
                session=session,
                project_id=project_id,
                request=request,
                full=full,
                verification=verification,
            )
        context.progress(0.7, f"rendering {request.format}")
        body = render(document, request.format)
        self.store.put(report_key(project_id, context.job_id, request.format), body)
        context.progress(1.0, f"wrote {len(body)} bytes")
        return {"format": request.format, "bytes": len(body), "full": full}


def get_render_job(*, session: Session, project_id: uuid.UUID, job_id: uuid.UUID) -> RuntimeJob:
    """Return a report render job of the project, or raise :class:`NotFound`."""
    job = get_job(session=session, job_id=job_id, project_id=project_id)
    if job.kind != REPORT_RENDER:
        raise NotFound(f"no report render job {job_id} in this project")
    return job


def rendered_file(
    *, session: Session, store: ObjectStore, project_id: uuid.UUID, job_id: uuid.UUID, full: bool
) -> tuple[RuntimeJob, str, bytes]:
    """Return a finished render job, its format and its file's bytes.

    Args:
        session: A session to read the job with.
        store: The artifact store.
        project_id: The reader's project; another project's job is not found.
        job_id: The job.
        full: Whether the reader may see sensitive fields; a file rendered with them is refused
            to a reader who may not.

    Raises:
        NotFound: No such render job in the project, or its file is gone.
        Conflict: The job has not succeeded (yet).
        PermissionDenied: The file holds sensitive fields the reader may not see.
    """
    job = get_render_job(session=session, project_id=project_id, job_id=job_id)
    if job.state != JobState.SUCCEEDED:
        raise Conflict(
            f"report job {job_id} is {job.state} ({job.progress:.0%}: {job.message}); "
            "poll it until it has succeeded"
        )
    if job.payload.get("full") and not full:
        raise PermissionDenied(
            "this report was rendered with sensitive fields, which your roles may not see; "
            "queue your own render"
        )
    request = RenderRequest.model_validate(job.payload["request"])
    try:
        body = store.get(report_key(project_id, job.id, request.format))
    except NotFound:
        raise NotFound(f"the file of report job {job_id} is gone; queue the render again") from None
    return job, request.format, body
