"""The dashboard in real headless Chromium against a live server on a seeded store.

Covers the journey the issue asks for: sign in; find a drifted deployment; open its report;
approve a pending promotion as an approver; see the audit entry appear; a viewer sees no approve
button and is refused (and audited) if it posts anyway. Each main page is screenshotted to
``artifacts/screenshots/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from governance.audit import AuditEntry
from lineage.store import session_scope
from tests.browser.conftest import Live, done_notice, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_wrong_password_is_refused_on_the_sign_in_page(page: Page, live: Live) -> None:
    page.goto(live.url + "/login")
    screenshot(page, "01-sign-in")
    sign_in(page, live, "alex", password="not the password")
    expect(page.get_by_role("alert")).to_contain_text("Wrong name or password")
    assert "/login" in page.url


def test_sign_in_find_the_drifted_deployment_and_open_its_report(page: Page, live: Live) -> None:
    sign_in(page, live, "alex")
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()
    screenshot(page, "02-projects")
    page.get_by_role("link", name="acme").click()
    expect(page.get_by_role("heading", name="Live deployments")).to_be_visible()
    screenshot(page, "03-overview")

    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="income-api"))
    expect(row.locator(".badge")).to_have_text(re.compile("^(warn|alert)$"))
    row.get_by_role("link", name="income-api").click()
    expect(page.get_by_role("heading", name=re.compile("income-api"))).to_be_visible()
    screenshot(page, "04-deployment")

    drift = page.get_by_role("row").filter(has=page.get_by_role("link", name="income-drift"))
    expect(drift.locator(".badge")).to_have_text(re.compile("^(warn|alert)$"))
    drift.get_by_role("link", name=re.compile("^Report of")).click()
    expect(page.get_by_role("heading", name=re.compile("^Report: income-drift"))).to_be_visible()
    expect(page.get_by_role("cell", name="drift_share")).to_be_visible()
    expect(page.get_by_role("cell", name="column:age")).to_be_visible()
    report = page.frame_locator("iframe.report")
    expect(report.locator("svg").first).to_be_visible()
    assert str(live.seeded.drift_run_id) in page.url
    screenshot(page, "05-run-report")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download report (HTML)").click()
    assert download.value.suggested_filename.endswith(".html")

    page.get_by_role("navigation", name="Breadcrumb").get_by_role(
        "link", name="income-drift"
    ).click()
    expect(page.get_by_role("heading", name="Status over time")).to_be_visible()
    expect(page.get_by_role("img", name="Drift share")).to_be_visible()
    expect(page.get_by_role("img", name="Per-column drift")).to_be_visible()
    screenshot(page, "06-monitor")


def test_model_pages_draw_lineage_with_click_through(page: Page, live: Live) -> None:
    sign_in(page, live, "vic")
    page.goto(f"{live.url}/p/acme/models/income")
    expect(page.get_by_role("heading", name="Versions side by side")).to_be_visible()
    expect(page.get_by_role("cell", name="0.871")).to_be_visible()
    graph = page.get_by_role("group", name=re.compile("Lineage graph"))
    expect(graph).to_contain_text("adult/train")
    expect(graph).to_contain_text("train-income")
    screenshot(page, "07-model")
    graph.get_by_role("link", name=re.compile("income v2")).click()
    expect(page.get_by_role("heading", name="income v2", exact=True)).to_be_visible()
    page.goto(f"{live.url}/p/acme/models/income/versions/1")
    expect(page.get_by_role("heading", name="Fairness and explanations")).to_be_visible()
    expect(page.frame_locator("iframe.report").locator("svg").first).to_be_visible()
    screenshot(page, "08-version")
    page.goto(f"{live.url}/p/acme/incidents?state=all")
    expect(page.get_by_role("heading", name="Incidents and alerts")).to_be_visible()
    screenshot(page, "09-incidents")
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Model card of a version")).to_be_visible()
    screenshot(page, "12-reports")
    page.get_by_label("Model version").select_option(label="income v1")
    with page.expect_download() as card:
        page.get_by_role("button", name="Generate and download").first.click()
    assert card.value.suggested_filename == "model-card-income-1.html"


def _entries(live: Live, action: str, actor: str) -> list[AuditEntry]:
    with session_scope(live.engine) as session:
        found = session.exec(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.actor_name == actor)
        ).all()
        session.expunge_all()
        return list(found)


def test_a_viewer_sees_no_approve_button_and_is_refused_if_it_posts_anyway(
    page: Page, live: Live
) -> None:
    sign_in(page, live, "vic")
    page.goto(f"{live.url}/p/acme/approvals")
    expect(page.get_by_role("heading", name="All requests")).to_be_visible()
    expect(page.get_by_text("v2 scores better on the recent window")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.input_value()
    before = len(_entries(live, "access.denied", "vic"))
    forced = page.request.post(
        f"{live.url}/p/acme/approvals/{live.seeded.approval_id}",
        form={"decision": "approve", "reason": "let me", "csrf_token": token},
        headers={"Accept": "text/html"},
    )
    assert forced.status == 403
    assert "approval:decide" in forced.text()
    assert len(_entries(live, "access.denied", "vic")) == before + 1


def test_an_approver_approves_the_promotion_and_sees_the_audit_entry(
    page: Page, live: Live
) -> None:
    sign_in(page, live, "alex")
    page.goto(f"{live.url}/p/acme")
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Approvals").click()
    request = page.locator(f"#a-{live.seeded.approval_id}")
    expect(request).to_contain_text("asked by dana".replace("asked", "Asked"))
    screenshot(page, "10-approvals")
    request.get_by_role("button", name="Approve").click()  # no reason: the browser refuses
    assert request.get_by_label(re.compile("^Reason")).evaluate("e => !e.validity.valid")
    request.get_by_label(re.compile("^Reason")).fill("metrics and fairness reviewed; ship it")
    request.get_by_role("button", name="Approve").click()
    expect(done_notice(page)).to_contain_text("approved")
    expect(page.get_by_role("cell", name="approved", exact=True)).to_be_visible()

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("#chain-status")).to_contain_text("Chain intact")
    page.get_by_label("Action").fill("approval.approve")
    page.get_by_label("Action").press("Enter")
    entry = page.get_by_role("row").filter(has_text="metrics and fairness reviewed; ship it")
    expect(entry).to_contain_text("alex")
    expect(entry).to_contain_text(f"approval:{live.seeded.approval_id}")
    screenshot(page, "11-audit")
