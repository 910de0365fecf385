"""What Warden keeps of a validated token's claims, and password sessions when passwords go off."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.oidc import claims_of
from api.settings import Settings
from api.web_session import CSRF_FIELD
from governance.actors import Actor, PrincipalKind
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
