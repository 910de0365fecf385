"""A real OpenID provider for tests: panva's ``oidc-provider`` (OpenID Certified) under Node.js.

:func:`run_provider` starts ``tests/oidc_provider/provider.js`` on a free 127.0.0.1 port (running
``npm ci`` first when ``node_modules`` is missing; ``.ci/run`` installs it up front) and yields a
:class:`Provider` with the test controls: change a person's groups, a client's groups, rotate the
signing key. :func:`sign_in_through_provider` walks the authorization-code flow with httpx the
way a browser would (the browser tests do it in Chromium). Nothing here fakes the provider: its
discovery, JWKS, authorization and token endpoints are the package's own.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from fastapi.testclient import TestClient

FOLDER = Path(__file__).resolve().parent / "oidc_provider"
API_AUDIENCE = "https://warden.test/api"
WEB_CLIENT = "warden-web"
WEB_SECRET = "warden-web-secret-0123456789abcdef"
OTHER_CLIENT = "other-app"
BOT_CLIENT = "ci-bot"
SHORT_CLIENT = "short-lived-bot"
BOT_SECRET = "ci-bot-secret-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def ensure_installed() -> None:
    """Install the provider's npm packages from the lock file when they are missing.

    Parallel test workers (pytest-xdist) may get here at once: an exclusive lock on the lock
    file lets one run ``npm ci`` (which wipes ``node_modules`` first); the others wait for it.
    """
    with (FOLDER / "package-lock.json").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (FOLDER / "node_modules" / "oidc-provider").exists():
            npm = shutil.which("npm")
            assert npm, "npm is missing: install Node.js 20+ (the identity-provider tests need it)"
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=FOLDER, check=True, capture_output=True
            )


@dataclass
class Provider:
    """A running provider: its issuer URL and the test controls."""

    issuer: str
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _control(self, path: str, body: Any = None) -> Any:
        response = httpx.post(f"{self.issuer}/__control/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def set_account(self, account: str, **claims: Any) -> None:
        """Replace a person's claims (their groups, name, e-mail) at the provider."""
        self.accounts[account] = claims
        self._control(f"accounts/{account}", claims)

    def set_client_groups(self, client_id: str, groups: list[str]) -> None:
        """Set the groups the provider puts in ``client_id``'s access tokens."""
        self._control(f"clients/{client_id}/groups", groups)

    def rotate_keys(self) -> list[str]:
        """Make a new signing key current (the old one stays published); return the kids."""
        kids: list[str] = self._control("rotate")["kids"]
        return kids

    def client_token(
        self,
        client_id: str = BOT_CLIENT,
        *,
        secret: str = BOT_SECRET,
        resource: str = API_AUDIENCE,
    ) -> str:
        """Return an access token (JWT) from the client-credentials grant."""
        response = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "resource": resource, "scope": "warden:api"},
            auth=(client_id, secret),
            timeout=10,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


@contextmanager
def run_provider(
    *, redirect_uris: list[str], accounts: dict[str, dict[str, Any]] | None = None
) -> Iterator[Provider]:
    """Start the provider on a free port with Warden's clients registered; stop it afterwards."""
    ensure_installed()
    node = shutil.which("node")
    assert node, "node is missing: install Node.js 20+"
    port = _free_port()
    accounts = accounts or {}
    web = {
        "client_secret": WEB_SECRET,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    }
    bot = {"grant_types": ["client_credentials"], "response_types": [], "redirect_uris": []}
    config = {
        "clients": [
            {"client_id": WEB_CLIENT, **web},
            {"client_id": OTHER_CLIENT, **web},
            {"client_id": BOT_CLIENT, "client_secret": BOT_SECRET, **bot},
            {"client_id": SHORT_CLIENT, "client_secret": BOT_SECRET, **bot},
        ],
        "accounts": accounts,
        "clientGroups": {BOT_CLIENT: ["ml-bots"]},
        "clientTokenTTL": {SHORT_CLIENT: 1},
    }
    env = {**os.environ, "PORT": str(port), "OIDC_TEST_CONFIG": json.dumps(config)}
    process = subprocess.Popen(
        [node, "provider.js"],
        cwd=FOLDER,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the OpenID provider exited at start-up"
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the OpenID provider did not start in 30 s"
            time.sleep(0.1)
        yield Provider(issuer=issuer, accounts=dict(accounts))
    finally:
        process.terminate()
        process.wait(timeout=10)


def provider_redirect(client: TestClient, path: str = "/login/oidc") -> str:
    """Start a sign-in at Warden; return the provider URL Warden sent the browser to."""
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303, response.text
    location: str = response.headers["location"]
    return location


def log_in_at_provider(authorize_url: str, account: str) -> str:
    """Sign ``account`` in at the provider's page; return Warden's callback URL it sends back."""
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        url = authorize_url
        for _ in range(10):
            response = browser.get(url)
            if response.status_code in (302, 303):
                url = urljoin(url, response.headers["location"])
                if "/login/oidc/callback" in url:
                    return url
                continue
            assert response.status_code == 200, response.text
            form_action = urljoin(url, f"{httpx.URL(url).path}/login")
            posted = browser.post(form_action, data={"login": account})
            assert posted.status_code == 303, posted.text
            url = urljoin(url, posted.headers["location"])
        raise AssertionError("the provider never sent the browser back to Warden")


def sign_in_through_provider(client: TestClient, account: str, *, next_url: str = "/") -> str:
    """Sign ``account`` in to Warden through the provider; return where Warden sent them."""
    callback = log_in_at_provider(
        provider_redirect(client, f"/login/oidc?next={next_url}"), account
    )
    finished = client.get(callback.replace("http://testserver", ""), follow_redirects=False)
    assert finished.status_code == 303, finished.text
    location: str = finished.headers["location"]
    return location
