"""Dashboard sessions attacked as an insider would: forged, replayed, probed and flooded.

Each test performs the attack over HTTP against the real app on a real store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.app import create_app
from api.settings import Settings
from api.web_session import CSRF_FIELD, SESSION_COOKIE, SessionCodec, nonce_digest
from governance.actors import Actor
from governance.audit import AuditEntry
from governance.identity import (
    AuthFailure,
    DashboardSession,
    Principal,
    bootstrap_admin,
    create_person,
    get_principal_by_name,
    issue_api_key,
    open_dashboard_session,
)
from governance.roles import Role, grant_role
from lineage.errors import Unauthenticated
from lineage.projects import create_project
from lineage.store import session_scope
from lineage.tables import utcnow
from tests.conftest import bearer

PASSWORD = "a long enough password"
HTML = {"Accept": "text/html"}


@pytest.fixture
def app_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """An app whose project ``acme`` has vic (viewer, with a password and an API key)."""
    system = Actor.system()
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        vic = create_person(session=session, actor=system, name="vic", password=PASSWORD)
        grant_role(
            session=session,
            actor=system,
            project_id=project.id,
            principal_id=vic.id,
            role=Role.VIEWER,
        )
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
        yield client


def _token(html: str) -> str:
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


def _sign_in(client: TestClient, name: str, password: str = PASSWORD) -> int:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"username": name, "password": password, CSRF_FIELD: _token(form.text)},
        follow_redirects=False,
    )
    return response.status_code


def _audit(engine: Engine, action: str) -> list[AuditEntry]:
    with session_scope(engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.seq))
        return list(session.exec(query).all())


def test_a_forged_cookie_for_the_password_less_bootstrap_admin_is_refused(
    app_client: TestClient, settings: Settings, engine: Engine
) -> None:
    with session_scope(engine) as session:
        admin = bootstrap_admin(session=session, name="root").key.principal_id
    # The attacker read the signing key (as a pipeline step once could) and the store.
    codec = SessionCodec.load_or_create(settings.data_dir / "keys" / "dashboard-session.key")
    with session_scope(engine) as session:
        principal = session.get(Principal, admin)
        assert principal is not None
        assert principal.password_hash is None
        value, forged = codec.issue(principal)
        assert forged.fingerprint == hashlib.sha256(b"").hexdigest()[:16]
        with pytest.raises(Unauthenticated, match="cannot sign in"):
            open_dashboard_session(
                session=session,
                principal=principal,
                nonce_digest=nonce_digest(forged.nonce),
                expires_at=utcnow() + timedelta(hours=1),
            )
        # Even a session row written straight into the database does not make it valid.
        session.add(
            DashboardSession(
                principal_id=admin,
                nonce_digest=nonce_digest(forged.nonce),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    app_client.cookies.set(SESSION_COOKIE, value)
    assert app_client.get("/p/acme").status_code == 401
    assert app_client.get("/").status_code == 401
    assert "account changed" in _audit(engine, "auth.failed")[-1].reason


def test_a_cookie_replayed_after_sign_out_is_refused(app_client: TestClient) -> None:
    assert _sign_in(app_client, "vic") == 303
    page = app_client.get("/p/acme", headers=HTML)
    assert page.status_code == 200
    stolen = app_client.cookies[SESSION_COOKIE]
    out = app_client.post("/logout", data={CSRF_FIELD: _token(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    app_client.cookies.clear()
    app_client.cookies.set(SESSION_COOKIE, stolen)
    replayed = app_client.get("/p/acme")
    assert replayed.status_code == 401
    assert "signed out" in replayed.json()["detail"]
    # Signing in again opens a new session; the old cookie stays dead.
    assert _sign_in(app_client, "vic") == 303
    assert app_client.get("/p/acme").status_code == 200
    app_client.cookies.clear()
    app_client.cookies.set(SESSION_COOKIE, stolen)
    assert app_client.get("/p/acme").status_code == 401


def test_a_password_typed_into_the_name_field_is_not_kept_in_the_audit_log(
    app_client: TestClient, engine: Engine
) -> None:
    secret = "hunter2-correct-horse"
    assert _sign_in(app_client, secret, "whatever") == 401
    assert _sign_in(app_client, "vic", "wrong password!") == 401
    unknown, known = _audit(engine, "auth.failed")
    assert secret not in unknown.reason
    assert secret not in str(unknown.detail)
    assert "an unknown name (h:" in unknown.reason
    assert "'vic'" in known.reason
    # The same unknown name maps to the same digest, so repeated probing can still be seen.
    assert _sign_in(app_client, secret, "again") == 401
    assert _audit(engine, "auth.failed")[-1].reason == unknown.reason
    with session_scope(engine) as session:
        assert all(secret not in row.source for row in session.exec(select(AuthFailure)).all())


def test_failed_sign_ins_throttle_that_name_not_everyone_behind_the_address(
    app_client: TestClient, settings: Settings, engine: Engine
) -> None:
    with session_scope(engine) as session:
        key = issue_api_key(
            session=session,
            actor=Actor.system(),
            principal_id=get_principal_by_name(session=session, name="vic").id,
        ).secret
    for _ in range(settings.auth_max_failures):
        assert _sign_in(app_client, "dana", "guess") == 401
    assert _sign_in(app_client, "dana", "guess") == 429
    # Same address: another person signs in, and an API key keeps working.
    assert _sign_in(app_client, "vic") == 303
    assert app_client.get("/api/v1/projects", headers=bearer(key)).status_code == 200
