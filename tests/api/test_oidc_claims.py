"""OpenID Connect without a provider running: claims kept, passwords off, refusal pages."""

from __future__ import annotations

import socket

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.app import create_app
from api.dashboard.sign_in_oidc import STARTS_PER_MINUTE
from api.oidc import claims_of
from api.settings import Settings
from api.web_session import CSRF_FIELD
from governance.actors import Actor, PrincipalKind
from governance.audit import AuditEntry
from governance.federation import OidcLogin
from governance.identity import create_person
from lineage.store import session_scope

BASE = {"iss": "https://accounts.google.com", "sub": "1084", "email": "ana.lima@example.org"}


def test_a_single_string_claim_is_one_group_and_the_email_names_the_person(
    settings: Settings,
) -> None:
    google = settings.model_copy(update={"oidc_groups_claim": "hd"})
    found = claims_of({**BASE, "hd": "example.org"}, settings=google, kind=PrincipalKind.PERSON)
    assert found.groups == ("example.org",)
    assert found.preferred_name == "ana.lima"
    assert (found.issuer, found.subject, found.email) == (BASE["iss"], "1084", BASE["email"])
    listed = claims_of(
        {**BASE, "groups": ["a", "b"], "preferred_username": "ana"},
        settings=settings,
        kind=PrincipalKind.PERSON,
    )
    assert listed.groups == ("a", "b")
    assert listed.preferred_name == "ana"
    bot = claims_of({**BASE, "client_id": "ci-bot"}, settings=settings, kind=PrincipalKind.SERVICE)
    assert bot.preferred_name == "ci-bot"
    assert bot.groups == ()


def test_switching_local_passwords_off_ends_password_sessions(
    settings: Settings, engine: Engine
) -> None:
    with session_scope(engine) as session:
        create_person(
            session=session, actor=Actor.system(), name="pia", password="a long enough password"
        )
    with TestClient(create_app(settings, engine=engine)) as on:
        form = on.get("/login")
        token = form.text.split(f'name="{CSRF_FIELD}" value="')[1].split('"')[0]
        signed = on.post(
            "/login",
            data={"username": "pia", "password": "a long enough password", CSRF_FIELD: token},
            follow_redirects=False,
        )
        assert signed.status_code == 303
        cookies = dict(on.cookies)
        assert on.get("/", headers={"Accept": "text/html"}).status_code == 200
    off = settings.model_copy(update={"local_passwords": False})
    with TestClient(create_app(off, engine=engine), cookies=cookies) as later:
        page = later.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")


def _unreachable(settings: Settings) -> Settings:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return settings.model_copy(
        update={"oidc_issuer": f"http://127.0.0.1:{port}", "oidc_client_id": "warden"}
    )


def test_an_unreachable_provider_or_its_refusal_is_a_page_that_says_what_to_do(
    settings: Settings, engine: Engine
) -> None:
    with TestClient(create_app(_unreachable(settings), engine=engine)) as client:
        down = client.get("/login/oidc", headers={"Accept": "text/html"}, follow_redirects=False)
        assert down.status_code == 503
        assert "cannot be reached right now; try again in a minute" in down.text
        refused = client.get("/login/oidc/callback?error=access_denied&state=x")
        assert refused.status_code == 401
        assert "did not sign you in (access_denied)" in refused.text
        crafted = client.get("/login/oidc/callback?error=Your+account+is+locked,+call+555")
        assert "did not sign you in (error)" in crafted.text
        assert "call 555" not in crafted.text
        with session_scope(engine) as session:
            reasons = [
                e.reason
                for e in session.exec(select(AuditEntry).where(AuditEntry.action == "auth.failed"))
            ]
            assert session.exec(select(OidcLogin)).first() is None  # nothing left behind
    assert len(reasons) == 3
    assert "discovery document could not be read" in reasons[0]
    assert "error='access_denied'" in reasons[1]


def test_without_a_provider_configured_its_sign_in_routes_answer_404(client: TestClient) -> None:
    assert client.get("/login/oidc").status_code == 404
    assert client.get("/login/oidc/callback?code=c&state=s").status_code == 404
    assert 'id="oidc-sign-in"' not in client.get("/login").text


def test_an_address_may_start_only_so_many_sign_ins_a_minute(
    settings: Settings, engine: Engine
) -> None:
    with TestClient(create_app(_unreachable(settings), engine=engine)) as client:
        statuses = [client.get("/login/oidc").status_code for _ in range(STARTS_PER_MINUTE)]
        assert set(statuses) == {503}  # the provider is down: each start still counts
        flooded = client.get("/login/oidc")
        assert flooded.status_code == 429
        assert int(flooded.headers["Retry-After"]) > 0
        assert "too many" in flooded.text
