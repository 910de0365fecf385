"""Browser-facing protections, checked as an attacker would probe them.

Another site may not frame a Warden page (clickjacking an approval), the dashboard runs no
script and loads nothing from elsewhere, and the API's description is not public.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.headers import DASHBOARD_CSP, SecurityHeaders
from api.settings import Settings
from api.web_session import CSRF_FIELD
from governance.actors import Actor
from governance.identity import create_person
from governance.roles import Role, grant_role
from lineage.projects import create_project
from lineage.store import session_scope
from tests.api.dashboard_seed import PASSWORD as SEED_PASSWORD
from tests.api.dashboard_seed import seed_dashboard
from tests.conftest import Issued

PASSWORD = "a long enough password"
HTML = {"Accept": "text/html"}


@pytest.fixture
def approver(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A client signed in to the dashboard as alex, an approver in project ``acme``."""
    system = Actor.system()
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        alex = create_person(session=session, actor=system, name="alex", password=PASSWORD)
        grant_role(
            session=session,
            actor=system,
            project_id=project.id,
            principal_id=alex.id,
            role=Role.APPROVER,
        )
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
        form = client.get("/login")
        token = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', form.text)
        assert token is not None
        signed = client.post(
            "/login",
            data={"username": "alex", "password": PASSWORD, CSRF_FIELD: token.group(1)},
            follow_redirects=False,
        )
        assert signed.status_code == 303
        yield client


def _directives(policy: str) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in policy.split(";")
        if part.strip()
    }


@pytest.mark.parametrize("path", ["/p/acme/approvals", "/p/acme", "/", "/login"])
def test_no_other_site_can_frame_a_dashboard_page_and_no_script_runs(
    approver: TestClient, path: str
) -> None:
    page = approver.get(path, headers=HTML)
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    policy = _directives(page.headers["content-security-policy"])
    assert policy["frame-ancestors"] == "'none'"
    assert policy["script-src"] == "'none'"
    assert policy["default-src"] == "'self'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in page.text
    assert "javascript:" not in page.text


def test_errors_and_api_answers_carry_the_headers_too(
    client: TestClient, make_principal: Callable[..., Issued]
) -> None:
    for response in (
        client.get("/api/v1/projects"),
        client.get("/api/v1/projects", headers=make_principal().headers),
        client.get("/no/such/page", headers=HTML),
    ):
        assert response.headers["content-security-policy"] == DASHBOARD_CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_api_description_needs_sign_in(
    client: TestClient, make_principal: Callable[..., Issued], path: str
) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wdn_x_y"}).status_code == 401
    reader = make_principal()
    shown = client.get(path, headers=reader.headers)
    assert shown.status_code == 200
    if path != "/openapi.json":
        assert _directives(shown.headers["content-security-policy"])["frame-ancestors"] == "'none'"


def test_a_signed_in_person_reads_the_api_description_and_a_browser_is_sent_to_sign_in(
    approver: TestClient, settings: Settings, engine: Engine
) -> None:
    assert approver.get("/docs", headers=HTML).status_code == 200
    assert "/api/v1/projects" in approver.get("/openapi.json").json()["paths"]
    with TestClient(create_app(settings, engine=engine)) as stranger:
        sent = stranger.get("/docs", headers=HTML, follow_redirects=False)
        assert sent.status_code == 303
        assert sent.headers["location"] == "/login?next=%2Fdocs"


def test_a_page_warden_frames_itself_keeps_its_own_policy() -> None:
    app = FastAPI()
    own = "default-src 'none'; frame-ancestors 'self'"

    @app.get("/report.html")
    def report() -> Response:
        return Response("<p>report</p>", headers={"Content-Security-Policy": own})

    app.add_middleware(SecurityHeaders)
    with TestClient(app) as client:
        response = client.get("/report.html")
    assert response.headers["content-security-policy"] == own
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.slow
def test_every_dashboard_page_works_under_its_policy(settings: Settings, engine: Engine) -> None:
    """Crawl the seeded dashboard: no page relies on what the policy forbids (inline script or
    style, ``javascript:`` links, other origins), so the policy breaks nothing a person sees."""
    seed_dashboard(engine, settings)
    with TestClient(create_app(settings, engine=engine)) as client:
        form = client.get("/login")
        token = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', form.text)
        assert token is not None
        client.post(
            "/login",
            data={"username": "alex", "password": SEED_PASSWORD, CSRF_FIELD: token.group(1)},
        )
        queue, seen, pages = ["/"], set(), 0
        while queue and pages < 80:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            page = client.get(path, headers=HTML)
            if not page.headers.get("content-type", "").startswith("text/html"):
                continue
            if page.headers.get("content-disposition", "").startswith("attachment"):
                continue  # a download (a model card as HTML), not a page the dashboard shows
            pages += 1
            assert page.status_code == 200, path
            policy = _directives(page.headers["content-security-policy"])
            if path.endswith("/report.html"):  # the stored report: its own, stricter policy
                assert policy["default-src"] == "'none'"
                assert page.headers["x-frame-options"] == "SAMEORIGIN"
                continue
            assert page.headers["content-security-policy"] == DASHBOARD_CSP, path
            for forbidden in (
                "<script",
                "<style",
                " style=",
                "javascript:",
                'src="http',
                'href="//',
            ):
                assert forbidden not in page.text, (path, forbidden)
            for found in re.findall(r'(?:href|src)="(/(?:p/)?[^"#]*)', page.text):
                link = html.unescape(found)  # with its query: some pages need theirs
                if link.startswith(("/p/", "/static/")) or link == "/":
                    queue.append(link)
    assert pages >= 10, f"the crawl reached only {sorted(seen)}"
