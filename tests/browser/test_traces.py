"""The trace pages in real headless Chromium: filter the list, open a trace's waterfall.

Writes the screenshots the docs show: ``docs/img/traces-list.png`` and
``docs/img/trace-waterfall.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lineage.projects import get_project
from lineage.store import session_scope
from tests.api.test_dashboard_traces import seed_traces
from tests.browser.conftest import Live, sign_in
from tests.monitors.traces.conftest import make_llm_deployment

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def test_filter_the_trace_list_and_open_a_waterfall(page: Page, live: Live) -> None:
    with session_scope(live.engine) as session:
        project = get_project(session=session, name=live.seeded.project)
    seed_traces(
        live.engine,
        make_llm_deployment(live.engine, project, "support-bot"),
        make_llm_deployment(live.engine, project, "search-bot"),
    )
    sign_in(page, live, "alex")
    page.goto(f"{live.url}/p/{live.seeded.project}")
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Traces").click()
    expect(page.get_by_role("heading", name="Traces")).to_be_visible()
    # Only this test's deployments: other browser tests' evaluation runs trace their calls too.
    rows = page.locator("tr[data-trace]").filter(has_text=re.compile("support-bot|search-bot"))
    expect(rows).to_have_count(2)
    expect(page.get_by_text("pricing missing").first).to_be_visible()
    page.screenshot(path=str(DOCS_IMG / "traces-list.png"), full_page=True)

    page.get_by_label("Text (redacted content)").fill("refund")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(page.get_by_label("Text (redacted content)")).to_have_value("refund")
    rows.first.get_by_role("link").click()

    expect(page.get_by_role("heading", name="Trace step 1")).to_be_visible()
    waterfall = page.locator("svg.waterfall")
    expect(waterfall).to_be_visible()
    expect(waterfall.locator("rect.span-bar")).to_have_count(3)
    expect(page.get_by_text("refund my order")).to_be_visible()
    expect(page.locator("tr[data-span]")).to_have_count(3)
    expect(page.locator("tr[data-span]").nth(1)).to_contain_text("$0.002000")
    page.screenshot(path=str(DOCS_IMG / "trace-waterfall.png"), full_page=True)
