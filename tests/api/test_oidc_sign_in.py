"""Sign-in with a real OpenID provider (panva's oidc-provider on 127.0.0.1) over HTTP.

The provider is the npm package itself (tests/oidc_provider/provider.js): Warden discovers it,
sends the browser there, redeems the code with PKCE and validates its ID tokens against its
JWKS. The browser journey in Chromium is in ``tests/browser/test_oidc.py``; token refusals on
real tokens are in ``tests/governance/test_openid_provider.py`` and, over REST, here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.app import create_app
from api.settings import Settings
from api.web_session import CSRF_FIELD, SESSION_COOKIE
from governance.actors import Actor
from governance.approvals import ApprovalAction, request_approval
from governance.audit import AuditEntry
from governance.federation import ExternalIdentity, GroupMapping
from governance.identity import Principal, bootstrap_admin
from governance.roles import Role, RoleGrant
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.projects import Project
from lineage.store import session_scope
from tests.conftest import Issued, bearer
from tests.identity_provider import (
    API_AUDIENCE,
    BOT_CLIENT,
    SHORT_CLIENT,
    WEB_CLIENT,
    WEB_SECRET,
    Provider,
    log_in_at_provider,
    provider_redirect,
    run_provider,
    sign_in_through_provider,
)

HTML = {"Accept": "text/html"}
pytestmark = pytest.mark.slow  # a Node.js provider per test (about a second each)


@pytest.fixture
def idp() -> Iterator[Provider]:
    """A real OpenID provider with two people who share a display name, and Warden registered."""
    accounts = {
        "alice-sub": {
            "preferred_username": "alice",
            "name": "Alice Smith",
            "email": "alice@example.org",
            "groups": ["ml-approvers"],
        },
        "sam-1": {"preferred_username": "sam", "name": "Sam Lee", "groups": ["ml-approvers"]},
        "sam-2": {"preferred_username": "sam", "name": "Sam Lee", "groups": ["ml-approvers"]},
    }
    with run_provider(
        redirect_uris=["http://testserver/login/oidc/callback"], accounts=accounts
    ) as provider:
        yield provider


@pytest.fixture
def oidc_settings(settings: Settings, idp: Provider, admin_client: TestClient) -> Settings:
    """Settings pointing at the provider, with the client secret sealed through the API."""
    sealed = admin_client.post("/api/v1/sealed-secrets", json={"secret": WEB_SECRET})
    assert sealed.status_code == 201, sealed.text
    value = sealed.json()["sealed"]
    assert value.startswith("sealed:")
    assert WEB_SECRET not in value
    return settings.model_copy(
        update={
            "oidc_issuer": idp.issuer,
            "oidc_client_id": WEB_CLIENT,
            "oidc_client_secret": SecretStr(value),
            "oidc_api_audience": API_AUDIENCE,
            "oidc_scopes": ["openid", "profile", "email", "groups"],
            "oidc_leeway_seconds": 0,
            "oidc_jwks_refresh_seconds": 0.0,
        }
    )


@pytest.fixture
def admin(make_principal: Callable[..., Issued]) -> Issued:
    """A global administrator with an API key."""
    return make_principal(admin=True, name="root")


@pytest.fixture
def admin_client(settings: Settings, engine: Engine, admin: Issued) -> Iterator[TestClient]:
    """A client on an app without OpenID Connect, authenticated as the administrator."""
    with TestClient(create_app(settings, engine=engine), headers=admin.headers) as client:
        yield client


@pytest.fixture
def new_client(oidc_settings: Settings, engine: Engine) -> Iterator[Callable[[], TestClient]]:
    """Return a factory of clients (own cookies each) on an app signing in through the provider."""
    app = create_app(oidc_settings, engine=engine)
    opened: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def _audit(engine: Engine, action: str) -> list[AuditEntry]:
    with session_scope(engine) as session:
        found = list(
            session.exec(
                select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.seq))
            ).all()
        )
        session.expunge_all()
        return found


def _principal(engine: Engine, subject: str) -> Principal:
    with session_scope(engine) as session:
        link = session.exec(
            select(ExternalIdentity).where(ExternalIdentity.subject == subject)
        ).one()
        principal = session.get(Principal, link.principal_id)
        assert principal is not None
        session.expunge(principal)
        return principal


def _map(admin_client: TestClient, group: str, **body: object) -> dict[str, object]:
    response = admin_client.post("/api/v1/group-mappings", json={"group": group, **body})
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def _token(html: str) -> str:
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]*)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def _request_promotion(engine: Engine, requester: Principal, *, version: str = "1") -> uuid.UUID:
    """Have ``requester`` ask for approval to promote a new model version in ``acme``."""
    with session_scope(engine) as session:
        project = session.exec(select(Project).where(Project.name == "acme")).one()
        registered = register_model_version(
            session=session,
            project_id=project.id,
            name="income",
            spec=ModelVersionCreate(
                artifact_uri=f"models:/income/{version}", artifact_sha256=version * 64
            ),
        )
        approval = request_approval(
            session=session,
            actor=Actor(
                principal_id=requester.id,
                name=requester.name,
                kind=requester.kind,
                project_id=project.id,
            ),
            action=ApprovalAction.PROMOTE,
            target_kind="model_version",
            target_id=str(registered.id),
            reason="better on the recent window",
        )
        return approval.id


def _decide(client: TestClient, approval_id: uuid.UUID) -> int:
    inbox = client.get("/p/acme/approvals", headers=HTML)
    token = _token(inbox.text) if inbox.status_code == 200 else ""
    response = client.post(
        f"/p/acme/approvals/{approval_id}",
        data={"decision": "approve", "reason": "reviewed", CSRF_FIELD: token},
        follow_redirects=False,
    )
    return response.status_code


# --- dashboard sign-in ----------------------------------------------------------------------


def test_a_person_signs_in_through_the_provider_and_is_created_just_in_time(
    new_client: Callable[[], TestClient], engine: Engine, idp: Provider, admin_client: TestClient
) -> None:
    client = new_client()
    start = client.get("/login/oidc?next=/p/acme", follow_redirects=False)
    query = dict(parse_qsl(urlsplit(start.headers["location"]).query))
    assert start.headers["location"].startswith(f"{idp.issuer}/auth?")
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert query["client_id"] == WEB_CLIENT
    assert query["state"]
    assert query["nonce"]
    assert "code_verifier" not in query
    assert "warden_oidc_flow=" in start.headers["set-cookie"]
    assert "Max-Age=600" in start.headers["set-cookie"]  # ten minutes to finish at the provider
    landed = client.get(
        log_in_at_provider(start.headers["location"], "alice-sub").replace("http://testserver", ""),
        follow_redirects=False,
    )
    assert landed.status_code == 303
    assert landed.headers["location"] == "/p/acme"
    assert SESSION_COOKIE in client.cookies
    assert "Max-Age=3600" in landed.headers["set-cookie"]  # WARDEN_OIDC_SESSION_SECONDS
    home = client.get("/", headers=HTML)
    assert home.status_code == 200
    assert "alice" in home.text
    alice = _principal(engine, "alice-sub")
    assert (alice.name, alice.kind, alice.password_hash, alice.is_admin) == (
        "alice",
        "person",
        None,
        False,
    )
    listed = {p["name"]: p for p in admin_client.get("/api/v1/principals").json()}
    assert listed["alice"]["federated"] is True
    assert listed["alice"]["can_sign_in"] is True
    assert listed["root"]["federated"] is False
    (created,) = [
        e
        for e in _audit(engine, "principal.create")
        if e.detail_object()["after"]["name"] == "alice"
    ]
    assert created.actor_name == "warden"
    (signin,) = _audit(engine, "auth.signin")
    assert signin.actor_name == "alice"
    assert idp.issuer in signin.reason
    assert "alice-sub" in signin.reason


def test_the_login_page_offers_the_provider_and_passwords_can_be_switched_off(
    oidc_settings: Settings, engine: Engine, admin_client: TestClient
) -> None:
    with TestClient(create_app(oidc_settings, engine=engine)) as both:
        page = both.get("/login")
        assert 'id="oidc-sign-in"' in page.text
        assert 'name="password"' in page.text
    no_passwords = oidc_settings.model_copy(update={"local_passwords": False})
    app = create_app(no_passwords, engine=engine)
    with TestClient(app) as client:
        page = client.get("/login")
        assert 'id="oidc-sign-in"' in page.text
        assert 'name="password"' not in page.text
        client.cookies.set("warden_login_csrf", "t", path="/login")
        posted = client.post(
            "/login", data={"username": "root", "password": "x" * 20, "csrf_token": "t"}
        )
        assert posted.status_code == 403
        assert "Passwords are switched off" in posted.text
        assert _audit(engine, "auth.failed") == []
    with TestClient(app, headers=dict(admin_client.headers)) as api:
        refused = api.post(
            "/api/v1/principals", json={"name": "pat", "password": "a long enough password"}
        )
        assert refused.status_code == 422
        assert refused.json()["field"] == "password"
        assert api.post("/api/v1/principals", json={"name": "pat"}).status_code == 201


def test_bootstrap_works_on_an_empty_store_with_passwords_off(
    settings: Settings, engine: Engine
) -> None:
    with session_scope(engine) as session:
        issued = bootstrap_admin(session=session, name="first")
    no_passwords = settings.model_copy(update={"local_passwords": False})
    with TestClient(create_app(no_passwords, engine=engine)) as client:
        me = client.get("/api/v1/principals/me", headers=bearer(issued.secret))
        assert me.status_code == 200
        assert me.json()["principal"]["is_admin"] is True


def test_groups_map_to_roles_and_leaving_the_approver_group_ends_approving(
    new_client: Callable[[], TestClient],
    engine: Engine,
    idp: Provider,
    admin_client: TestClient,
    make_principal: Callable[..., Issued],
) -> None:
    requester = make_principal(role=Role.DATA_SCIENTIST, name="dana").principal
    _map(admin_client, "ml-approvers", project="acme", role="approver")
    first = _request_promotion(engine, requester)
    client = new_client()
    sign_in_through_provider(client, "alice-sub")
    alice = _principal(engine, "alice-sub")
    with session_scope(engine) as session:
        grants = session.exec(select(RoleGrant).where(RoleGrant.principal_id == alice.id)).all()
        assert [(g.role, g.source) for g in grants] == [("approver", "group")]
    assert _decide(client, first) == 303
    # Alice leaves the approver group at the provider; Warden is not touched.
    idp.set_account("alice-sub", preferred_username="alice", name="Alice Smith", groups=["staff"])
    second = _request_promotion(engine, requester, version="2")
    later = new_client()
    sign_in_through_provider(later, "alice-sub")
    assert _principal(engine, "alice-sub").id == alice.id
    assert _decide(later, second) in (403, 404)
    assert _decide(client, second) in (403, 404)  # her earlier session lost the role too
    revoked = [e for e in _audit(engine, "role.revoke") if e.target == f"principal:{alice.id}"]
    assert len(revoked) == 1
    assert revoked[0].actor_name == "warden"
    assert "no longer in a group" in revoked[0].reason


def test_separation_of_duties_follows_the_subject_not_the_display_name(
    new_client: Callable[[], TestClient],
    engine: Engine,
    admin_client: TestClient,
    make_project: Callable[[str], Project],
) -> None:
    make_project("acme")
    _map(admin_client, "ml-approvers", project="acme", role="approver")
    _map(admin_client, "ml-approvers", project="acme", role="data_scientist")
    first, second = new_client(), new_client()
    sign_in_through_provider(first, "sam-1")
    sign_in_through_provider(second, "sam-2")
    sam1, sam2 = _principal(engine, "sam-1"), _principal(engine, "sam-2")
    assert sam1.id != sam2.id
    assert {sam1.name, sam2.name} == {"sam", "sam-2"}
    approval = _request_promotion(engine, sam1)
    assert _decide(first, approval) == 403  # the requester, whatever they are called
    assert _decide(second, approval) == 303  # the other Sam Lee is another person


def test_a_replayed_or_foreign_state_is_refused_and_audited(
    new_client: Callable[[], TestClient], engine: Engine
) -> None:
    client = new_client()
    callback = log_in_at_provider(provider_redirect(client), "alice-sub").replace(
        "http://testserver", ""
    )
    assert client.get(callback, follow_redirects=False).status_code == 303
    replayed = client.get(callback, follow_redirects=False)
    assert replayed.status_code == 401
    assert "already used, has expired" in replayed.text
    assert "reference" in replayed.text
    # A callback carried to another browser (login CSRF) is refused: no binder cookie there.
    other = new_client()
    stolen = log_in_at_provider(provider_redirect(client), "alice-sub").replace(
        "http://testserver", ""
    )
    assert other.get(stolen, follow_redirects=False).status_code == 401
    assert SESSION_COOKIE not in other.cookies
    reasons = [e.reason for e in _audit(engine, "auth.failed")]
    assert len(reasons) == 2
    assert all("state" in r for r in reasons)


def test_an_id_token_without_a_nonce_is_refused(
    new_client: Callable[[], TestClient], engine: Engine
) -> None:
    client = new_client()
    authorize = urlsplit(provider_redirect(client))
    query = [(k, v) for k, v in parse_qsl(authorize.query) if k != "nonce"]
    stripped = urlunsplit(authorize._replace(query=urlencode(query)))
    callback = log_in_at_provider(stripped, "alice-sub").replace("http://testserver", "")
    refused = client.get(callback, follow_redirects=False)
    assert refused.status_code == 401
    assert SESSION_COOKIE not in client.cookies
    assert "start again" in refused.text
    assert "reference" in refused.text
    (entry,) = _audit(engine, "auth.failed")
    assert "carries no nonce" in entry.reason
    with session_scope(engine) as session:
        assert session.exec(select(ExternalIdentity)).first() is None  # nothing left behind


def test_a_callback_without_or_with_another_issuer_is_refused(
    new_client: Callable[[], TestClient], engine: Engine, idp: Provider
) -> None:
    """RFC 9207: the test provider advertises ``iss`` in every authorization response."""
    refused = []
    for change in ("drop", "foreign"):
        client = new_client()
        callback = urlsplit(log_in_at_provider(provider_redirect(client), "alice-sub"))
        query = dict(parse_qsl(callback.query))
        assert query["iss"] == idp.issuer
        if change == "drop":
            del query["iss"]
        else:
            query["iss"] = "http://127.0.0.1:1/evil"
        tampered = client.get(f"{callback.path}?{urlencode(query)}", follow_redirects=False)
        refused.append(tampered.status_code)
        assert SESSION_COOKIE not in client.cookies
    assert refused == [401, 401]
    reasons = [e.reason for e in _audit(engine, "auth.failed")]
    assert any("names no issuer" in r for r in reasons)
    assert any("evil" in r for r in reasons)
    with session_scope(engine) as session:
        assert session.exec(select(ExternalIdentity)).first() is None


# --- access tokens on the REST API ----------------------------------------------------------


def test_a_client_credentials_token_acts_as_a_service_account_with_its_groups_roles(
    new_client: Callable[[], TestClient],
    engine: Engine,
    idp: Provider,
    admin_client: TestClient,
    make_principal: Callable[..., Issued],
) -> None:
    keyed = make_principal(role=Role.VIEWER, name="keyed")
    _map(admin_client, "ml-bots", project="acme", role="data_scientist")
    client = new_client()
    token = idp.client_token()
    me = client.get("/api/v1/principals/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["principal"]["kind"] == "service"
    assert me.json()["principal"]["federated"] is True
    assert me.json()["principal"]["can_sign_in"] is False
    assert me.json()["roles"] == [{"project": "acme", "role": "data_scientist"}]
    assert client.get("/api/v1/projects/acme/monitors", headers=bearer(token)).status_code == 200
    assert client.get("/api/v1/principals/me", headers=keyed.headers).status_code == 200
    # The same client again is the same service account (found by issuer and subject).
    again = client.get("/api/v1/principals/me", headers=bearer(idp.client_token()))
    assert again.json()["principal"]["id"] == me.json()["principal"]["id"]
    # Out of the group at the provider: the next token no longer opens the project.
    idp.set_client_groups(BOT_CLIENT, [])
    gone = client.get("/api/v1/projects/acme/monitors", headers=bearer(idp.client_token()))
    assert gone.status_code == 404
    # A service account is never a global administrator, whatever its groups.
    _map(admin_client, "ml-bots", admin=True)
    idp.set_client_groups(BOT_CLIENT, ["ml-bots"])
    bot = client.get("/api/v1/principals/me", headers=bearer(idp.client_token()))
    assert bot.json()["principal"]["is_admin"] is False


def test_keys_rotated_at_the_provider_are_fetched_without_a_restart(
    new_client: Callable[[], TestClient], idp: Provider
) -> None:
    client = new_client()
    before = idp.client_token()
    assert client.get("/api/v1/principals/me", headers=bearer(before)).status_code == 200
    old_kid = jwt.get_unverified_header(before)["kid"]
    new_kid, kept = idp.rotate_keys()
    assert kept == old_kid
    after = idp.client_token()
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert client.get("/api/v1/principals/me", headers=bearer(after)).status_code == 200
    assert client.get("/api/v1/principals/me", headers=bearer(before)).status_code == 200


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_bad_access_tokens_are_refused_helpfully_and_audited_with_the_reason(
    new_client: Callable[[], TestClient], engine: Engine, idp: Provider
) -> None:
    client = new_client()
    good = idp.client_token()
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    public = httpx.get(f"{idp.issuer}/jwks").json()["keys"][0]
    pem = jwt.PyJWK(public).key.public_bytes(
        encoding=Encoding.PEM, format=PublicFormat.SubjectPublicKeyInfo
    )
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    cases = {
        "wrong audience": idp.client_token(resource="urn:another-api"),
        "bad signature": f"{header}.{payload}.{flipped}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "HS256 with the public key": _hs256(claims, pem),
    }
    for name, token in cases.items():
        response = client.get("/api/v1/principals/me", headers=bearer(token))
        assert response.status_code == 401, name
        detail = response.json()["detail"]
        assert "not accepted" in detail, name
        assert "audit log" in detail, name
    time_token = idp.client_token(SHORT_CLIENT)
    time.sleep(2.1)
    expired = client.get("/api/v1/principals/me", headers=bearer(time_token))
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    reasons = [e.reason for e in _audit(engine, "auth.failed")]
    assert len(reasons) == 5
    assert "audience" in reasons[0].lower()
    assert "Signature verification failed" in reasons[1]
    assert "'none' is not accepted" in reasons[2]
    assert "'HS256' is not accepted" in reasons[3]
    assert "expired" in reasons[4]
    assert all(good not in r for r in reasons)


def _hs256(claims: dict[str, object], secret: bytes) -> str:
    head = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64(claims)
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


# --- group mappings over the API ------------------------------------------------------------


def test_group_mappings_are_managed_by_administrators_and_audited(
    admin_client: TestClient,
    engine: Engine,
    make_project: Callable[[str], Project],
    make_principal: Callable[..., Issued],
) -> None:
    make_project("acme")
    created = _map(admin_client, "cn=ml-approvers,ou=groups", project="acme", role="approver")
    admin_mapping = _map(admin_client, "warden-admins", admin=True)
    listed = admin_client.get("/api/v1/group-mappings").json()
    assert {(m["group"], m["project"], m["role"], m["admin"]) for m in listed} == {
        ("cn=ml-approvers,ou=groups", "acme", "approver", False),
        ("warden-admins", None, None, True),
    }
    for body, field in (
        ({"group": "x", "admin": True, "project": "acme"}, "admin"),
        ({"group": "x", "project": "acme"}, "role"),
        ({"group": "x", "project": "acme", "role": "king"}, "role"),
        ({"group": " ", "project": "acme", "role": "viewer"}, "group"),
    ):
        bad = admin_client.post("/api/v1/group-mappings", json=body)
        assert bad.status_code == 422, bad.text
        assert field in (bad.json().get("field") or ""), bad.text
    duplicate = admin_client.post(
        "/api/v1/group-mappings", json={"group": "warden-admins", "admin": True}
    )
    assert duplicate.status_code == 409
    unknown = admin_client.post(
        "/api/v1/group-mappings", json={"group": "x", "project": "nope", "role": "viewer"}
    )
    assert unknown.status_code == 404
    viewer = make_principal(role=Role.ADMIN, name="project-admin")
    refused = admin_client.post(
        "/api/v1/group-mappings",
        json={"group": "mine", "project": "acme", "role": "approver"},
        headers=viewer.headers,
    )
    assert refused.status_code == 403
    assert admin_client.delete(f"/api/v1/group-mappings/{created['id']}").status_code == 204
    assert admin_client.delete(f"/api/v1/group-mappings/{created['id']}").status_code == 404
    with session_scope(engine) as session:
        assert [m.group_name for m in session.exec(select(GroupMapping)).all()] == ["warden-admins"]
    assert [e.target for e in _audit(engine, "group_mapping.create")] == [
        f"group_mapping:{created['id']}",
        f"group_mapping:{admin_mapping['id']}",
    ]
    (deleted,) = _audit(engine, "group_mapping.delete")
    assert deleted.detail_object()["before"]["group"] == "cn=ml-approvers,ou=groups"


def test_an_administrator_group_makes_a_person_global_admin_until_they_leave_it(
    new_client: Callable[[], TestClient], engine: Engine, idp: Provider, admin_client: TestClient
) -> None:
    _map(admin_client, "warden-admins", admin=True)
    idp.set_account("alice-sub", preferred_username="alice", groups=["warden-admins"])
    sign_in_through_provider(new_client(), "alice-sub")
    assert _principal(engine, "alice-sub").is_admin is True
    idp.set_account("alice-sub", preferred_username="alice", groups=[])
    sign_in_through_provider(new_client(), "alice-sub")
    assert _principal(engine, "alice-sub").is_admin is False
    changes = [e.detail_object()["after"]["is_admin"] for e in _audit(engine, "principal.admin")]
    assert changes == [True, False]


def test_the_client_secret_is_sealed_and_never_in_the_audit_log(
    oidc_settings: Settings, engine: Engine
) -> None:
    secret = oidc_settings.oidc_client_secret
    assert secret is not None
    assert secret.get_secret_value().startswith("sealed:")
    assert WEB_SECRET not in repr(oidc_settings)
    (entry,) = _audit(engine, "secret.seal")
    assert WEB_SECRET not in entry.detail + entry.reason
