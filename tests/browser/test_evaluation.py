"""The evaluation pages in real headless Chromium: pick two runs, read the comparison.

The runs called the stand-in (``api.demo.llm_stand_in``), a local fake of a hosted LLM. Writes
the screenshot the docs show: ``docs/img/evaluation-compare.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from api.demo.llm_stand_in import StandInLLM
from governance.identity import Principal
from lineage.projects import get_project
from lineage.store import session_scope
from tests.api.evaluation_seed import ANSWERS, seed_evaluation
from tests.browser.conftest import Live, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def test_pick_two_runs_and_compare_them(page: Page, live: Live) -> None:
    with session_scope(live.engine) as session:
        project = get_project(session=session, name=live.seeded.project)
        dana = session.exec(select(Principal).where(Principal.name == "dana")).first()
        assert dana is not None
        project_id, dana_id = project.id, dana.id
    with StandInLLM(answers=ANSWERS) as stand_in:
        seed_evaluation(
            live.engine, project_id=project_id, author_id=dana_id, base_url=stand_in.base_url
        )
    sign_in(page, live, "alex")
    page.goto(f"{live.url}/p/{live.seeded.project}")
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Evaluation").click()
    expect(page.get_by_role("heading", name="Evaluation runs")).to_be_visible()
    rows = page.locator("tr[data-run]")
    expect(rows).to_have_count(2)
    page.get_by_label("Compare support v1").check()
    page.get_by_label("Compare support v2").check()
    page.get_by_role("button", name="Compare selected runs").click()

    expect(page.get_by_role("heading", name="support v1 vs support v2")).to_be_visible()
    expect(page.locator("tr[data-record]")).to_have_count(2)
    expect(page.get_by_text("It is Paris, on the Seine.")).to_be_visible()
    expect(page.locator("table.diff del").first).to_have_text("Answer briefly: {{question}}")
    expect(page.locator("table.diff ins").first).to_contain_text("You are precise")
    page.screenshot(path=str(DOCS_IMG / "evaluation-compare.png"), full_page=True)
