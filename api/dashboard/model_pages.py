"""Model, version and deployment pages: versions side by side, lineage graph, charts."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from api.charts import GraphNode, lineage_svg
from api.dashboard.overview import _deployment_rows
from api.dashboard.rendering import (
    _render,
    router,
)
from api.dashboard.summaries import (
    _latest_runs,
    _stored_report,
)
from api.deps import SessionDep, SettingsDep
from api.routes.deployments_serving import get_registry
from api.security import CurrentProject, require
from api.settings import Settings
from governance.actors import Actor
from governance.permissions import Permission
from lineage.deployments import get_deployment, list_deployments
from lineage.errors import InvalidInput, NotFound, Unavailable
from lineage.graph import lineage_graph
from lineage.model_versions import get_model_version, page_model_versions
from lineage.models import ModelVersion
from lineage.projects import Project
from monitors.models import Monitor, MonitorRunPublic
from monitors.schedules import list_monitors
from retrain.deployers import mlflow_coordinates
from retrain.promotion import version_aliases

_VERSIONS_SHOWN = 20
"""Versions compared side by side on one model page."""


def _graph(session: Session, project: Project, version: ModelVersion) -> Any:
    found = lineage_graph(
        session=session, project_id=project.id, node_id=f"model:{version.name}:{version.version}"
    )
    base = f"/p/{quote(project.name)}"
    deployments = {
        (d.environment, d.name): d for d in list_deployments(session=session, project_id=project.id)
    }
    layers: dict[str, list[GraphNode]] = {"DATASET": [], "JOB": [], "MODEL": [], "DEPLOYMENT": []}
    edges: list[tuple[str, str]] = []
    for node in found["graph"]:
        data, kind = node["data"], node["type"]
        href = None
        if kind in ("DATASET", "JOB"):
            label = data["name"]
        elif kind == "MODEL":
            label = f"{data['name']} v{data['version']}"
            href = f"{base}/models/{quote(data['name'])}/versions/{quote(data['version'])}"
        else:
            label = f"{data['name']} ({data['environment']})"
            slot = deployments.get((data["environment"], data["name"]))
            href = f"{base}/deployments/{slot.id}" if slot else None
        layers[kind].append(
            GraphNode(
                node["id"], label, href, node["id"] == f"model:{version.name}:{version.version}"
            )
        )
        edges.extend((e["origin"], e["destination"]) for e in node["outEdges"])
    columns = [
        ("Data", layers["DATASET"]),
        ("Runs (jobs)", layers["JOB"]),
        ("Model versions", layers["MODEL"]),
        ("Deployments", layers["DEPLOYMENT"]),
    ]
    return lineage_svg(columns, edges)


def _aliases(
    request: Request, versions: list[ModelVersion]
) -> tuple[dict[uuid.UUID, list[str]], str | None]:
    """MLflow's aliases of each version, or none and a notice when MLflow cannot be asked.

    A local SQLite MLflow store that does not exist yet holds no alias: a page view does not
    create it (creating its tables takes seconds).
    """
    settings: Settings = request.app.state.settings
    uri = settings.resolved_mlflow_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return {}, None
    try:
        return version_aliases(registry=get_registry(request), versions=versions), None
    except Unavailable as error:
        return {}, error.detail


def _mlflow_links(settings: Settings, versions: list[ModelVersion]) -> dict[uuid.UUID, str]:
    """Links into the MLflow UI (``WARDEN_MLFLOW_UI_URL``) for versions registered there."""
    if not settings.mlflow_ui_url:
        return {}
    base = settings.mlflow_ui_url.rstrip("/")
    links = {}
    for version in versions:
        try:
            name, number = mlflow_coordinates(version)
        except InvalidInput:
            continue
        links[version.id] = f"{base}/#/models/{quote(name, safe='')}/versions/{quote(number)}"
    return links


@router.get("/p/{project}/models/{name}")
def model_page(
    request: Request,
    name: str,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_READ))],
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Show a model's versions side by side (metrics, parameters, MLflow aliases) and lineage.

    A page of the newest :data:`_VERSIONS_SHOWN` versions, oldest on the left, with a link to
    the older ones: a model retrained daily for years must not render thousands of columns.
    """
    cursor = request.query_params.get("cursor") or None
    page = page_model_versions(
        session=session,
        project_id=project.id,
        name=name,
        limit=_VERSIONS_SHOWN,
        cursor=cursor,
        newest_first=True,
    )
    versions = page.items[::-1]
    if not versions:
        raise NotFound(f"no model {name!r} in project {project.name!r}")
    here = f"/p/{quote(project.name)}/models/{quote(name)}"
    metrics = sorted({m for v in versions for m in v.metrics})
    parameters = sorted({p for v in versions for p in v.parameters})
    aliases, mlflow_notice = _aliases(request, versions)
    return _render(
        request,
        "model.html",
        actor,
        session,
        project=project,
        name=name,
        versions=versions,
        metrics=metrics,
        parameters=parameters,
        aliases=aliases,
        mlflow_notice=mlflow_notice,
        mlflow_links=_mlflow_links(settings, versions),
        graph=_graph(session, project, versions[-1]),
        older=f"{here}?{urlencode({'cursor': page.next_cursor})}" if page.next_cursor else None,
        newest=here if cursor else None,
    )


def _version_reports(
    session: Session, settings: Settings, project: Project, version: ModelVersion
) -> list[tuple[Monitor, MonitorRunPublic]]:
    """The latest stored fairness and explanations reports of monitors watching this version."""
    slots = [
        d.id
        for d in list_deployments(session=session, project_id=project.id)
        if d.model_version_id == version.id
    ]
    monitors = [
        m
        for m in list_monitors(session=session, project_id=project.id)
        if m.deployment_id in slots and m.kind in ("fairness", "explanations")
    ]
    latest = _latest_runs(session, monitors)
    return [
        (m, latest[m.id])
        for m in monitors
        if m.id in latest and _stored_report(settings, latest[m.id]) is not None
    ]


@router.get("/p/{project}/models/{name}/versions/{version}")
def version_page(
    request: Request,
    name: str,
    version: str,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_READ))],
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Show one version: its lineage graph, metrics, parameters, fairness and explanations."""
    found = get_model_version(session=session, project_id=project.id, name=name, version=version)
    aliases, mlflow_notice = _aliases(request, [found])
    return _render(
        request,
        "version.html",
        actor,
        session,
        project=project,
        version=found,
        aliases=aliases.get(found.id, []),
        mlflow_notice=mlflow_notice,
        mlflow_link=_mlflow_links(settings, [found]).get(found.id),
        graph=_graph(session, project, found),
        reports=_version_reports(session, settings, project, found),
        deployments=[
            d
            for d in list_deployments(session=session, project_id=project.id)
            if d.model_version_id == found.id
        ],
    )


@router.get("/p/{project}/deployments/{deployment_id}")
def deployment_page(
    request: Request,
    deployment_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show a deployment and the latest status of every monitor watching it."""
    deployment = get_deployment(session=session, project_id=project.id, deployment_id=deployment_id)
    (row,) = _deployment_rows(session, project, [deployment])
    return _render(request, "deployment.html", actor, session, project=project, row=row)
