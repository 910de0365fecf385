"""Model versions and deployments over REST: register, list, read; list, read, end.

Every write is permission-gated on the route and audited in the request's transaction, so the
action and its audit entry commit together or not at all. Recording a deployment puts a version
live, so it lives with the other going-live routes in :mod:`api.routes.promotions`; ending one
takes a version out of service and puts nothing live. Importing past deployments from another
system (``POST …/deployments/import``, ``project:admin``) writes closed intervals marked
``imported``, shown as such in every answer; times of record are otherwise the server's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import AwareDatetime, BaseModel
from sqlmodel import Session, col, select

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.pages import PageDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit import act_then_audit
from governance.permissions import Permission
from lineage.deployments import (
    DeploymentImport,
    end_deployment,
    get_deployment,
    import_deployment,
    live_deployments,
    page_deployments,
)
from lineage.model_versions import (
    ModelVersionCreate,
    SchemaRevision,
    get_model_version,
    page_model_versions,
    register_model_version,
    revise_schema,
)
from lineage.models import Deployment, ModelVersion, Run

__all__ = ["DeploymentPublic", "ModelVersionPublic", "router"]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["models"]
)


class ModelVersionPublic(BaseModel):
    """A registered model version as clients see it; ``source_run_id`` is the OpenLineage runId.

    ``kind`` is ``prompt`` for an LLM application's prompt version (read it under …/prompts).
    """

    id: uuid.UUID
    name: str
    version: str
    kind: str
    source_run_id: uuid.UUID | None
    external: bool
    artifact_uri: str | None
    artifact_sha256: str | None
    parameters: dict[str, Any]
    metrics: dict[str, float]
    feature_schema: dict[str, str]
    context_schema: dict[str, dict[str, str]]
    output_schema: dict[str, str]
    description: str
    registered_by: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, model_version: ModelVersion, *, session: Session) -> ModelVersionPublic:
        """Build the public view, translating the training run to its OpenLineage runId."""
        run = session.get(Run, model_version.source_run_id) if model_version.source_run_id else None
        return cls.with_run(model_version, run.run_id if run else None)

    @classmethod
    def of_all(cls, versions: list[ModelVersion], *, session: Session) -> list[ModelVersionPublic]:
        """Build the public views of many versions with one query for their training runs."""
        run_ids = {v.source_run_id for v in versions if v.source_run_id is not None}
        runs = (
            dict(session.exec(select(Run.id, Run.run_id).where(col(Run.id).in_(run_ids))).all())
            if run_ids
            else {}
        )
        return [
            cls.with_run(v, runs.get(v.source_run_id) if v.source_run_id else None)
            for v in versions
        ]

    @classmethod
    def with_run(cls, model_version: ModelVersion, run_id: uuid.UUID | None) -> ModelVersionPublic:
        """Build the public view given the training run's OpenLineage runId."""
        return cls(
            id=model_version.id,
            name=model_version.name,
            version=model_version.version,
            kind=model_version.kind,
            source_run_id=run_id,
            external=model_version.external,
            artifact_uri=model_version.artifact_uri,
            artifact_sha256=model_version.artifact_sha256,
            parameters=model_version.parameters,
            metrics=model_version.metrics,
            feature_schema=model_version.feature_schema,
            context_schema=model_version.context_schema,
            output_schema=model_version.output_schema,
            description=model_version.description,
            registered_by=model_version.registered_by,
            created_at=model_version.created_at,
        )


class DeploymentPublic(BaseModel):
    """A deployment as clients see it, with the model version it serves and its input schema."""

    id: uuid.UUID
    name: str
    environment: str
    model_version_id: uuid.UUID
    model_name: str
    model_version: str
    feature_schema: dict[str, str]
    live_from: datetime
    live_until: datetime | None
    recorded_by: uuid.UUID | None
    imported: bool
    created_at: datetime

    @classmethod
    def of(cls, deployment: Deployment, *, session: Session) -> DeploymentPublic:
        """Build the public view of a stored deployment."""
        model_version = session.get(ModelVersion, deployment.model_version_id)
        assert model_version is not None  # a foreign key guarantees it
        return cls.joined(deployment, model_version)

    @classmethod
    def of_all(
        cls, deployments: Sequence[Deployment], *, session: Session
    ) -> list[DeploymentPublic]:
        """Build the views of a page of deployments, their model versions read in one query."""
        ids = {d.model_version_id for d in deployments}
        served = {
            v.id: v for v in session.exec(select(ModelVersion).where(col(ModelVersion.id).in_(ids)))
        }
        return [cls.joined(d, served[d.model_version_id]) for d in deployments]

    @classmethod
    def joined(cls, deployment: Deployment, model_version: ModelVersion) -> DeploymentPublic:
        """Build the view of a deployment from the model version it serves."""
        return cls(
            id=deployment.id,
            name=deployment.name,
            environment=deployment.environment,
            model_version_id=model_version.id,
            model_name=model_version.name,
            model_version=model_version.version,
            feature_schema=model_version.feature_schema,
            live_from=deployment.live_from,
            live_until=deployment.live_until,
            recorded_by=deployment.recorded_by,
            imported=deployment.imported,
            created_at=deployment.created_at,
        )


@router.post(
    "/models/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Register a model version",
)
def register_version(
    name: str,
    spec: ModelVersionCreate,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> ModelVersionPublic:
    """Register a version of model ``name``: artifact, hash, training run, scores, input schema."""
    model_version = act_then_audit(
        lambda: register_model_version(
            session=session,
            project_id=project.id,
            name=name,
            spec=spec,
            registered_by=actor.principal_id,
        ),
        session=session,
        actor=actor,
        action="model_version.register",
        target=lambda made: f"model_version:{made.id}",
        detail=lambda made: {
            "name": name,
            "version": made.version,
            "artifact_sha256": made.artifact_sha256,
        },
    )
    return ModelVersionPublic.of(model_version, session=session)


@router.post("/models/{name}/versions/{version}/schema", summary="Give a version its schema")
def revise_version_schema(
    name: str,
    version: str,
    revision: SchemaRevision,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> ModelVersionPublic:
    """Fill in the schema a version lacks (features, outputs, context columns); audited.

    What the version declared never changes: a conflicting revision answers 409.
    """
    model_version = get_model_version(
        session=session, project_id=project.id, name=name, version=version
    )
    before = {
        "feature_schema": dict(model_version.feature_schema),
        "context_schema": dict(model_version.context_schema),
        "output_schema": dict(model_version.output_schema),
    }
    revised = act_then_audit(
        lambda: revise_schema(session=session, model_version=model_version, revision=revision),
        session=session,
        actor=actor,
        action="model_version.schema_revise",
        target=lambda made: f"model_version:{made.id}",
        detail=lambda made: {
            "name": name,
            "version": made.version,
            "before": before,
            "after": {
                "feature_schema": made.feature_schema,
                "context_schema": made.context_schema,
                "output_schema": made.output_schema,
            },
        },
    )
    return ModelVersionPublic.of(revised, session=session)


@router.get(
    "/models",
    dependencies=[Depends(require(Permission.MODEL_READ))],
    summary="List every model version of the project",
)
def list_all_versions(
    project: CurrentProject, session: SessionDep, page: PageDep
) -> list[ModelVersionPublic]:
    """Return a page of the project's model versions, by name, oldest first."""
    found = page_model_versions(
        session=session, project_id=project.id, limit=page.limit, cursor=page.cursor
    )
    return ModelVersionPublic.of_all(page.answer(found), session=session)


@router.get(
    "/models/{name}/versions",
    dependencies=[Depends(require(Permission.MODEL_READ))],
    summary="List a model's versions",
)
def list_versions(
    name: str, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[ModelVersionPublic]:
    """Return a page of model ``name``'s registered versions, oldest first."""
    found = page_model_versions(
        session=session, project_id=project.id, name=name, limit=page.limit, cursor=page.cursor
    )
    return ModelVersionPublic.of_all(page.answer(found), session=session)


@router.get(
    "/models/{name}/versions/{version}",
    dependencies=[Depends(require(Permission.MODEL_READ))],
    summary="Read a model version",
)
def read_version(
    name: str, version: str, project: CurrentProject, session: SessionDep
) -> ModelVersionPublic:
    """Return one model version, with its artifact hash."""
    model_version = get_model_version(
        session=session, project_id=project.id, name=name, version=version
    )
    return ModelVersionPublic.of(model_version, session=session)


@router.get(
    "/deployments",
    dependencies=[Depends(require(Permission.MODEL_READ))],
    summary="List deployments: history, live now, or live at a time",
)
def read_deployments(
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
    live: Annotated[bool, Query(description="Only what is live (at `as_of`, else now).")] = False,
    as_of: Annotated[
        AwareDatetime | None, Query(description="A moment with offset; implies `live`.")
    ] = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
    environment: Annotated[str | None, Query(max_length=64)] = None,
) -> list[DeploymentPublic]:
    """Return the deployment history (newest first), or what was live at ``as_of``/now."""
    if live or as_of is not None:
        found = live_deployments(session=session, project_id=project.id, as_of=as_of)
        found = [
            d
            for d in found
            if (name is None or d.name == name)
            and (environment is None or d.environment == environment)
        ]
        chosen = page.answer_all(found, key_of=lambda d: (d.live_from, d.id), descending=True)
    else:
        chosen = page.answer(
            page_deployments(
                session=session,
                project_id=project.id,
                name=name,
                environment=environment,
                limit=page.limit,
                cursor=page.cursor,
            )
        )
    return DeploymentPublic.of_all(chosen, session=session)


@router.get(
    "/deployments/{deployment_id}",
    dependencies=[Depends(require(Permission.MODEL_READ))],
    summary="Read a deployment",
)
def read_deployment(
    deployment_id: uuid.UUID, project: CurrentProject, session: SessionDep
) -> DeploymentPublic:
    """Return one deployment of the project."""
    deployment = get_deployment(session=session, project_id=project.id, deployment_id=deployment_id)
    return DeploymentPublic.of(deployment, session=session)


@router.post(
    "/deployments/import",
    status_code=status.HTTP_201_CREATED,
    summary="Import a past deployment from another system (admin)",
)
def import_past_deployment(
    spec: DeploymentImport,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_ADMIN))],
    project: CurrentProject,
    session: SessionDep,
) -> DeploymentPublic:
    """Import a closed, past interval the history does not hold; it is marked ``imported``.

    It never changes what a slot serves now (that is ``POST …/deployments``, under the
    going-live rule) and never overlaps what Warden recorded.
    """
    deployment = act_then_audit(
        lambda: import_deployment(
            session=session, project_id=project.id, spec=spec, recorded_by=actor.principal_id
        ),
        session=session,
        actor=actor,
        action="deployment.import",
        target=lambda d: f"deployment:{d.id}",
        detail=lambda d: {
            "after": {
                "deployment": d.name,
                "environment": d.environment,
                "model": f"{spec.model_name}:{spec.model_version}",
                "live_from": d.live_from.isoformat(),
                "live_until": spec.live_until.isoformat(),
                "imported": True,
            }
        },
    )
    return DeploymentPublic.of(deployment, session=session)


def _ended(deployment: Deployment) -> dict[str, str]:
    assert deployment.live_until is not None
    return {"live_until": deployment.live_until.isoformat()}


@router.post("/deployments/{deployment_id}/end", summary="End a live deployment")
def finish_deployment(
    deployment_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.DEPLOYMENT_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> DeploymentPublic:
    """Mark a live deployment as no longer serving, now; its slot is then empty."""
    deployment = act_then_audit(
        lambda: end_deployment(session=session, project_id=project.id, deployment_id=deployment_id),
        session=session,
        actor=actor,
        action="deployment.end",
        target=f"deployment:{deployment_id}",
        detail=_ended,
    )
    return DeploymentPublic.of(deployment, session=session)
