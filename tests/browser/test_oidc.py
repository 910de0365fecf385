"""Signing in with the organisation's identity provider, in real headless Chromium.

A real OpenID provider (panva's oidc-provider, tests/oidc_provider/) and a live Warden run on
127.0.0.1. A person signs in through the provider's page, lands on the dashboard with the roles
their groups give, approves a promotion; moved out of the approver group at the provider, they
sign in again and are offered no decision any more. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.app import create_app
from api.settings import Settings
from governance.actors import Actor
from governance.approvals import ApprovalAction, ApprovalRequest, request_approval
from governance.audit import AuditEntry
from governance.federation import create_group_mapping
from governance.identity import actor_for, create_person
from governance.roles import Role, grant_role
from lineage import create_store_engine
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.projects import create_project
from lineage.store import session_scope
from tests.browser.conftest import screenshot
from tests.conftest import fresh_store
from tests.identity_provider import WEB_CLIENT, WEB_SECRET, Provider, run_provider

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GROUPS = ["openid", "profile", "email", "groups"]


@dataclass(frozen=True)
class OidcLive:
    """A live Warden that signs people in through a live provider."""

    url: str
    engine: Engine
    idp: Provider
    approvals: list[uuid.UUID]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _seed(engine: Engine) -> list[uuid.UUID]:
    """Project acme: approvers come from group ml-approvers; dana asked for two promotions."""
    system = Actor.system()
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        dana = create_person(session=session, actor=system, name="dana")
        grant_role(
            session=session,
            actor=system,
            project_id=project.id,
            principal_id=dana.id,
            role=Role.DATA_SCIENTIST,
        )
        create_group_mapping(
            session=session,
            actor=system,
            group="ml-approvers",
            project_id=project.id,
            role=Role.APPROVER,
        )
        approvals = []
        for number in ("1", "2"):
            version = register_model_version(
                session=session,
                project_id=project.id,
                name="income",
                spec=ModelVersionCreate(
                    artifact_uri=f"models:/income/{number}", artifact_sha256=number * 64
                ),
            )
            approvals.append(
                request_approval(
                    session=session,
                    actor=actor_for(dana, project_id=project.id),
                    action=ApprovalAction.PROMOTE,
                    target_kind="model_version",
                    target_id=str(version.id),
                    reason=f"candidate {number}",
                ).id
            )
        return approvals


@pytest.fixture(scope="module")
def oidc_live(template_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcLive]:
    """Start the provider and a Warden configured for it, on a store seeded for the journey."""
    folder = tmp_path_factory.mktemp("oidc-live")
    with fresh_store(template_store, folder) as url:
        yield from _serve(url, folder)


def _serve(url: str, folder: Path) -> Iterator[OidcLive]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    accounts = {
        "alice-sub": {"preferred_username": "alice", "name": "Alice", "groups": ["ml-approvers"]}
    }
    with run_provider(redirect_uris=[f"{base}/login/oidc/callback"], accounts=accounts) as idp:
        settings = Settings(
            database_url=url,
            data_dir=Path(folder / "data"),
            mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
            oidc_issuer=idp.issuer,
            oidc_client_id=WEB_CLIENT,
            oidc_client_secret=SecretStr(WEB_SECRET),
            oidc_scopes=GROUPS,
            oidc_display_name="Example Corp",
            local_passwords=False,
        )
        engine = create_store_engine(url)
        approvals = _seed(engine)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, engine=engine),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start in 30 s"
            time.sleep(0.05)
        yield OidcLive(base, engine, idp, approvals)
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def _sign_in(page: Page, live: OidcLive, account: str) -> None:
    page.goto(live.url + "/p/acme/approvals")
    assert "/login" in page.url
    expect(page.get_by_label("Password")).to_have_count(0)  # local passwords are off
    page.get_by_role("link", name="Sign in with Example Corp").click()
    page.wait_for_url(re.compile(rf"^{re.escape(live.idp.issuer)}/interaction/"))
    page.get_by_label("User name").fill(account)
    with page.expect_navigation(url=re.compile(rf"^{re.escape(live.url)}/p/acme/approvals")):
        page.get_by_role("button", name="Continue").click()


def _status(engine: Engine, approval_id: uuid.UUID) -> str:
    with session_scope(engine) as session:
        request = session.get(ApprovalRequest, approval_id)
        assert request is not None
        return str(request.status)


def test_sign_in_with_the_provider_approve_then_lose_the_role_with_the_group(
    browser: Browser, oidc_live: OidcLive
) -> None:
    first, second = oidc_live.approvals
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(oidc_live.url + "/login")
    screenshot(page, "oidc-01-sign-in")
    _sign_in(page, oidc_live, "alice-sub")
    card = page.locator(f"#a-{first}")
    card.get_by_label(re.compile("Reason")).fill("evaluation reviewed")
    card.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Your decision was recorded: approved.")).to_be_visible()
    screenshot(page, "oidc-02-approved")
    assert _status(oidc_live.engine, first) == "approved"
    context.close()

    oidc_live.idp.set_account(
        "alice-sub", preferred_username="alice", name="Alice", groups=["staff"]
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(oidc_live.url + "/p/acme/approvals")
    page.get_by_role("link", name="Sign in with Example Corp").click()
    page.get_by_label("User name").fill("alice-sub")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(rf"^{re.escape(oidc_live.url)}/"))
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    screenshot(page, "oidc-03-no-longer-approver")
    assert _status(oidc_live.engine, second) == "pending"
    context.close()
    with session_scope(oidc_live.engine) as session:
        actions = [
            e.action
            for e in session.exec(select(AuditEntry).where(AuditEntry.actor_name == "alice"))
        ]
    assert actions.count("auth.signin") == 2
    assert "approval.approve" in actions
