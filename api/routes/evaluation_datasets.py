"""Evaluation datasets over REST: create, add versions (JSON, JSONL/CSV upload, from traces).

Reading needs ``model:read``; writing needs ``model:write``; copying traces into a dataset also
needs ``trace:read`` (the records carry their redacted content). Every write is audited in the
request's transaction through ``act_then_audit``; a refused request leaves nothing behind.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.limits import MAX_SQL_INTEGER
from api.pages import PageDep
from api.routes.llm_governance import request_box
from api.security import CurrentProject, require
from governance import act_then_audit
from governance.actors import Actor
from governance.permissions import Permission
from lineage.errors import InvalidInput
from retrain.eval_datasets import (
    MAX_RECORDS,
    EvalDataset,
    EvalDatasetCreate,
    EvalDatasetVersion,
    EvalRecord,
    EvalRecordCreate,
    EvalVersionCreate,
    add_records,
    create_dataset,
    create_version,
    get_dataset,
    get_version,
    list_datasets,
    list_versions,
    parse_records,
    records_from_traces,
    records_of,
)

__all__ = [
    "EvalDatasetPublic",
    "EvalRecordPublic",
    "EvalRecordsRequest",
    "EvalVersionFromTracesRequest",
    "EvalVersionPublic",
    "EvalVersionRecordsPublic",
    "router",
]

router = APIRouter(
    route_class=DeferredAPIRoute,
    prefix="/api/v1/projects/{project}/evaluation",
    tags=["evaluation"],
)

Writer = Annotated[Actor, Depends(require(Permission.MODEL_WRITE))]
_READ = [Depends(require(Permission.MODEL_READ))]


class EvalVersionPublic(BaseModel):
    """A dataset version: how many records, where they came from, frozen or open."""

    dataset: str
    version: int
    record_count: int
    source: str
    frozen_at: datetime | None
    content_sha256: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: EvalDatasetVersion, dataset: EvalDataset) -> EvalVersionPublic:
        """Build the public view."""
        return cls(
            dataset=dataset.name,
            version=row.version,
            record_count=row.record_count,
            source=row.source,
            frozen_at=row.frozen_at,
            content_sha256=row.content_sha256,
            created_at=row.created_at,
        )


class EvalDatasetPublic(BaseModel):
    """A dataset and its versions, newest first."""

    id: uuid.UUID
    name: str
    description: str
    created_at: datetime
    versions: list[EvalVersionPublic]

    @classmethod
    def of(cls, dataset: EvalDataset, *, session: Session) -> EvalDatasetPublic:
        """Build the public view."""
        return cls(
            id=dataset.id,
            name=dataset.name,
            description=dataset.description,
            created_at=dataset.created_at,
            versions=[
                EvalVersionPublic.of(v, dataset)
                for v in list_versions(session=session, dataset=dataset)
            ],
        )


class EvalRecordPublic(BaseModel):
    """One record of a version."""

    position: int
    inputs: dict[str, Any]
    expected_response: str | None
    facts: list[str]
    guidelines: list[str]
    context: str | None
    source_trace_id: str | None

    @classmethod
    def of(cls, row: EvalRecord) -> EvalRecordPublic:
        """Build the public view."""
        return cls(position=row.position, source_trace_id=row.source_trace_id, **row.canonical())


class EvalVersionRecordsPublic(EvalVersionPublic):
    """A version with its records."""

    records: list[EvalRecordPublic]


class EvalRecordsRequest(BaseModel):
    """Records to append to an open version."""

    model_config = ConfigDict(extra="forbid")

    records: list[EvalRecordCreate] = Field(min_length=1, max_length=MAX_RECORDS)


class EvalVersionFromTracesRequest(BaseModel):
    """Traces to copy into a new version (redacted again with the project's rules)."""

    model_config = ConfigDict(extra="forbid")

    trace_ids: list[Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]] = Field(
        min_length=1, max_length=1000
    )
    base_version: int | None = Field(default=None, ge=1, le=MAX_SQL_INTEGER)
    with_expected: bool = Field(
        default=True, description="Keep each trace's answer as the expected response."
    )


def _version_detail(version: EvalDatasetVersion, dataset: EvalDataset) -> dict[str, Any]:
    return {
        "dataset": dataset.name,
        "version": version.version,
        "records": version.record_count,
        "source": version.source,
    }


@router.post("/datasets", status_code=status.HTTP_201_CREATED, summary="Create a dataset")
def post_dataset(
    body: EvalDatasetCreate, actor: Writer, project: CurrentProject, session: SessionDep
) -> EvalDatasetPublic:
    """Create an evaluation dataset; add its records as versions."""
    dataset = act_then_audit(
        lambda: create_dataset(
            session=session, project_id=project.id, spec=body, created_by=actor.principal_id
        ),
        session=session,
        actor=actor,
        action="eval_dataset.create",
        target=lambda d: f"eval_dataset:{d.id}",
        detail={"name": body.name},
        project_id=project.id,
    )
    return EvalDatasetPublic.of(dataset, session=session)


@router.get("/datasets", dependencies=_READ, summary="List datasets")
def read_datasets(
    project: CurrentProject, session: SessionDep, page: PageDep
) -> list[EvalDatasetPublic]:
    """Return the project's evaluation datasets by name."""
    found = list_datasets(session=session, project_id=project.id)
    return [
        EvalDatasetPublic.of(d, session=session)
        for d in page.answer_all(found, key_of=lambda d: (d.name, d.id))
    ]


@router.get("/datasets/{name}", dependencies=_READ, summary="Read a dataset")
def read_dataset(name: str, project: CurrentProject, session: SessionDep) -> EvalDatasetPublic:
    """Return a dataset with its versions."""
    dataset = get_dataset(session=session, project_id=project.id, name=name)
    return EvalDatasetPublic.of(dataset, session=session)


def _new_version(
    *,
    session: Session,
    actor: Actor,
    dataset: EvalDataset,
    spec: EvalVersionCreate,
    source: str,
    traces: list[str | None] | None = None,
) -> EvalVersionPublic:
    version = act_then_audit(
        lambda: create_version(
            session=session,
            dataset=dataset,
            spec=spec,
            source=source,
            created_by=actor.principal_id,
            traces=traces or [],
        ),
        session=session,
        actor=actor,
        action="eval_dataset.version",
        target=f"eval_dataset:{dataset.id}",
        detail=lambda v: _version_detail(v, dataset),
        project_id=dataset.project_id,
    )
    return EvalVersionPublic.of(version, dataset)


@router.post(
    "/datasets/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Add a version (records in the body; or a copy of base_version)",
)
def post_version(
    name: str,
    body: EvalVersionCreate,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
) -> EvalVersionPublic:
    """Open the dataset's next version with these records (and a base version's, if named)."""
    dataset = get_dataset(session=session, project_id=project.id, name=name)
    return _new_version(session=session, actor=actor, dataset=dataset, spec=body, source="json")


@router.post(
    "/datasets/{name}/versions/upload",
    status_code=status.HTTP_201_CREATED,
    summary="Add a version from a JSONL or CSV file",
)
def upload_version(
    name: str,
    file: Annotated[UploadFile, File(description="JSONL (one record a line) or CSV")],
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    base_version: Annotated[int | None, Form(ge=1, le=MAX_SQL_INTEGER)] = None,
) -> EvalVersionPublic:
    """Read records from ``.jsonl`` or ``.csv``; other columns of a CSV are inputs."""
    dataset = get_dataset(session=session, project_id=project.id, name=name)
    suffix = (file.filename or "").lower().rsplit(".", 1)[-1]
    if suffix not in ("jsonl", "csv"):
        raise InvalidInput(
            f"the file must end in .jsonl or .csv, not {file.filename!r}", field="file"
        )
    kind: Literal["jsonl", "csv"] = "jsonl" if suffix == "jsonl" else "csv"
    records = parse_records(file.file.read(), kind=kind)
    spec = EvalVersionCreate.model_construct(base_version=base_version, records=records)
    return _new_version(session=session, actor=actor, dataset=dataset, spec=spec, source=kind)


@router.post(
    "/datasets/{name}/versions/from-traces",
    status_code=status.HTTP_201_CREATED,
    dependencies=[
        Depends(require(Permission.MODEL_WRITE)),
        Depends(require(Permission.TRACE_READ)),
    ],
    summary="Add a version copied from stored traces (redacted)",
)
def version_from_traces(
    name: str,
    body: EvalVersionFromTracesRequest,
    request: Request,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
) -> EvalVersionPublic:
    """Copy traces into records: the last user message as ``input``, the answer as expected."""
    dataset = get_dataset(session=session, project_id=project.id, name=name)
    records, traces = records_from_traces(
        session=session,
        project_id=project.id,
        trace_ids=body.trace_ids,
        sealer=request_box(request),
        with_expected=body.with_expected,
    )
    spec = EvalVersionCreate.model_construct(base_version=body.base_version, records=records)
    base_traces: list[str | None] = []
    if body.base_version is not None:
        base = get_version(session=session, dataset=dataset, version=body.base_version)
        base_traces = [r.source_trace_id for r in records_of(session=session, version=base)]
    return _new_version(
        session=session,
        actor=actor,
        dataset=dataset,
        spec=spec,
        source="traces",
        traces=[*base_traces, *traces],
    )


@router.post(
    "/datasets/{name}/versions/{version}/records",
    summary="Append records to an open version (409 once a run froze it)",
)
def post_records(
    name: str,
    version: Annotated[int, Path(ge=1, le=MAX_SQL_INTEGER)],
    body: EvalRecordsRequest,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
) -> EvalVersionPublic:
    """Append records; a frozen version refuses (create a new version from it instead)."""
    dataset = get_dataset(session=session, project_id=project.id, name=name)
    row = get_version(session=session, dataset=dataset, version=version)
    updated = act_then_audit(
        lambda: add_records(session=session, version=row, records=body.records),
        session=session,
        actor=actor,
        action="eval_dataset.records",
        target=f"eval_dataset:{dataset.id}",
        detail={"dataset": dataset.name, "version": version, "added": len(body.records)},
        project_id=project.id,
    )
    return EvalVersionPublic.of(updated, dataset)


@router.get(
    "/datasets/{name}/versions/{version}",
    dependencies=_READ,
    summary="Read a version with its records",
)
def read_version(
    name: str,
    version: Annotated[int, Path(ge=1, le=MAX_SQL_INTEGER)],
    project: CurrentProject,
    session: SessionDep,
) -> EvalVersionRecordsPublic:
    """Return a version and its records in order."""
    dataset = get_dataset(session=session, project_id=project.id, name=name)
    row = get_version(session=session, dataset=dataset, version=version)
    base = EvalVersionPublic.of(row, dataset)
    return EvalVersionRecordsPublic(
        **base.model_dump(),
        records=[EvalRecordPublic.of(r) for r in records_of(session=session, version=row)],
    )
