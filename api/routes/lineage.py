"""OpenLineage ingestion and lineage queries, compatible with Marquez's ``/api/v1/lineage``.

``POST /api/v1/lineage`` takes one RunEvent, JobEvent or DatasetEvent (spec 2-0-x), plain or
``Content-Encoding: gzip``; the decompressed body is bounded by ``settings.max_body_bytes``.
``GET /api/v1/lineage?nodeId=…&depth=…`` returns the graph around a node in Marquez's shape.

Which project an event lands in: the ``project`` query parameter when given (point the stock
client's ``endpoint`` option at ``api/v1/lineage?project=<name>``), otherwise the one project
the caller holds a role in; a caller with roles in several projects must name one.

Provenance of a model version and impact of a dataset version are project routes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.engine import Engine

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SessionDep, SettingsDep
from api.limits import gunzip
from api.pages import PageDep
from api.routes.model_versions import DeploymentPublic, ModelVersionPublic
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit import Outcome, act_then_audit, append_in_own_transaction
from governance.permissions import Permission
from governance.roles import authorize, visible_project_ids
from lineage.catalog import get_run, list_datasets, list_jobs, page_dataset_versions
from lineage.errors import InvalidInput, NotFound, PermissionDenied
from lineage.graph import (
    MAX_DEPTH,
    dataset_impact,
    dataset_impact_all_versions,
    get_dataset_version,
    lineage_graph,
    model_provenance_by_name,
)
from lineage.models import Dataset, DatasetVersion, Job, Run
from lineage.openlineage_ingest import ingest_event
from lineage.projects import Project, get_project, list_projects
from lineage.store import session_scope

__all__ = [
    "DatasetPublic",
    "DatasetVersionPublic",
    "ImpactPublic",
    "JobPublic",
    "LineageEventPublic",
    "LineageRunPublic",
    "ProvenancePublic",
    "RunDetailPublic",
    "router",
]

router = APIRouter(route_class=DeferredAPIRoute, tags=["lineage"])


class LineageEventPublic(BaseModel):
    """The answer to a posted event: its id and whether it was new (``False`` for a replay)."""

    id: uuid.UUID
    kind: str
    created: bool


class LineageRunPublic(BaseModel):
    """A run as clients see it: its OpenLineage runId, job, state and times."""

    run_id: uuid.UUID
    job_namespace: str
    job_name: str
    state: str
    started_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def of(cls, run: Run, job: Job) -> LineageRunPublic:
        """Build the public view of a run of ``job``."""
        return cls(
            run_id=run.run_id,
            job_namespace=job.namespace,
            job_name=job.name,
            state=run.state,
            started_at=run.started_at,
            ended_at=run.ended_at,
        )


class DatasetVersionPublic(BaseModel):
    """A dataset version as clients see it."""

    id: uuid.UUID
    namespace: str
    name: str
    version: str
    schema_fields: list[dict[str, Any]] | None
    row_count: int | None
    uri: str | None
    created_at: datetime

    @classmethod
    def of(cls, version: DatasetVersion, dataset: Dataset) -> DatasetVersionPublic:
        """Build the public view of a version of ``dataset``."""
        return cls(
            id=version.id,
            namespace=dataset.namespace,
            name=dataset.name,
            version=version.version,
            schema_fields=version.schema_fields,
            row_count=version.row_count,
            uri=version.uri,
            created_at=version.created_at,
        )


class DatasetPublic(BaseModel):
    """A dataset with its newest version and how many versions it has."""

    namespace: str
    name: str
    facets: dict[str, Any]
    latest_version: DatasetVersionPublic | None
    versions: int


class JobPublic(BaseModel):
    """A job with its most recent run and how many runs it has."""

    namespace: str
    name: str
    facets: dict[str, Any]
    latest_run: LineageRunPublic | None
    runs: int


class RunDetailPublic(BaseModel):
    """One run with the dataset versions it read and wrote and the model versions it trained."""

    run: LineageRunPublic
    facets: dict[str, Any]
    inputs: list[DatasetVersionPublic]
    outputs: list[DatasetVersionPublic]
    model_versions: list[ModelVersionPublic]


class ProvenancePublic(BaseModel):
    """Everything upstream of a model version."""

    model_version: ModelVersionPublic
    runs: list[LineageRunPublic]
    dataset_versions: list[DatasetVersionPublic]
    evaluations: list[LineageRunPublic] = Field(
        description="The evaluation runs that judged the version (not among what made it)."
    )
    evaluation_dataset_versions: list[DatasetVersionPublic] = Field(
        description="The dataset versions those evaluation runs read."
    )


class ImpactPublic(BaseModel):
    """Everything downstream of a dataset version, and the deployments serving it at ``as_of``."""

    dataset_version: DatasetVersionPublic
    covered: list[DatasetVersionPublic] = Field(
        description="The versions asked about: the one named, or every version of the dataset."
    )
    runs: list[LineageRunPublic]
    dataset_versions: list[DatasetVersionPublic]
    model_versions: list[ModelVersionPublic]
    deployments: list[DeploymentPublic]
    as_of: datetime | None
    judged_model_versions: list[ModelVersionPublic] = Field(
        description="The (prompt) versions evaluation runs reading the data judged."
    )


async def event_body(request: Request, settings: SettingsDep) -> bytes:
    """Return the request body, gunzipped when it says so, bounded after decompression."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    body = await request.body()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gunzip(body, limit=settings.max_body_bytes, what="event")
    raise InvalidInput(
        f"Content-Encoding {encoding!r} is not supported; send plain JSON or gzip",
        field="Content-Encoding",
    )


def _event_project(
    *, engine: Engine, actor: Actor, name: str | None, permission: Permission, action: str
) -> Project:
    """Return the project named by ``?project=``, else the caller's only project.

    The check reads in a short transaction of its own and a denial is audited in another, as
    the gate does for ``{project}`` routes, so the request's session holds no lock meanwhile.
    """
    with session_scope(engine) as session:
        try:
            if name is not None:
                project = get_project(session=session, name=name)
            else:
                visible = visible_project_ids(session=session, actor=actor)
                projects = list_projects(session=session, ids=visible)
                if len(projects) != 1:
                    raise InvalidInput(
                        f"you may use {len(projects)} projects; say which one with "
                        "?project=<name> (for the OpenLineage client, set endpoint to "
                        "api/v1/lineage?project=<name>)",
                        field="project",
                    )
                project = projects[0]
            authorize(session=session, actor=actor, project_id=project.id, permission=permission)
            return project
        except (NotFound, PermissionDenied) as error:
            denied = error
    append_in_own_transaction(
        engine=engine,
        actor=actor,
        action="access.denied",
        target=f"project:{name}",
        outcome=Outcome.DENIED,
        reason=f"{action}: {denied.detail}",
    )
    raise denied


ProjectQuery = Annotated[
    str | None,
    Query(description="The project's name; defaults to the caller's only project.", max_length=63),
]


@router.post(
    "/api/v1/lineage",
    status_code=status.HTTP_201_CREATED,
    summary="Ingest one OpenLineage event (Marquez-compatible)",
    responses={200: {"description": "The event had been received before; nothing changed."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One OpenLineage RunEvent, JobEvent or DatasetEvent (spec 2-0-x), "
            "plain or with Content-Encoding: gzip.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "externalDocs": {
                            "url": "https://openlineage.io/spec/2-0-2/OpenLineage.json"
                        },
                    }
                }
            },
        }
    },
)
def post_lineage(
    response: Response,
    actor: Annotated[Actor, Depends(require(Permission.LINEAGE_WRITE))],
    body: Annotated[bytes, Depends(event_body)],
    engine: EngineDep,
    session: SessionDep,
    project: ProjectQuery = None,
) -> LineageEventPublic:
    """Store an OpenLineage event unchanged and derive jobs, runs, datasets and edges from it."""
    target = _event_project(
        engine=engine,
        actor=actor,
        name=project,
        permission=Permission.LINEAGE_WRITE,
        action="POST /api/v1/lineage",
    )
    result = act_then_audit(
        lambda: ingest_event(session=session, project_id=target.id, body=body),
        session=session,
        actor=actor.in_project(target.id),
        action="lineage.ingest",
        target=lambda stored: f"lineage_event:{stored.event_id}",
        detail=lambda stored: {"kind": stored.kind},
        when=lambda stored: stored.created,
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return LineageEventPublic(id=result.event_id, kind=result.kind, created=result.created)


@router.get("/api/v1/lineage", summary="The lineage graph around a node (Marquez's shape)")
def get_lineage(
    actor: Annotated[Actor, Depends(require(Permission.LINEAGE_READ))],
    engine: EngineDep,
    session: SessionDep,
    node_id: Annotated[
        str,
        Query(
            alias="nodeId",
            min_length=1,
            max_length=2100,
            description="dataset:<namespace>:<name>, job:<namespace>:<name> or "
            "model:<name>:<version>",
        ),
    ],
    depth: Annotated[int, Query(ge=0, le=MAX_DEPTH)] = 20,
    project: ProjectQuery = None,
) -> dict[str, Any]:
    """Return ``{"graph": [{id, type, data, inEdges, outEdges}, …]}`` within ``depth`` edges."""
    target = _event_project(
        engine=engine,
        actor=actor,
        name=project,
        permission=Permission.LINEAGE_READ,
        action="GET /api/v1/lineage",
    )
    return lineage_graph(session=session, project_id=target.id, node_id=node_id, depth=depth)


def _runs(runs: list[Run], jobs: dict[uuid.UUID, Job]) -> list[LineageRunPublic]:
    return [LineageRunPublic.of(run, jobs[run.job_id]) for run in runs]


def _versions(
    versions: list[DatasetVersion], datasets: dict[uuid.UUID, Dataset]
) -> list[DatasetVersionPublic]:
    return [DatasetVersionPublic.of(v, datasets[v.dataset_id]) for v in versions]


@router.get(
    "/api/v1/projects/{project}/models/{name}/versions/{version}/provenance",
    dependencies=[Depends(require(Permission.LINEAGE_READ))],
    summary="Everything upstream of a model version",
)
def get_provenance(
    name: str, version: str, project: CurrentProject, session: SessionDep
) -> ProvenancePublic:
    """Return every run and dataset version that led to a model version."""
    found = model_provenance_by_name(
        session=session, project_id=project.id, name=name, version=version
    )
    return ProvenancePublic(
        model_version=ModelVersionPublic.of(found.model_version, session=session),
        runs=_runs(found.runs, found.jobs),
        dataset_versions=_versions(found.dataset_versions, found.datasets),
        evaluations=_runs(found.evaluations, found.jobs),
        evaluation_dataset_versions=_versions(found.evaluation_dataset_versions, found.datasets),
    )


@router.get(
    "/api/v1/projects/{project}/datasets/impact",
    dependencies=[Depends(require(Permission.LINEAGE_READ))],
    summary="Everything downstream of a dataset (one version, or all), and what serves it now",
)
def get_impact(
    project: CurrentProject,
    session: SessionDep,
    namespace: Annotated[str, Query(min_length=1, max_length=1024)],
    name: Annotated[str, Query(min_length=1, max_length=1024)],
    version: Annotated[
        str | None, Query(max_length=256, description="Every version of the dataset when unset.")
    ] = None,
    as_of: Annotated[
        AwareDatetime | None, Query(description="Read live deployments at this moment.")
    ] = None,
) -> ImpactPublic:
    """Return the runs, derived data, model versions and live deployments a dataset fed.

    Without ``version`` every version of the dataset counts: "which live deployments consumed
    dataset X" must not depend on which version of X trained them.
    """
    if version is None:
        found = dataset_impact_all_versions(
            session=session, project_id=project.id, namespace=namespace, name=name, as_of=as_of
        )
    else:
        start = get_dataset_version(
            session=session, project_id=project.id, namespace=namespace, name=name, version=version
        )
        found = dataset_impact(
            session=session, project_id=project.id, dataset_version_id=start.id, as_of=as_of
        )
    start = found.dataset_version
    return ImpactPublic(
        dataset_version=DatasetVersionPublic.of(start, found.datasets[start.dataset_id]),
        covered=[DatasetVersionPublic.of(v, found.datasets[v.dataset_id]) for v in found.covered],
        runs=_runs(found.runs, found.jobs),
        dataset_versions=_versions(found.dataset_versions, found.datasets),
        model_versions=[ModelVersionPublic.of(m, session=session) for m in found.model_versions],
        deployments=DeploymentPublic.of_all(found.deployments, session=session),
        as_of=found.as_of,
        judged_model_versions=[ModelVersionPublic.of(m, session=session) for m in found.judged],
    )


@router.get(
    "/api/v1/projects/{project}/datasets",
    dependencies=[Depends(require(Permission.LINEAGE_READ))],
    summary="List datasets with their newest version",
)
def read_datasets(
    project: CurrentProject, session: SessionDep, page: PageDep
) -> list[DatasetPublic]:
    """Return the project's datasets, by namespace and name."""
    found = list_datasets(session=session, project_id=project.id)
    return [
        DatasetPublic(
            namespace=s.dataset.namespace,
            name=s.dataset.name,
            facets=s.dataset.facets,
            latest_version=DatasetVersionPublic.of(s.latest, s.dataset) if s.latest else None,
            versions=s.versions,
        )
        for s in page.answer_all(found, key_of=lambda s: (s.dataset.namespace, s.dataset.name))
    ]


@router.get(
    "/api/v1/projects/{project}/datasets/versions",
    dependencies=[Depends(require(Permission.LINEAGE_READ))],
    summary="List the versions of one dataset",
)
def read_dataset_versions(
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
    namespace: Annotated[str, Query(min_length=1, max_length=1024)],
    name: Annotated[str, Query(min_length=1, max_length=1024)],
) -> list[DatasetVersionPublic]:
    """Return the versions of a dataset, newest first."""
    dataset, versions = page_dataset_versions(
        session=session,
        project_id=project.id,
        namespace=namespace,
        name=name,
        limit=page.limit,
        cursor=page.cursor,
    )
    return [DatasetVersionPublic.of(v, dataset) for v in page.answer(versions)]


@router.get(
    "/api/v1/projects/{project}/jobs",
    dependencies=[Depends(require(Permission.LINEAGE_READ))],
    summary="List jobs with their most recent run",
)
def read_jobs(project: CurrentProject, session: SessionDep, page: PageDep) -> list[JobPublic]:
    """Return the project's jobs, by namespace and name."""
    found = list_jobs(session=session, project_id=project.id)
    return [
        JobPublic(
            namespace=s.job.namespace,
            name=s.job.name,
            facets=s.job.facets,
            latest_run=LineageRunPublic.of(s.latest_run, s.job) if s.latest_run else None,
            runs=s.runs,
        )
        for s in page.answer_all(found, key_of=lambda s: (s.job.namespace, s.job.name))
    ]


@router.get(
    "/api/v1/projects/{project}/runs/{run_id}",
    dependencies=[Depends(require(Permission.LINEAGE_READ))],
    summary="Read a run: what it read, wrote and trained",
)
def read_run(run_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> RunDetailPublic:
    """Return a run by its OpenLineage runId."""
    found = get_run(session=session, project_id=project.id, run_id=run_id)
    return RunDetailPublic(
        run=LineageRunPublic.of(found.run, found.job),
        facets=found.run.facets,
        inputs=[DatasetVersionPublic.of(v, d) for d, v in found.inputs],
        outputs=[DatasetVersionPublic.of(v, d) for d, v in found.outputs],
        model_versions=[ModelVersionPublic.of(m, session=session) for m in found.model_versions],
    )
