"""The audit log over HTTP: list, export (JSONL), verify, public key, on-demand checkpoints.

Every route needs ``audit:read`` (``POST …/checkpoints`` needs a global administrator). A reader
sees the entries of projects where a role grants them ``audit:read`` (auditor, project admin);
global administrators see everything, global entries included.

Reading is not audited, except exports: listing and verifying are what auditors do all day and
would fill the chain with its own reads, whereas an export takes the whole governance record out
of Warden, which an organisation wants on the record (``audit.export``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from sqlmodel import Session, select

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SessionDep
from api.limits import MAX_SQL_BIGINT
from api.pages import next_link
from api.security import require, require_admin
from api.store import attach_audit_signer
from governance.actors import Actor
from governance.audit import (
    AuditEntry,
    AuditFilter,
    Outcome,
    act_then_audit,
    checkpoint,
    head,
    list_entries,
)
from governance.audit_export import export_lines, readable_project_ids
from governance.audit_verify import verify_store
from governance.checkpoints import AuditCheckpoint, format_time, list_checkpoints
from governance.permissions import Permission
from governance.signing import Signer
from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.projects import Project
from lineage.store import session_scope
from lineage.tables import utcnow

__all__ = [
    "AuditEntryPublic",
    "AuditPagePublic",
    "AuditReader",
    "CheckpointPublic",
    "SignerDep",
    "VerifyPublic",
    "get_signer",
    "router",
]

router = APIRouter(route_class=DeferredAPIRoute, prefix="/api/v1/audit", tags=["audit"])


def get_signer(request: Request) -> Signer:
    """Return the app's checkpoint signer, loading and attaching it on first use."""
    signer = getattr(request.app.state, "audit_signer", None)
    if not isinstance(signer, Signer):
        signer = attach_audit_signer(request.app.state.engine, request.app.state.settings)
        request.app.state.audit_signer = signer
    return signer


AuditReader = Annotated[Actor, Depends(require(Permission.AUDIT_READ))]
SignerDep = Annotated[Signer, Depends(get_signer)]


class AuditEntryPublic(BaseModel):
    """One audit entry as readers see it: every hashed field plus its hash."""

    seq: int
    id: uuid.UUID
    created_at: datetime
    actor_id: uuid.UUID | None
    actor_name: str
    actor_kind: str
    project_id: uuid.UUID | None
    action: str
    target: str
    outcome: Outcome
    reason: str
    request_id: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryPublic:
        """Build the public view of a stored entry."""
        return cls(
            seq=entry.seq,
            id=entry.id,
            created_at=entry.created_at,
            actor_id=entry.actor_id,
            actor_name=entry.actor_name,
            actor_kind=entry.actor_kind,
            project_id=entry.project_id,
            action=entry.action,
            target=entry.target,
            outcome=Outcome(entry.outcome),
            reason=entry.reason,
            request_id=entry.request_id,
            detail=entry.detail_object(),
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )


class AuditPagePublic(BaseModel):
    """A page of entries, oldest first; pass ``next_after`` as ``after`` for the next page."""

    entries: list[AuditEntryPublic]
    next_after: int | None


class CheckpointPublic(BaseModel):
    """A signed checkpoint of the chain head, chained to the one before it (``prev_hash``)."""

    seq: int
    entry_hash: str
    key_id: str
    signature: str
    created_at: datetime
    prev_hash: str | None
    every: int | None

    @classmethod
    def of(cls, checkpoint: AuditCheckpoint) -> CheckpointPublic:
        """Build the public view of a stored checkpoint."""
        return cls(
            seq=checkpoint.seq,
            entry_hash=checkpoint.entry_hash,
            key_id=checkpoint.key_id,
            signature=checkpoint.signature,
            created_at=checkpoint.created_at,
            prev_hash=checkpoint.prev_hash,
            every=checkpoint.every,
        )


class VerifyPublic(BaseModel):
    """The result of verifying the chain and its checkpoints."""

    intact: bool
    entries: int
    head_seq: int
    head_hash: str
    checkpoints: int
    checkpoints_verified: int
    first_broken_seq: int | None
    problem: str | None
    key_id: str
    every: int | None
    anchor: str | None
    anchored: int
    unanchored: int


def _readable_filter(
    session: Session,
    actor: Actor,
    *,
    project: str | None,
) -> AuditFilter:
    readable = readable_project_ids(session=session, actor=actor)
    if project is None:
        return AuditFilter(project_ids=readable)
    found = session.exec(select(Project).where(Project.name == project)).first()
    if found is None or (readable is not None and found.id not in readable):
        raise NotFound(
            f"no project {project!r} whose audit log you may read; an auditor role there "
            "grants audit:read",
            field="project",
        )
    return AuditFilter(project_ids=readable, project_id=found.id)


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(
            f"{field} has no timezone; send ISO 8601 with an offset, e.g. 2026-11-30T12:00:00Z",
            field=field,
        )
    return value


@router.get("")
def list_audit(
    actor: AuditReader,
    session: SessionDep,
    project: Annotated[str | None, Query(description="Project name.")] = None,
    actor_name: Annotated[
        str | None, Query(alias="actor", description="Principal name or id.")
    ] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=300)] = None,
    outcome: Outcome | None = None,
    since: Annotated[datetime | None, Query(description="Inclusive, ISO 8601 with offset.")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive, ISO 8601 with offset.")] = None,
    after: Annotated[
        int, Query(ge=0, le=MAX_SQL_BIGINT, description="Cursor: the last seq received.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    *,
    request: Request,
    response: Response,
) -> AuditPagePublic:
    """List audit entries you may read, oldest first, filtered and paginated by cursor."""
    base = _readable_filter(session, actor, project=project)
    where = AuditFilter(
        project_ids=base.project_ids,
        project_id=base.project_id,
        actor=actor_name,
        action=action,
        target=target,
        outcome=outcome,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        after_seq=after,
    )
    entries = list_entries(session=session, where=where, limit=limit)
    next_after = entries[-1].seq if len(entries) == limit else None
    if next_after is not None:
        response.headers["Link"] = next_link(request, str(next_after), param="after")
    return AuditPagePublic(entries=[AuditEntryPublic.of(e) for e in entries], next_after=next_after)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export_audit(actor: AuditReader, engine: EngineDep, signer: SignerDep) -> StreamingResponse:
    """Export the whole chain as JSONL (entries you may not read are redacted to their hashes).

    Verify it offline with ``warden audit verify --file export.jsonl --public-key key.pem``.
    """
    # Own short transaction, committed before streaming: the stream reads in batches of its own,
    # and on SQLite an open request transaction would hold the write lock for the whole download.
    with session_scope(engine) as session:
        readable = readable_project_ids(session=session, actor=actor)
        up_to = act_then_audit(
            lambda: head(session=session).seq,
            session=session,
            actor=actor,
            action="audit.export",
            target=lambda seq: f"audit:1..{seq}",
            detail=lambda seq: {"head_seq": seq, "redacted": readable is not None},
        )
    lines = export_lines(engine=engine, readable=readable, key_id=signer.key_id, up_to=up_to)
    filename = f"warden-audit-{format_time(utcnow()).replace(':', '')}.jsonl"
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/verify")
def verify_audit(_actor: AuditReader, engine: EngineDep, signer: SignerDep) -> VerifyPublic:
    """Verify the chain, its checkpoints and their schedule, against the anchor file.

    Reports the first broken seq, or that all is intact. The anchor (``anchor``) is the copy of
    the checkpoints this server appends outside the database; an auditor should also check
    against their own copy with ``warden audit verify --anchor``.
    """
    report = verify_store(engine=engine, public_key=signer.public_key)
    return VerifyPublic(
        intact=report.intact,
        entries=report.entries,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        checkpoints=report.checkpoints,
        checkpoints_verified=report.checkpoints_verified,
        first_broken_seq=report.first_broken_seq,
        problem=report.problem,
        key_id=signer.key_id,
        every=report.every,
        anchor=report.anchor,
        anchored=report.anchored,
        unanchored=report.unanchored,
    )


@router.get(
    "/public-key",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
def public_key(_actor: AuditReader, signer: SignerDep) -> PlainTextResponse:
    """Return the Ed25519 public key (PEM) that checkpoint signatures verify against."""
    return PlainTextResponse(
        signer.public_pem(),
        media_type="application/x-pem-file",
        headers={"X-Key-Id": signer.key_id},
    )


@router.get("/checkpoints")
def list_audit_checkpoints(
    _actor: AuditReader,
    session: SessionDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_SQL_BIGINT, description="Cursor: the last seq received.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    *,
    request: Request,
    response: Response,
) -> list[CheckpointPublic]:
    """List signed checkpoints, oldest first, to archive where the database owner cannot write."""
    found = list_checkpoints(session=session, after_seq=after, limit=limit)
    if len(found) == limit:
        response.headers["Link"] = next_link(request, str(found[-1].seq), param="after")
    return [CheckpointPublic.of(c) for c in found]


@router.post("/checkpoints", dependencies=[Depends(require_admin())], status_code=201)
def create_checkpoint(session: SessionDep, signer: SignerDep) -> CheckpointPublic:
    """Sign the current head now (global administrators); 409 when the log is still empty."""
    made = checkpoint(session=session, signer=signer)
    if made is None:
        raise Conflict("the audit log is empty; there is no head to sign yet")
    return CheckpointPublic.of(made)
