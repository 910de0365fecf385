"""The prompt, LLM deployment and dataset pages in real headless Chromium.

Prompt ``triage`` (:mod:`tests.api.prompt_seed`) went live through real promotions, with its
versions in the live server's own MLflow prompt registry; no LLM endpoint is called. Writes
the screenshots the docs show: ``docs/img/prompts-*.png``, ``prompt-version-diff.png``,
``llm-deployments.png``, ``eval-dataset-version.png`` and ``prompt-version-promote.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from lineage.projects import get_project
from lineage.store import session_scope
from retrain.mlflow_registry import Registry
from tests.api.prompt_seed import KEY, seed_prompts
from tests.browser.conftest import Live, done_notice, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture(scope="module")
def triage(live: Live) -> str:
    """Seed prompt ``triage`` into the live store, registered in the server's MLflow."""
    folder = live.data_dir.parent  # as tests/browser/conftest.py lays out
    with session_scope(live.engine) as session:
        project_id = get_project(session=session, name=live.seeded.project).id
    seed_prompts(
        live.engine,
        project_id=project_id,
        author_id=live.seeded.people["dana"],
        approver_id=live.seeded.people["alex"],
        registry=Registry(
            tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
            artifact_root=folder / "data" / "mlflow-artifacts",
        ),
    )
    return "triage"


def _no_key(page: Page) -> None:
    html = page.content()
    assert KEY not in html
    assert "tenant-42" not in html  # the endpoint's path is not shown, only its host


def test_a_viewer_reads_prompts_versions_and_their_diff(
    page: Page, live: Live, triage: str
) -> None:
    sign_in(page, live, "vic")
    page.goto(f"{live.url}/p/{live.seeded.project}")
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Prompts").click()
    expect(page.get_by_role("heading", name="Prompts", exact=True)).to_be_visible()
    row = page.locator(f'tr[data-prompt="{triage}"]')
    expect(row).to_contain_text("production v2 (triage-bot)")
    expect(row).to_contain_text("staging v3")
    _no_key(page)
    page.screenshot(path=str(DOCS_IMG / "prompts-list.png"), full_page=True)

    row.get_by_role("link", name=triage).click()
    expect(page.get_by_role("heading", name=f"Prompt {triage}")).to_be_visible()
    expect(page.locator("tr[data-version]")).to_have_count(3)
    binding = page.locator('tr[data-binding="triage-bot/staging"]')
    expect(binding).to_contain_text("sealed")
    expect(binding).to_contain_text("llm.example.internal:8443")
    expect(page.locator('tr[data-binding="triage-bot/production"]')).to_contain_text(
        "env:TRIAGE_API_KEY"
    )
    _no_key(page)
    page.screenshot(path=str(DOCS_IMG / "prompt-page.png"), full_page=True)

    page.locator('tr[data-version="2"]').get_by_role("link", name="v2", exact=True).click()
    expect(page.get_by_role("heading", name="Changes from v1 to v2")).to_be_visible()
    expect(page.locator("table.diff del").first).to_contain_text("Classify this ticket as bug")
    expect(page.locator("table.diff ins").first).to_contain_text("for {{product}}")
    expect(page.get_by_test_id("variables")).to_have_text("{{product}} {{ticket}}")
    expect(page.get_by_test_id("content-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(page.get_by_role("button", name="Request promotion")).to_have_count(0)
    page.screenshot(path=str(DOCS_IMG / "prompt-version-diff.png"), full_page=True)

    page.goto(f"{live.url}/p/{live.seeded.project}/prompts/{triage}/versions/3")
    page.get_by_label("Compare against").select_option("live:2")
    page.get_by_role("button", name="Show diff").click()
    expect(page.get_by_role("heading", name="Changes from v2 to v3")).to_be_visible()
    expect(page.locator("table.diff ins").first).to_contain_text("[system] You triage tickets")


def test_a_viewer_reads_llm_deployments_and_datasets_without_keys(
    page: Page, live: Live, triage: str
) -> None:
    sign_in(page, live, "vic")
    page.goto(f"{live.url}/p/{live.seeded.project}/prompts")
    page.get_by_role("link", name="LLM deployments").click()
    expect(page.get_by_role("heading", name="LLM deployments")).to_be_visible()
    production = page.locator('tr[data-binding="triage-bot/production"]')
    expect(production).to_contain_text("env:TRIAGE_API_KEY")
    expect(production).to_contain_text("v3 is newer")  # a viewer is offered no request
    expect(page.locator('tr[data-binding="triage-bot/staging"]')).to_contain_text("sealed")
    _no_key(page)
    page.screenshot(path=str(DOCS_IMG / "llm-deployments.png"), full_page=True)

    page.goto(f"{live.url}/p/{live.seeded.project}/prompts")
    page.get_by_role("link", name="Evaluation datasets").click()
    expect(page.get_by_role("heading", name="Evaluation datasets")).to_be_visible()
    expect(page.locator('tr[data-dataset="tickets/1"]')).to_contain_text("frozen")
    expect(page.locator('tr[data-dataset="tickets/2"]')).to_contain_text("open")
    page.locator('tr[data-dataset="tickets/1"]').get_by_role("link", name="v1").click()
    expect(page.get_by_role("heading", name="tickets v1")).to_be_visible()
    expect(page.locator("tr[data-record]")).to_have_count(3)
    expect(page.get_by_test_id("frozen")).to_contain_text("frozen")
    expect(page.get_by_test_id("dataset-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    page.screenshot(path=str(DOCS_IMG / "eval-dataset-version.png"), full_page=True)


def test_the_author_asks_and_an_approver_approves_on_the_approvals_page(
    page: Page, browser: Browser, live: Live, triage: str
) -> None:
    dana = page
    sign_in(dana, live, "dana")
    dana.goto(f"{live.url}/p/{live.seeded.project}/llm-deployments")
    dana.get_by_role("link", name="Request promotion of v3").click()
    dana.get_by_label("Why should v3 go live?").fill("JSON answers parse reliably")
    dana.get_by_role("button", name="Request promotion").click()
    expect(done_notice(dana)).to_contain_text("Promotion requested")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    alex = context.new_page()
    sign_in(alex, live, "alex")
    alex.goto(f"{live.url}/p/{live.seeded.project}/approvals")
    request = alex.locator("article.approval", has_text="JSON answers parse reliably")
    expect(request).to_contain_text(f"{triage} v3")
    request.get_by_label("Reason").fill("read the diff against v2")
    request.get_by_role("button", name="Approve").click()
    expect(done_notice(alex)).to_contain_text("approved")
    context.close()

    # Approved: the author puts v3 live in production from its page, as the REST route would.
    dana.goto(f"{live.url}/p/{live.seeded.project}/prompts/{triage}/versions/3")
    put_live = dana.get_by_role("button", name="Put v3 live in triage-bot (production)")
    dana.locator("#promotion").screenshot(path=str(DOCS_IMG / "prompt-version-promote.png"))
    put_live.click()
    expect(done_notice(dana)).to_contain_text("v3 is live in triage-bot (production).")
    expect(dana.locator("dl.facts")).to_contain_text("triage-bot (production) since")
