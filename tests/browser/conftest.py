"""A live Warden (uvicorn in a thread) on a seeded store, and headless Chromium to drive it.

The store is seeded once per session (real monitor runs on Adult data take a while) and the
server runs on a free local port. Each test opens its own browser context (own cookies), so
people sign in independently. Screenshots go to ``artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Locator, Page, sync_playwright
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from lineage import create_store_engine
from tests.api.dashboard_seed import PASSWORD, Seeded, seed_dashboard
from tests.conftest import fresh_store

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@dataclass(frozen=True)
class Live:
    """The running server: its base URL, store, data directory and what was seeded."""

    url: str
    engine: Engine
    seeded: Seeded
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="package")
def live(template_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Seed a store, serve it with uvicorn in a thread, yield its URL; stop it afterwards."""
    folder = tmp_path_factory.mktemp("live")
    with fresh_store(template_store, folder) as url:
        yield from _serve(url, folder)


def _serve(url: str, folder: Path) -> Iterator[Live]:
    (folder / "data").mkdir()
    settings = Settings(
        database_url=url,
        data_dir=folder / "data",
        mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
    )
    engine = create_store_engine(url)
    seeded = seed_dashboard(engine, settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.05)
    yield Live(f"http://127.0.0.1:{port}", engine, seeded, folder / "data")
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Start the system Chromium headless with a fresh profile.

    Package-scoped: Playwright's sync API keeps an event loop running in the main thread while
    it is open, so it must close when the browser tests end (later tests call ``asyncio.run``).

    Playwright gives each launch a fresh temporary ``--user-data-dir`` itself (it refuses one
    passed in ``args``), so no state leaks between sessions.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page for one test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page: Page, live: Live, name: str, *, password: str = PASSWORD) -> None:
    """Open the dashboard, get sent to the sign-in page, and sign in using the keyboard."""
    page.goto(live.url + "/")
    assert "/login" in page.url
    page.get_by_label("Name").focus()
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    if password != PASSWORD:
        page.keyboard.press("Enter")
        page.wait_for_selector("#login-error")
        return
    with page.expect_navigation(url=lambda url: "/login" not in url):
        page.keyboard.press("Enter")


def screenshot(page: Page, name: str) -> Path:
    """Write a full-page screenshot for reviewers; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def done_notice(page: Page) -> Locator:
    """The page's notice of a completed action (``.ok-box``).

    Not any ``status`` role: the "no worker seen recently" banner has that role too, and it
    appears on every page once a worker a test ran last beat more than a minute ago.
    """
    return page.locator('.ok-box[role="status"]')
