"""The dashboard: Warden in a browser, server-rendered from the same services as the REST API.

Pages (Jinja2 templates in ``api/templates/``, one stylesheet in ``api/static/``, no JavaScript):

==========================================  ===================  ==============================
page                                        permission           shows
==========================================  ===================  ==============================
``/login`` (GET, POST)                      public               sign-in form
``/login/oidc`` (and ``…/callback``)        public               sign-in with the provider
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
``/p/{project}/traces``                     ``trace:read``       LLM traces, filtered
``/p/{project}/traces/{trace_id}``          ``trace:read``       one trace as a waterfall
``/p/{project}/traces/deployments/{id}``    ``trace:read``       volume, latency, tokens, cost
``/p/{project}/evaluation``                 ``model:read``       evaluation runs; pick some to
                                                                 compare
``/p/{project}/evaluation/datasets`` (and   ``model:read``       datasets; a version's records,
``…/{name}/versions/{v}``)                                       frozen or open, content hash
``/p/{project}/evaluation/compare``         ``model:read``       runs side by side, templates'
                                                                 diff, records that differ
``/p/{project}/prompts`` (and ``…/{name}``, ``model:read``       prompts, versions, where live;
``…/{name}/versions/{v}``)                                       a version's template and diff
``…/prompts/{name}/versions/{v}/promotion-  ``approval:request`` opens an approval request
request`` (POST)
``/p/{project}/llm-deployments``            ``model:read``       endpoint host, model, key source
``/p/{project}/incidents``                  ``alert:read``       incidents and their findings
``/p/{project}/approvals`` (GET)            ``project:read``     inbox; decide forms if allowed
``/p/{project}/approvals/{id}`` (POST)      ``approval:decide``  approve / reject with a reason
``/p/{project}/audit``                      ``audit:read``       searchable, paginated log and
                                                                 the chain's verification
``/p/{project}/reports`` (and ``…/model-``  ``report:read``      generate and download model
``card``, ``…/audit``)                                           cards and audit reports
``/p/{project}/search``                     ``project:read``     models, deployments, datasets,
                                                                 runs the reader may open
``/p/{project}/monitors/new``, ``…/edit``   ``monitor:write``    monitor form (preview:
                                                                 ``monitor:run``)
``/p/{project}/policies`` (and ``…/{id}``)  ``policy:read``      policies, versions, decisions;
                                                                 editor for ``policy:write``
``/p/{project}/alerts``                     ``alert:read``       channels and rules; forms for
                                                                 ``alert:write``
``/p/{project}/pipelines``                  ``pipeline:read``    pipelines and runs; form for
                                                                 ``pipeline:write``
``/p/{project}/access``                     ``project:admin``    approval rules, role grants
==========================================  ===================  ==============================

Forms (``*_forms.py``) call the REST route's own handler with the body built from their fields,
and their posts pass :func:`api.dashboard.forms.form_gate`: the permission, then the CSRF token,
each refusal audited.

Every page route carries the same :class:`~api.security.Gate` as the API (so the route sweep
covers it), authenticated by the session cookie of :mod:`api.web_session`. Actions a role may
not take are not offered; forced anyway, the gate answers 403 and audits the denial. Browsers get
errors as HTML pages and are sent to ``/login`` when not signed in; other clients get
problem+json as from the API.

A monitor run's verdict and findings are read from its ``summary`` (``status``, ``findings``;
:func:`monitors.execute.summarise`); its report is the worker's stored one
(:func:`monitors.report_keys`, in the artifact store). Charts over time are drawn from the
findings of successive runs.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.dashboard import (  # noqa: F401  (importing a page module registers its pages)
    access_forms,
    alert_forms,
    evaluation_pages,
    governance_pages,
    model_pages,
    monitor_forms,  # before monitor_pages: …/monitors/new must match before …/monitors/{id}
    monitor_pages,
    overview,
    pipeline_forms,
    policy_forms,
    prompt_pages,
    report_pages,
    search_page,
    sign_in,
    sign_in_oidc,
    trace_pages,
)
from api.dashboard.rendering import _HERE, PUBLIC_PATHS, _csrf, _templates, router
from api.dashboard.summaries import run_label
from api.web_session import (
    CSRF_FIELD,
    clear_session_cookie,
    read_session,
    session_credential_reader,
)
from lineage.errors import Unauthenticated

__all__ = ["PUBLIC_PATHS", "install_dashboard", "router", "run_label"]


# --- installation ---------------------------------------------------------------------------


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _is_dashboard(path: str) -> bool:
    return not path.startswith(("/api/", "/static/", "/metrics", "/healthz", "/readyz"))


async def _dashboard_errors(
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


class _DashboardErrors:
    """Error pages and sign-in redirects for browsers on dashboard paths; others pass through.

    The page rewrite needs a ``BaseHTTPMiddleware`` (it reads the response body back), which
    costs every request a task and a stream: API paths, the bulk of the traffic, skip it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pages = BaseHTTPMiddleware(app, dispatch=_dashboard_errors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_dashboard(scope["path"]):
            await self.pages(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install_dashboard(app: FastAPI) -> None:
    """Add the dashboard to ``app``: pages, static files, the cookie reader, HTML errors.

    Browsers (``Accept: text/html``) get error pages as HTML on dashboard paths, and a redirect
    to ``/login`` when not signed in; API clients keep problem+json.
    """
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    readers = list(getattr(app.state, "credential_readers", []))
    app.state.credential_readers = [*readers, session_credential_reader]

    app.add_middleware(_DashboardErrors)
