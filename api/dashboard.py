"""The dashboard: Warden in a browser, server-rendered from the same services as the REST API.

Pages (Jinja2 templates in ``api/templates/``, one stylesheet in ``api/static/``, no JavaScript):

==========================================  ===================  ==============================
page                                        permission           shows
==========================================  ===================  ==============================
``/login`` (GET, POST)                      public               sign-in form
``/logout`` (POST)                          signed in            sign-out
``/``                                       signed in            the projects you have a role in
``/p/{project}``                            ``project:read``     models, live deployments with
                                                                 their latest monitor status,
                                                                 open incidents, my approvals
``/p/{project}/models/{name}``              ``model:read``       versions side by side, lineage
``/p/{project}/models/{name}/versions/{v}`` ``model:read``       lineage graph, metrics,
                                                                 fairness and explanation charts
``/p/{project}/deployments/{id}``           ``monitor:read``     its monitors' latest status
``/p/{project}/monitors``                   ``monitor:read``     every monitor, latest status
``/p/{project}/monitors/{id}``              ``monitor:read``     status over time, run history
``/p/{project}/monitor-runs/{id}``          ``monitor:read``     the run's findings, its
                                                                 stored report embedded
``…/monitor-runs/{id}/report.{json,html}``  ``report:read``      report downloads
``/p/{project}/incidents``                  ``alert:read``       incidents and their findings
``/p/{project}/approvals`` (GET)            ``project:read``     inbox; decide forms if allowed
``/p/{project}/approvals/{id}`` (POST)      ``approval:decide``  approve / reject with a reason
``/p/{project}/audit``                      ``audit:read``       searchable, paginated log and
                                                                 the chain's verification
``/p/{project}/reports`` (and ``…/model-``  ``report:read``      generate and download model
``card``, ``…/audit``)                                           cards and audit reports
==========================================  ===================  ==============================

Every page route carries the same :class:`~api.security.Gate` as the API (so the route sweep
covers it), authenticated by the session cookie of :mod:`api.web_session`. Actions a role may
not take are not offered; forced anyway, the gate answers 403 and audits the denial. Browsers get
errors as HTML pages and are sent to ``/login`` when not signed in; other clients get
problem+json as from the API.

A monitor run's verdict and findings are read from its ``summary`` (``status``, ``findings``;
:func:`monitors.execute.summarise`); its report is the worker's stored one
(:func:`monitors.execute.report_paths`). Charts over time are drawn from the findings of
successive runs.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlmodel import Session, select

from api.charts import GraphNode, Point, line_chart, lineage_svg
from api.deps import EngineDep, SessionDep, SettingsDep
from api.routes.approvals import decide_and_carry_out
from api.routes.audit import get_signer
from api.security import CurrentProject, request_id_of, require, require_authenticated
from api.settings import Settings
from api.web_session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    check_csrf,
    clear_session_cookie,
    codec_of,
    end_session,
    read_session,
    session_credential_reader,
    set_session_cookie,
)
from governance.actors import Actor, PrincipalKind
from governance.approvals import (
    ApprovalRequest,
    decisions_of,
    list_requests,
    pending_for,
)
from governance.audit import AuditFilter, Outcome, append, list_entries
from governance.audit_export import readable_project_ids, verify_store
from governance.identity import (
    AuthThrottle,
    Principal,
    actor_for,
    check_throttle,
    may_sign_in,
    record_auth_failure,
    verify_password,
)
from governance.incidents import list_incidents
from governance.permissions import Permission
from governance.roles import permissions_of, visible_project_ids
from lineage.deployments import get_deployment, list_deployments, live_deployments
from lineage.errors import InvalidInput, NotFound, RateLimited, Unauthenticated
from lineage.graph import lineage_graph
from lineage.model_versions import get_model_version, get_model_version_by_id, list_model_versions
from lineage.models import Deployment, ModelVersion
from lineage.projects import Project, list_projects
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.execute import report_paths
from monitors.findings import RunSummary, Status, run_status, worst_status
from monitors.models import Monitor, MonitorRunPublic, MonitorRunState
from monitors.run_jobs import get_monitor_run, latest_runs, list_monitor_runs, worker_waiting
from monitors.schedules import get_monitor, list_monitors
from reports import MEDIA_TYPES, Format, generate_model_card, generate_project_report, render

__all__ = ["PUBLIC_PATHS", "install_dashboard", "router", "run_label"]

PUBLIC_PATHS = frozenset({"/login"})
"""Dashboard paths open without signing in (the route sweep exempts them)."""

_HERE = Path(__file__).parent
_AUDIT_PAGE = 50
_CHART_RUNS = 60

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

Viewer = Annotated[Actor, Depends(require_authenticated())]


# --- rendering -----------------------------------------------------------------------------


def _templates(request: Request) -> Jinja2Templates:
    templates = getattr(request.app.state, "dashboard_templates", None)
    if not isinstance(templates, Jinja2Templates):
        templates = Jinja2Templates(directory=_HERE / "templates")
        templates.env.filters["when"] = _when
        templates.env.filters["num"] = _num
        request.app.state.dashboard_templates = templates
    return templates


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"  # counts read as counts, not 2.605e+04
    return f"{value:.4g}"


def _csrf(request: Request) -> str:
    found = read_session(request)
    return codec_of(request).csrf_token(found.nonce) if found else ""


def _render(
    request: Request,
    template: str,
    actor: Actor | None,
    session: Session | None,
    *,
    status_code: int = 200,
    project: Project | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page; ``session`` is the request's own (SQLite allows one writer at a time)."""
    held: frozenset[Permission] = frozenset()
    projects: list[Project] = []
    worker_notice: str | None = None
    if actor is not None and session is not None:
        projects = list_projects(
            session=session, ids=visible_project_ids(session=session, actor=actor)
        )
        worker_notice = worker_waiting(session=session)
        if project is not None:
            held = permissions_of(session=session, actor=actor, project_id=project.id)
    response = _templates(request).TemplateResponse(
        request,
        template,
        {
            "me": actor,
            "project": project,
            "projects": projects,
            "can": {p.value for p in held},
            "csrf": _csrf(request) if actor is not None else "",
            "csrf_field": CSRF_FIELD,
            "worker_notice": worker_notice,
            **context,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- monitor run summaries ------------------------------------------------------------------


def _results(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return the sections of a stored report document (one per kind that ran)."""
    results = (document or {}).get("results")
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def _summary_sections(summary: RunSummary | None) -> list[dict[str, Any]]:
    """Return a run summary as the one section a report document would hold."""
    if summary is None or not summary.findings:
        return []
    findings = [finding.to_dict() for finding in summary.findings]
    return [{"kind": summary.kind, "findings": findings, "charts": []}]


def _urgency(status: object) -> int:
    """Sort key putting the most urgent findings first (unknown statuses last)."""
    return -Status(status).rank if isinstance(status, str) and status in set(Status) else 1


def run_label(run: MonitorRunPublic | None) -> str:
    """Return a run's verdict (``ok``/``warn``/``alert``/``insufficient``) or its state."""
    if run is None:
        return "no runs"
    if run.state != MonitorRunState.SUCCEEDED:
        return str(run.state)
    verdict = run_status(RunSummary.from_json(run.summary))
    return "not computed" if verdict is None else verdict.value


def _latest_runs(session: Session, monitors: list[Monitor]) -> dict[uuid.UUID, MonitorRunPublic]:
    return latest_runs(session=session, monitor_ids=[m.id for m in monitors])


def _worst(statuses: list[str]) -> str:
    judged = [Status(s) for s in statuses if s in set(Status)]
    if judged:
        return worst_status(judged).value
    return statuses[0] if statuses else "no monitors"


def _series(runs: list[MonitorRunPublic]) -> list[tuple[str, dict[str, list[Point]], float | None]]:
    """Turn the findings of successive runs (oldest first) into the monitor page's charts.

    Per-column drift keeps the eight columns that drifted most; a threshold line is drawn
    when every plotted finding of a chart was judged against the same threshold.
    """
    charts: dict[str, dict[str, list[Point]]] = defaultdict(lambda: defaultdict(list))
    thresholds: dict[str, set[float | None]] = defaultdict(set)
    for run in runs:
        if run.state != MonitorRunState.SUCCEEDED:
            continue
        when = run.window_end or run.scheduled_for
        summary = RunSummary.from_json(run.summary)
        for finding in () if summary is None else summary.findings:
            value, metric = finding.value, finding.metric
            scope, monitor = finding.scope, finding.monitor
            if value is None:
                continue
            if metric == "drift_share":
                title, label = "Drift share", "drift share"
            elif monitor in ("drift", "prediction_drift") and scope.startswith("column:"):
                title, label = "Per-column drift", scope.removeprefix("column:")
            elif monitor == "performance" and scope == "dataset" and metric != "labelled_rows":
                title, label = "Performance", metric
            elif monitor == "fairness" and metric.endswith(("difference", "ratio")):
                title, label = "Fairness gaps", f"{metric} · {scope}"
            else:
                continue
            charts[title][label].append((when, float(value)))
            thresholds[title].add(finding.threshold)
    order = ["Drift share", "Per-column drift", "Performance", "Fairness gaps"]
    drawn = []
    for title in order:
        if title not in charts:
            continue
        ranked = sorted(charts[title].items(), key=lambda item: -max(v for _, v in item[1]))
        (only, *rest) = thresholds[title]
        drawn.append((title, dict(ranked), None if rest else only))
    return drawn


# --- authentication -------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(
    request: Request, *, error: str | None, status_code: int, next_url: str, username: str = ""
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or uuid.uuid4().hex
    response = _render(
        request,
        "login.html",
        None,
        None,
        status_code=status_code,
        error=error,
        next_url=next_url,
        username=username,
        login_csrf=token,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    """Show the sign-in form (the only public dashboard page)."""
    return _login_page(request, error=None, status_code=200, next_url=_safe_next(next))


@router.post("/login", response_model=None)
def login(
    request: Request,
    engine: EngineDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Sign a person in: throttled per name (not per address) and audited when it fails.

    The failure audit names a known principal; a name no one has (perhaps a password typed
    into the wrong field) is recorded only as a keyed digest, never as the text.
    """
    next_url = _safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or expected != csrf_token:
        return _login_page(
            request,
            error="The form expired; please sign in again.",
            status_code=400,
            next_url=next_url,
            username=username,
        )
    settings: Settings = request.app.state.settings
    throttle = AuthThrottle(
        max_failures=settings.auth_max_failures,
        window=timedelta(seconds=settings.auth_failure_window_seconds),
    )
    pseudonym = codec_of(request).pseudonym(username)
    bucket = f"signin:{pseudonym}"
    request_id = request_id_of(request)
    redirect = RedirectResponse(next_url, status_code=303)
    try:
        with session_scope(engine) as session:
            check_throttle(session=session, source=bucket, throttle=throttle)
            principal = verify_password(session=session, name=username, password=password)
            if principal is not None and may_sign_in(principal):
                set_session_cookie(request, redirect, principal, session=session)
                append(
                    session=session,
                    actor=actor_for(principal, request_id=request_id),
                    action="auth.signin",
                    target=f"principal:{principal.id}",
                    reason="dashboard sign-in",
                )
            else:
                principal = None
    except RateLimited as error:
        response = _login_page(
            request, error=error.detail, status_code=429, next_url=next_url, username=username
        )
        response.headers["Retry-After"] = str(error.retry_after_seconds)
        return response
    if principal is None:
        source = request.client.host if request.client else "unknown"
        with session_scope(engine) as session:
            record_auth_failure(session=session, source=bucket, throttle=throttle)
            known = session.exec(select(Principal.id).where(Principal.name == username)).first()
            named = repr(username) if known is not None else f"an unknown name ({pseudonym})"
            append(
                session=session,
                actor=Actor(
                    principal_id=None,
                    name=f"anonymous@{source}",
                    kind=PrincipalKind.SYSTEM,
                    request_id=request_id,
                ),
                action="auth.failed",
                target="route:POST /login",
                outcome=Outcome.DENIED,
                reason=f"POST /login: wrong name or password for {named}",
            )
        return _login_page(
            request,
            error="Wrong name or password.",
            status_code=401,
            next_url=next_url,
            username=username,
        )
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return redirect


@router.post("/logout", response_model=None)
def logout(
    request: Request,
    actor: Viewer,
    session: SessionDep,
    csrf_token: Annotated[str | None, Form(max_length=128)] = None,
) -> Response:
    """Sign out: end the session in the store (a replayed cookie is refused) and drop the cookie."""
    check_csrf(request, csrf_token)
    redirect = RedirectResponse("/login", status_code=303)
    end_session(request, redirect, session=session)
    append(
        session=session,
        actor=actor,
        action="auth.signout",
        target=f"principal:{actor.principal_id}",
        reason="dashboard sign-out",
    )
    return redirect


# --- pages ----------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, actor: Viewer, session: SessionDep) -> HTMLResponse:
    """List the projects the signed-in person has a role in."""
    return _render(request, "home.html", actor, session)


def _versions_by_id(session: Session, project_id: uuid.UUID) -> dict[uuid.UUID, ModelVersion]:
    return {v.id: v for v in list_model_versions(session=session, project_id=project_id)}


def _deployment_rows(
    session: Session, project: Project, deployments: list[Deployment]
) -> list[dict[str, Any]]:
    versions = _versions_by_id(session, project.id)
    monitors = list_monitors(session=session, project_id=project.id)
    latest = _latest_runs(session, monitors)
    rows = []
    for deployment in deployments:
        watching = [m for m in monitors if m.deployment_id == deployment.id]
        statuses = [run_label(latest.get(m.id)) for m in watching]
        rows.append(
            {
                "deployment": deployment,
                "version": versions.get(deployment.model_version_id),
                "status": _worst(statuses) if watching else "no monitors",
                "monitors": [(m, latest.get(m.id), run_label(latest.get(m.id))) for m in watching],
            }
        )
    return rows


@router.get("/p/{project}")
def overview(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show a project at a glance: models, live deployments, incidents, my approvals."""
    held = permissions_of(session=session, actor=actor, project_id=project.id)
    models: dict[str, list[ModelVersion]] = defaultdict(list)
    for version in list_model_versions(session=session, project_id=project.id):
        models[version.name].append(version)
    live = _deployment_rows(
        session, project, live_deployments(session=session, project_id=project.id)
    )
    incidents = (
        list_incidents(session=session, project_id=project.id, open_only=True, limit=20)
        if Permission.ALERT_READ in held
        else []
    )
    return _render(
        request,
        "overview.html",
        actor,
        session,
        project=project,
        models=dict(models),
        live=live,
        incidents=incidents,
        mine=pending_for(session=session, actor=actor),
    )


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


@router.get("/p/{project}/models/{name}")
def model_page(
    request: Request,
    name: str,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show a model's versions side by side (metrics, parameters) and its lineage graph."""
    versions = list_model_versions(session=session, project_id=project.id, name=name)
    if not versions:
        raise NotFound(f"no model {name!r} in project {project.name!r}")
    metrics = sorted({m for v in versions for m in v.metrics})
    parameters = sorted({p for v in versions for p in v.parameters})
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
        graph=_graph(session, project, versions[-1]),
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
    return _render(
        request,
        "version.html",
        actor,
        session,
        project=project,
        version=found,
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


@router.get("/p/{project}/monitors")
def monitors_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """List every monitor with its deployment and latest status."""
    monitors = list_monitors(session=session, project_id=project.id)
    latest = _latest_runs(session, monitors)
    deployments = {d.id: d for d in list_deployments(session=session, project_id=project.id)}
    rows = [
        (m, deployments.get(m.deployment_id) if m.deployment_id else None, latest.get(m.id))
        for m in monitors
    ]
    return _render(
        request, "monitors.html", actor, session, project=project, rows=rows, status_of=run_label
    )


@router.get("/p/{project}/monitors/{monitor_id}")
def monitor_page(
    request: Request,
    monitor_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show a monitor's status over time as charts and its run history."""
    monitor = get_monitor(session=session, project_id=project.id, monitor_id=monitor_id)
    runs = list_monitor_runs(
        session=session, project_id=project.id, monitor_id=monitor.id, limit=_CHART_RUNS
    )
    charts = [
        (title, line_chart(title, series, threshold=threshold))
        for title, series, threshold in _series(list(reversed(runs)))
    ]
    deployment = (
        get_deployment(session=session, project_id=project.id, deployment_id=monitor.deployment_id)
        if monitor.deployment_id
        else None
    )
    return _render(
        request,
        "monitor.html",
        actor,
        session,
        project=project,
        monitor=monitor,
        deployment=deployment,
        runs=runs,
        charts=charts,
        status_of=run_label,
    )


def _run_context(
    session: Session, project: Project, run_id: uuid.UUID
) -> tuple[MonitorRunPublic, Monitor, Deployment | None]:
    run = get_monitor_run(session=session, project_id=project.id, run_id=run_id)
    monitor = get_monitor(session=session, project_id=project.id, monitor_id=run.monitor_id)
    deployment = (
        get_deployment(session=session, project_id=project.id, deployment_id=monitor.deployment_id)
        if monitor.deployment_id
        else None
    )
    return run, monitor, deployment


def _stored_report(settings: Settings, run: MonitorRunPublic) -> dict[str, Any] | None:
    """Return the run's stored report document (written by the worker), if there is one."""
    json_path, _ = report_paths(settings.data_dir, project_id=run.project_id, run_id=run.id)
    if not json_path.is_file():
        return None
    document: dict[str, Any] = json.loads(json_path.read_text(encoding="utf-8"))
    return document


@router.get("/p/{project}/monitor-runs/{run_id}")
def run_page(
    request: Request,
    run_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_READ))],
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Show one run's report: verdict and findings (worst first), then the stored report.

    The stored report page (charts drawn by the worker) is embedded, not redrawn: drawing
    charts here would hold the request's transaction (SQLite's one writer) for seconds.
    """
    run, monitor, deployment = _run_context(session, project, run_id)
    document = _stored_report(settings, run)
    sections = []
    results = _results(document) or _summary_sections(RunSummary.from_json(run.summary))
    for result in results:
        findings = sorted(result.get("findings", []), key=lambda f: _urgency(f.get("status")))
        sections.append({**result, "findings": findings})
    return _render(
        request,
        "run.html",
        actor,
        session,
        project=project,
        run=run,
        monitor=monitor,
        deployment=deployment,
        status=run_label(run),
        sections=sections,
        has_report=document is not None,
    )


def _download(
    session: Session, settings: Settings, project: Project, run_id: uuid.UUID, index: int
) -> tuple[MonitorRunPublic, Path]:
    run = get_monitor_run(session=session, project_id=project.id, run_id=run_id)
    path = report_paths(settings.data_dir, project_id=project.id, run_id=run.id)[index]
    if not path.is_file():
        raise NotFound(f"monitor run {run_id} has no report yet (it is {run.state})")
    return run, path


@router.get("/p/{project}/monitor-runs/{run_id}/report.json", response_model=None)
def run_report_json(
    run_id: uuid.UUID,
    _actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Download a run's stored report document (JSON)."""
    run, path = _download(session, settings, project, run_id, 0)
    return Response(
        path.read_bytes(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="warden-run-{run.id}.json"'},
    )


@router.get("/p/{project}/monitor-runs/{run_id}/report.html", response_model=None)
def run_report_html(
    run_id: uuid.UUID,
    _actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    download: bool = False,
) -> Response:
    """Show or download a run's stored report: a self-contained HTML page (prints to PDF).

    Served with a policy allowing no scripts and no requests out, framed only by Warden's own
    pages (the run page embeds it).
    """
    run, path = _download(session, settings, project, run_id, 1)
    disposition = "attachment" if download else "inline"
    return Response(
        path.read_bytes(),
        media_type="text/html",
        headers={
            "Content-Disposition": f'{disposition}; filename="warden-run-{run.id}.html"',
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                "frame-ancestors 'self'"
            ),
        },
    )


@router.get("/p/{project}/incidents")
def incidents_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.ALERT_READ))],
    project: CurrentProject,
    session: SessionDep,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """List incidents (open first by recency) with their latest findings."""
    open_only = state != "all"
    incidents = list_incidents(
        session=session, project_id=project.id, open_only=open_only, limit=200
    )
    return _render(
        request,
        "incidents.html",
        actor,
        session,
        project=project,
        incidents=incidents,
        open_only=open_only,
    )


def _target(session: Session, project: Project, request: ApprovalRequest) -> tuple[str, str | None]:
    """Name a request's target for people (``income v2``, linked) instead of its raw id."""
    if request.target_kind == "model_version":
        try:
            version = get_model_version_by_id(
                session=session,
                project_id=project.id,
                model_version_id=uuid.UUID(request.target_id),
            )
        except (ValueError, NotFound):
            pass
        else:
            href = (
                f"/p/{quote(project.name)}/models/{quote(version.name)}"
                f"/versions/{quote(version.version)}"
            )
            return f"{version.name} v{version.version}", href
    return f"{request.target_kind} {request.target_id}", None


def _approval_rows(
    session: Session, project: Project, requests: list[ApprovalRequest]
) -> list[dict[str, Any]]:
    rows = []
    for request in requests:
        label, href = _target(session, project, request)
        rows.append(
            {
                "request": request,
                "decisions": decisions_of(session=session, approval_id=request.id),
                "label": label,
                "href": href,
            }
        )
    return rows


@router.get("/p/{project}/approvals")
def approvals_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_READ))],
    project: CurrentProject,
    session: SessionDep,
    decided: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """Show what awaits my decision (with approve / reject forms) and every recent request."""
    mine = pending_for(session=session, actor=actor)
    everything = list_requests(session=session, project_id=project.id)[:100]
    return _render(
        request,
        "approvals.html",
        actor,
        session,
        project=project,
        mine=_approval_rows(session, project, mine),
        everything=_approval_rows(session, project, everything),
        decided=decided if decided in ("approved", "rejected") else None,
    )


@router.post("/p/{project}/approvals/{approval_id}", response_model=None)
def decide_approval(
    request: Request,
    approval_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.APPROVAL_DECIDE))],
    project: CurrentProject,
    engine: EngineDep,
    session: SessionDep,
    decision: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str | None, Form(max_length=128)] = None,
) -> Response:
    """Approve or reject a pending request; a reason is required and kept in the audit log."""
    check_csrf(request, csrf_token)
    if decision not in ("approve", "reject"):
        raise InvalidInput("choose 'approve' or 'reject'", field="decision")
    if not reason.strip():
        raise InvalidInput(
            "give a reason for your decision; it is kept in the audit log", field="reason"
        )
    approve = decision == "approve"
    decide_and_carry_out(
        http=request,
        engine=engine,
        session=session,
        actor=actor,
        approval_id=approval_id,
        approve=approve,
        reason=reason,
    )
    done = "approved" if approve else "rejected"
    return RedirectResponse(f"/p/{quote(project.name)}/approvals?decided={done}", status_code=303)


@router.get("/p/{project}/audit")
def audit_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.AUDIT_READ))],
    project: CurrentProject,
    engine: EngineDep,
    who: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=300)] = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    after: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """Search the project's audit entries (paginated by cursor) and show the chain's state.

    The chain is verified first, outside the page's transaction: verification reads in
    batches of its own, and on SQLite an open transaction would hold the one write lock.
    """
    if outcome and outcome not in set(Outcome):
        raise InvalidInput(f"outcome must be one of {', '.join(sorted(Outcome))}", field="outcome")
    report = verify_store(engine=engine, public_key=get_signer(request).public_key)
    query = {
        key: value
        for key, value in {
            "who": who,
            "action": action,
            "target": target,
            "outcome": outcome,
        }.items()
        if value
    }
    with session_scope(engine) as session:
        where = AuditFilter(
            project_ids=readable_project_ids(session=session, actor=actor),
            project_id=project.id,
            actor=who or None,
            action=action or None,
            target=target or None,
            outcome=Outcome(outcome) if outcome else None,
            after_seq=after,
        )
        entries = list_entries(session=session, where=where, limit=_AUDIT_PAGE + 1)
        more = len(entries) > _AUDIT_PAGE
        entries = entries[:_AUDIT_PAGE]
        next_url = f"?{urlencode({**query, 'after': entries[-1].seq})}" if more else None
        return _render(
            request,
            "audit.html",
            actor,
            session,
            project=project,
            entries=entries,
            next_url=next_url,
            first_url=f"?{urlencode(query)}" if after else None,
            filters=query,
            outcomes=sorted(Outcome),
            verify=report,
        )


@router.get("/p/{project}/reports")
def reports_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Offer the reports to generate: a version's model card, a period's audit report."""
    today = utcnow()
    return _render(
        request,
        "reports.html",
        actor,
        session,
        project=project,
        versions=list_model_versions(session=session, project_id=project.id),
        default_from=(today - timedelta(days=30)).strftime("%Y-%m-%d"),
        default_to=today.strftime("%Y-%m-%d"),
    )


_FORMATS: dict[str, Format] = {"html": "html", "json": "json", "pdf": "pdf"}


def _report_format(value: str) -> Format:
    if value not in _FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(_FORMATS)}", field="format")
    return _FORMATS[value]


def _attachment(document: dict[str, Any], fmt: Format, stem: str) -> Response:
    return Response(
        render(document, fmt),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'},
    )


@router.get("/p/{project}/reports/model-card", response_model=None)
def model_card_download(
    actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    session: SessionDep,
    version_id: uuid.UUID,
    format: Annotated[str, Query(max_length=8)] = "html",
) -> Response:
    """Generate and download a version's model card (the API's report, audited alike)."""
    fmt = _report_format(format)
    version = get_model_version_by_id(
        session=session, project_id=project.id, model_version_id=version_id
    )
    document = generate_model_card(
        session=session,
        actor=actor,
        project_id=project.id,
        name=version.name,
        version=version.version,
        fmt=fmt,
    )
    return _attachment(document, fmt, f"model-card-{version.name}-{version.version}")


def _day(value: str, field: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as error:
        raise InvalidInput(f"{field} must be a date like 2026-11-30", field=field) from error


@router.get("/p/{project}/reports/audit", response_model=None)
def audit_report_download(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    engine: EngineDep,
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
    format: Annotated[str, Query(max_length=8)] = "html",
) -> Response:
    """Generate and download the project's audit report for whole days ``from``..``to``."""
    fmt = _report_format(format)
    start = _day(since, "from")
    end = _day(until, "to") + timedelta(days=1)
    if end <= start:
        raise InvalidInput("the period ends before it starts; pick a later 'to'", field="to")
    verification = verify_store(engine=engine, public_key=get_signer(request).public_key)
    with session_scope(engine) as session:
        document = generate_project_report(
            session=session,
            actor=actor,
            project_id=project.id,
            since=start,
            until=end,
            verification=verification,
            fmt=fmt,
        )
    return _attachment(document, fmt, f"audit-{project.name}-{since}-{until}")


# --- installation ---------------------------------------------------------------------------


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _is_dashboard(path: str) -> bool:
    return not path.startswith(("/api/", "/static/", "/metrics", "/healthz", "/readyz"))


def install_dashboard(app: FastAPI) -> None:
    """Add the dashboard to ``app``: pages, static files, the cookie reader, HTML errors.

    Browsers (``Accept: text/html``) get error pages as HTML on dashboard paths, and a redirect
    to ``/login`` when not signed in; API clients keep problem+json.
    """
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    readers = list(getattr(app.state, "credential_readers", []))
    app.state.credential_readers = [*readers, session_credential_reader]

    @app.middleware("http")
    async def dashboard_errors(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if (
            response.status_code < 400
            or not _is_dashboard(request.url.path)
            or not _wants_html(request)
            or response.headers.get("content-type", "").startswith("text/html")
        ):
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        if response.status_code == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            redirect = RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
            if request.cookies.get("warden_session"):
                clear_session_cookie(request, redirect)
            return redirect
        try:
            problem = json.loads(body)
        except ValueError:
            problem = {}
        try:
            signed_in = read_session(request) is not None
        except Unauthenticated:
            signed_in = False
        page = _templates(request).TemplateResponse(
            request,
            "error.html",
            {
                "me": None,
                "signed_in": signed_in,
                "project": None,
                "projects": [],
                "can": set(),
                "csrf": _csrf(request) if signed_in else "",
                "csrf_field": CSRF_FIELD,
                "status": response.status_code,
                "title": problem.get("title", "Error"),
                "detail": problem.get("detail", ""),
                "field": problem.get("field"),
            },
            status_code=response.status_code,
        )
        for name in ("retry-after", "x-request-id"):
            if name in response.headers:
                page.headers[name] = response.headers[name]
        return page
