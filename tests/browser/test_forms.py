"""The authoring forms in real headless Chromium against a live server on the seeded store.

For every form: fill it, submit it, see the result (and a refusal shown beside its field);
then, over HTTP from the same browser, a viewer's forced post and a post without the form's
CSRF token are refused with 403 and audited as denials. The screenshots of the forms in
``docs/img/form-*.png`` are taken here (``docs/dashboard.md`` shows them).

People: ``dana`` (data scientist) writes monitors, alert rules and pipelines; ``pat`` (a
project admin, added here) writes policies and manages access; ``vic`` (viewer) only reads.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from governance.actors import Actor
from governance.audit import AuditEntry
from governance.decisions import record_batch
from governance.identity import create_person, get_principal_by_name
from governance.policy_evaluation import RunFindings
from governance.roles import Role, grant_role
from lineage.errors import NotFound
from lineage.projects import get_project
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.findings import Finding, Status
from monitors.run_jobs import register_monitor_handlers
from retrain.loop import handle_run_findings
from tests.api.dashboard_seed import PASSWORD
from tests.browser.conftest import Live, done_notice, sign_in
from tests.monitors.test_execute import AdultLoader

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def doc_image(page: Page, name: str) -> None:
    """Save the page's main area as ``docs/img/<name>.png`` (committed; docs show it)."""
    page.locator("main").screenshot(path=str(DOCS_IMG / f"{name}.png"))


@pytest.fixture(scope="module")
def pat(live: Live) -> str:
    """Add ``pat``, an administrator of project acme (not a global administrator)."""
    with session_scope(live.engine) as session:
        try:
            get_principal_by_name(session=session, name="pat")
        except NotFound:
            person = create_person(
                session=session, actor=Actor.system(), name="pat", password=PASSWORD
            )
            grant_role(
                session=session,
                actor=Actor.system(),
                project_id=get_project(session=session, name="acme").id,
                principal_id=person.id,
                role=Role.ADMIN,
            )
    return "pat"


def _denials(live: Live, actor: str) -> list[AuditEntry]:
    with session_scope(live.engine) as session:
        found = session.exec(
            select(AuditEntry).where(
                AuditEntry.actor_name == actor, AuditEntry.action == "access.denied"
            )
        ).all()
        session.expunge_all()
        return list(found)


def _run_worker_once(live: Live) -> None:
    """Let a worker take the queued preview run, with the real findings → policies loop."""
    registry = register_monitor_handlers(
        HandlerRegistry(),
        store=LocalStore(live.data_dir),
        loader=AdultLoader(),
        on_findings=handle_run_findings,
    )
    assert Worker(engine=live.engine, registry=registry).run_once()


def test_a_data_scientist_creates_a_monitor_and_runs_a_preview(page: Page, live: Live) -> None:
    sign_in(page, live, "dana")
    page.goto(f"{live.url}/p/acme/monitors")
    page.get_by_role("link", name="New monitor").click()
    form = page.get_by_role("form", name="Monitor")
    form.get_by_label("Name").fill("age-drift")
    form.get_by_label("Deployment").select_option(label="income-api (production)")
    form.get_by_label("Kind").select_option("drift")
    form.get_by_label("Columns").fill("age, hours_per_week")
    form.get_by_label("Thresholds").fill("drift_share = often")
    form.get_by_label("Interval (seconds)").fill("3600")
    form.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#e-thresholds")).to_contain_text("must be a number")
    expect(page.get_by_label("Name")).to_have_value("age-drift")  # what was typed is kept
    page.get_by_label("Thresholds").fill("drift_share = 0.3")
    doc_image(page, "form-monitor")
    page.get_by_role("button", name="Save and run a preview").click()
    expect(page.get_by_role("heading", name=re.compile("^Report: age-drift"))).to_be_visible()
    _run_worker_once(live)
    page.reload()
    expect(page.get_by_role("cell", name="drift_share")).to_be_visible()
    expect(page.get_by_role("cell", name="column:age")).to_be_visible()


def test_a_data_scientist_edits_a_monitor(page: Page, live: Live) -> None:
    sign_in(page, live, "dana")
    page.goto(f"{live.url}/p/acme/monitors/{live.seeded.drift_monitor_id}")
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Name")).to_have_value("income-drift")
    page.get_by_label("Window", exact=True).fill("last:7d")
    page.get_by_label("Runs", exact=True).select_option("cron")
    page.get_by_label("Cron line").fill("0 6 * * *")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(done_notice(page)).to_contain_text("Monitor changed.")
    expect(page.locator("code", has_text="last:7d")).to_be_visible()


def _record_drift(live: Live, share: float) -> None:
    """What a drift monitor hands the loop: one run's findings (the dry-run judges these)."""
    with session_scope(live.engine) as session:
        record_batch(
            session=session,
            project_id=get_project(session=session, name="acme").id,
            run=RunFindings(
                run_id=str(uuid.uuid4()),
                source_id=str(live.seeded.drift_monitor_id),
                at=utcnow(),
                findings=(Finding("drift", "drift_share", "dataset", share, 0.3, Status.ALERT),),
                model="income",
                deployment="income-api",
                environment="production",
            ),
        )


_POLICY = """\
description: Tell the team when the income model drifts
rules:
  - name: alert-on-drift
    scope: {model: income}
    when: {monitor: drift, metric: drift_share, op: ">=", threshold: {threshold}}
    cooldown_seconds: 3600
    actions:
      - {type: alert}
"""


def test_an_admin_writes_a_policy_sees_its_error_at_its_line_and_dry_runs_it(
    page: Page, live: Live, pat: str
) -> None:
    _record_drift(live, 0.55)
    sign_in(page, live, pat)
    page.goto(f"{live.url}/p/acme")
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Policies").click()
    page.get_by_role("link", name="New policy").click()
    editor = page.get_by_role("form", name="Policy editor")
    editor.get_by_label("Name").fill("drift-alerts")
    editor.get_by_label("Document (YAML or JSON)").fill(_POLICY.replace("{threshold}", "high"))
    editor.get_by_role("button", name="Save").click()
    expect(page.locator("#e-source")).to_contain_text("line 5: rules[0].when.threshold")
    expect(page.locator("#error-line")).to_have_attribute("data-n", "5")
    doc_image(page, "form-policy-error")
    page.get_by_label("Document (YAML or JSON)").fill(_POLICY.replace("{threshold}", "0.3"))
    page.get_by_role("button", name="Dry-run on recent findings").click()
    dry = page.locator("#dry-run")
    expect(dry).to_contain_text("nothing was done")
    expect(dry.get_by_role("cell", name="alert-on-drift", exact=True).first).to_be_visible()
    doc_image(page, "form-policy-dry-run")
    page.get_by_role("button", name="Save").click()
    expect(done_notice(page)).to_contain_text("Policy created.")
    expect(page.get_by_role("heading", name="Policy drift-alerts")).to_be_visible()


def test_a_data_scientist_adds_a_channel_and_a_rule_then_changes_the_rule(
    page: Page, live: Live
) -> None:
    sign_in(page, live, "dana")
    page.goto(f"{live.url}/p/acme/alerts")
    channel = page.get_by_role("form", name="New channel")
    channel.get_by_label("Kind").select_option("email")
    channel.get_by_label("Channel name").fill("ops-mail")
    channel.get_by_label("SMTP host (e-mail)").fill("93.184.216.34")
    channel.get_by_label("Sender address").fill("warden@example.org")
    channel.get_by_label("Recipients").fill("ops@example.org")
    channel.get_by_role("button", name="Create channel").click()
    expect(done_notice(page)).to_contain_text("Channel ops-mail created.")
    rule = page.get_by_role("form", name="New rule")
    rule.get_by_label("Rule name").fill("drift-to-ops")
    rule.get_by_label("Alert on").select_option("warn")
    rule.get_by_label("drift", exact=True).check()
    rule.get_by_label("ops-mail").check()
    doc_image(page, "form-alerts")
    rule.get_by_role("button", name="Create rule").click()
    expect(done_notice(page)).to_contain_text("Rule created.")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="drift-to-ops"))
    expect(row).to_contain_text("warn or worse")
    row.get_by_role("link", name="drift-to-ops").click()
    change = page.get_by_role("form", name="Change rule")
    change.get_by_label("Alert on").select_option("alert")
    change.get_by_role("button", name="Save rule").click()
    expect(done_notice(page)).to_contain_text("Rule changed.")
    expect(row).to_contain_text("alert or worse")


def test_a_data_scientist_defines_a_pipeline(page: Page, live: Live) -> None:
    sign_in(page, live, "dana")
    page.goto(f"{live.url}/p/acme/pipelines")
    form = page.get_by_role("form", name="New pipeline")
    form.get_by_label("Pipeline name").fill("income-train")
    form.get_by_label("Model it trains").fill("income")
    form.get_by_label("Steps (YAML)").fill("- name: train\n")
    form.get_by_role("button", name="Define pipeline").click()
    expect(page.locator("#e-steps")).to_contain_text("exactly one of")
    page.get_by_label("Steps (YAML)").fill(
        "- name: train\n  entrypoint: tests.retrain.steps:train\n"
    )
    page.get_by_label("Parameters").fill("max_iter = 200")
    doc_image(page, "form-pipeline")
    page.get_by_role("button", name="Define pipeline").click()
    expect(done_notice(page)).to_contain_text("Pipeline income-train defined.")
    expect(page.get_by_role("cell", name="income-train")).to_be_visible()


def test_an_admin_sets_an_approval_rule_and_grants_a_role(page: Page, live: Live, pat: str) -> None:
    sign_in(page, live, pat)
    page.goto(f"{live.url}/p/acme/access")
    page.get_by_label("Approvers for rollback").fill("2")
    page.get_by_label("Who carries out rollback").select_option("on_approval")
    page.get_by_role("button", name="Save the rollback rule").click()
    expect(done_notice(page)).to_contain_text("Approval rule saved.")
    expect(page.get_by_label("Approvers for rollback")).to_have_value("2")
    grant = page.get_by_role("form", name="Grant a role")
    grant.get_by_label("Person (sign-in name)").fill(pat)
    grant.get_by_label("Role", exact=True).select_option("approver")
    grant.get_by_role("button", name="Grant").click()  # never to oneself
    expect(page.get_by_role("alert")).to_contain_text("cannot grant itself a role")
    page.get_by_label("Person (sign-in name)").fill("vic")
    page.get_by_label("Role", exact=True).select_option("auditor")
    doc_image(page, "form-access")
    page.get_by_role("button", name="Grant", exact=True).click()
    expect(done_notice(page)).to_contain_text("Role granted.")
    page.get_by_role("button", name="Revoke auditor from vic").click()
    expect(done_notice(page)).to_contain_text("Role revoked.")
    expect(page.get_by_role("button", name="Revoke auditor from vic")).to_have_count(0)


def test_one_search_box_finds_models_deployments_datasets_and_runs(page: Page, live: Live) -> None:
    sign_in(page, live, "vic")
    page.goto(f"{live.url}/p/acme")
    page.get_by_role("searchbox", name="Search models, deployments, datasets and runs").fill(
        "income"
    )
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Search")).to_be_visible()
    expect(page.locator("tr.hit-model").get_by_role("link", name="income")).to_be_visible()
    expect(page.locator("tr.hit-deployment")).to_contain_text("income-api")
    training = page.locator("tr.hit-run").filter(has_text="train-income")
    expect(training).to_be_visible()
    doc_image(page, "search")
    training.get_by_role("link", name="income v2").click()
    expect(page.get_by_role("heading", name="income v2", exact=True)).to_be_visible()


_FORMS = [
    "/p/acme/monitors/new",
    "/p/acme/policies/new",
    "/p/acme/alerts/channels",
    "/p/acme/alerts/rules",
    "/p/acme/pipelines",
    "/p/acme/access/grants",
    "/p/acme/access/approval-rules/promote",
]


def test_a_viewer_sees_no_forms_and_every_forced_post_is_refused_and_audited(
    page: Page, live: Live
) -> None:
    sign_in(page, live, "vic")
    for path in ("/p/acme/monitors", "/p/acme/alerts", "/p/acme/pipelines", "/p/acme/policies"):
        page.goto(live.url + path)
        expect(page.get_by_role("form")).to_have_count(0)  # the search box is role=search
        expect(page.get_by_role("link", name=re.compile("^New "))).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.input_value()
    before = len(_denials(live, "vic"))
    for path in _FORMS:
        forced = page.request.post(
            live.url + path, form={"name": "x", "csrf_token": token}, max_redirects=0
        )
        assert forced.status == 403, (path, forced.status)
    assert len(_denials(live, "vic")) == before + len(_FORMS)


def test_a_post_without_the_csrf_token_is_refused_and_audited(
    page: Page, live: Live, pat: str
) -> None:
    sign_in(page, live, pat)
    before = len(_denials(live, pat))
    for path in _FORMS:
        forged = page.request.post(live.url + path, form={"name": "x"}, max_redirects=0)
        assert forged.status == 403, (path, forged.status)
        assert "CSRF" in forged.text()
    denials = _denials(live, pat)[before:]
    assert len(denials) == len(_FORMS)
    assert all("CSRF token is missing" in d.reason for d in denials)
