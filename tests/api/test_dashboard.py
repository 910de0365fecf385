"""The dashboard over HTTP: sign-in, sessions, CSRF, permissions, approvals, audit, monitors.

These drive the real app through its HTTP interface on a real migrated store; the browser
journey itself is in ``tests/browser/``.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from api.settings import Settings
from api.web_session import CSRF_FIELD, SESSION_COOKIE
from governance.actors import Actor
from governance.alerts import RuleCreate, create_rule
from governance.approvals import ApprovalAction, ApprovalRequest, request_approval
from governance.audit import AuditEntry, append
from governance.channels import SecretBox, create_channel
from governance.identity import create_person, disable_principal, get_principal_by_name
from governance.incidents import route_findings
from governance.roles import Role, grant_role
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.projects import create_project, get_project
from lineage.runtime.queue import RuntimeJob
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.findings import Finding, Status
from monitors.models import MonitorCreate, MonitorRun, MonitorRunState, RunTrigger, Schedule
from monitors.run_jobs import MONITOR_RUN
from monitors.schedules import create_monitor
from monitors.spec import MonitorSpec
from tests.governance.tamper import drop_triggers

PASSWORD = "a long enough password"
HTML = {"Accept": "text/html"}


@dataclass(frozen=True)
class Store:
    """A small project: people with passwords, a live deployment with a monitor, a request."""

    approval_id: uuid.UUID
    monitor_id: uuid.UUID
    run_ids: list[uuid.UUID]


def _summary(share: float, age: float, status: str) -> dict[str, object]:
    """A run summary in the shape ``monitors.execute.summarise`` writes."""
    return {
        "status": status,
        "drift_share": share,
        "rows": 1500,
        "kind": "drift",
        "computed": True,
        "reason": None,
        "findings": [
            {
                "monitor": "drift",
                "metric": "wasserstein_distance_norm",
                "scope": "column:age",
                "value": age,
                "threshold": 0.1,
                "status": "warn" if age > 0.1 else "ok",
                "detail": {},
            },
            {
                "monitor": "drift",
                "metric": "drift_share",
                "scope": "dataset",
                "value": share,
                "threshold": 0.3,
                "status": status,
                "detail": {},
            },
        ],
    }


@pytest.fixture
def store(engine: Engine) -> Store:
    """Build project ``acme`` with dana (data scientist), alex (approver), vic (viewer),
    ida (auditor) and an admin, a live model with a drift monitor that ran twice, and a
    promotion request by dana."""
    system = Actor.system()
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        people = {}
        for name, role in (
            ("dana", Role.DATA_SCIENTIST),
            ("alex", Role.APPROVER),
            ("vic", Role.VIEWER),
            ("ida", Role.AUDITOR),
        ):
            person = create_person(session=session, actor=system, name=name, password=PASSWORD)
            grant_role(
                session=session,
                actor=system,
                project_id=project.id,
                principal_id=person.id,
                role=role,
            )
            people[name] = person
        create_person(session=session, actor=system, name="root", password=PASSWORD, is_admin=True)
        version = register_model_version(
            session=session,
            project_id=project.id,
            name="income",
            spec=ModelVersionCreate(
                artifact_uri="models:/income/1",
                artifact_sha256="0" * 64,
                metrics={"accuracy": 0.861},
                parameters={"max_iter": 100},
            ),
        )
        deployment = record_deployment(
            session=session,
            project_id=project.id,
            spec=DeploymentCreate(
                name="income-api", environment="production", model_name="income", model_version="1"
            ),
        )
        monitor = create_monitor(
            session=session,
            project_id=project.id,
            spec=MonitorCreate(
                name="income-drift",
                deployment_id=deployment.id,
                spec=MonitorSpec.model_validate({"kind": "drift"}),
                schedule=Schedule(interval_seconds=3600),
                paused=True,
            ),
        )
        runs = []
        for hours, (share, age, status) in enumerate([(0.1, 0.05, "ok"), (0.5, 0.31, "alert")]):
            slot = utcnow() - timedelta(hours=2 - hours)
            job = RuntimeJob(
                project_id=project.id,
                kind=MONITOR_RUN,
                payload={},
                state=MonitorRunState.SUCCEEDED,
                progress=1.0,
                started_at=slot,
                finished_at=slot,
            )
            run = MonitorRun(
                project_id=project.id,
                monitor_id=monitor.id,
                scheduled_for=slot,
                trigger=RunTrigger.SCHEDULE,
                window_start=slot - timedelta(hours=24),
                window_end=slot,
                job_id=job.id,
                summary=_summary(share, age, status),
            )
            session.add_all([job, run])
            runs.append(run)
        dana = people["dana"]
        approval = request_approval(
            session=session,
            actor=Actor(principal_id=dana.id, name="dana", kind=dana.kind, project_id=project.id),
            action=ApprovalAction.PROMOTE,
            target_kind="model_version",
            target_id=str(version.id),
            reason="better on the recent window",
        )
        session.flush()
        return Store(approval.id, monitor.id, [r.id for r in runs])


def _token(html: str) -> str:
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]*)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    """Sign ``name`` in on ``client`` (cookies are kept on the client)."""
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"username": name, "password": password, CSRF_FIELD: _token(form.text), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def new_client(settings: Settings, engine: Engine) -> Iterator[Callable[..., TestClient]]:
    """Return a factory of independent clients (own cookie jars) on this test's app."""
    app = create_app(settings, engine=engine)
    opened: list[TestClient] = []

    def make(base_url: str = "http://testserver") -> TestClient:
        client = TestClient(app, base_url=base_url, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def _audit(engine: Engine, action: str) -> list[AuditEntry]:
    with session_scope(engine) as session:
        found = list(session.exec(select(AuditEntry).where(AuditEntry.action == action)).all())
        session.expunge_all()
        return found


def test_pages_send_browsers_to_sign_in_and_answer_other_clients_401(
    client: TestClient, store: Store
) -> None:
    page = client.get("/p/acme/approvals", headers=HTML, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fp%2Facme%2Fapprovals"
    assert client.get("/p/acme").status_code == 401
    assert client.get("/p/acme").headers["content-type"] == "application/problem+json"
    login = client.get("/login?next=//evil.example/")
    assert login.status_code == 200
    assert 'name="next" value="/"' in login.text


def test_sign_in_sets_a_strict_cookie_and_sign_out_clears_it(
    new_client: Callable[..., TestClient], store: Store
) -> None:
    client = new_client("https://testserver")
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"username": "vic", "password": PASSWORD, CSRF_FIELD: _token(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
    )
    assert {"HttpOnly", "Secure", "SameSite=lax"} <= {p.strip() for p in cookie.split(";")}
    overview = client.get("/p/acme", headers=HTML)
    assert overview.status_code == 200
    assert "Signed in as <strong>vic</strong>" in overview.text
    assert "income-api" in overview.text
    out = client.post("/logout", data={CSRF_FIELD: _token(overview.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/p/acme", headers=HTML, follow_redirects=False).status_code == 303
    plain = new_client()
    plain_form = plain.get("/login")
    signed = plain.post(
        "/login",
        data={"username": "vic", "password": PASSWORD, CSRF_FIELD: _token(plain_form.text)},
        follow_redirects=False,
    )
    assert "Secure" not in signed.headers["set-cookie"]


def test_a_wrong_password_is_refused_audited_and_throttled(
    new_client: Callable[..., TestClient], store: Store, settings: Settings, engine: Engine
) -> None:
    client = new_client()
    form = client.get("/login")
    token = _token(form.text)
    for _ in range(settings.auth_max_failures):
        bad = client.post(
            "/login", data={"username": "vic", "password": "guess", CSRF_FIELD: token}
        )
        assert bad.status_code == 401
        assert "Wrong name or password." in bad.text
    assert len(_audit(engine, "auth.failed")) == settings.auth_max_failures
    blocked = client.post(
        "/login", data={"username": "vic", "password": PASSWORD, CSRF_FIELD: token}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert SESSION_COOKIE not in client.cookies


def test_the_sign_in_form_needs_its_token(
    new_client: Callable[..., TestClient], store: Store
) -> None:
    client = new_client()
    client.get("/login")
    response = client.post(
        "/login", data={"username": "vic", "password": PASSWORD, CSRF_FIELD: "forged"}
    )
    assert response.status_code == 400
    assert SESSION_COOKIE not in client.cookies


def test_the_session_cookie_never_authenticates_the_rest_api(
    new_client: Callable[..., TestClient], store: Store
) -> None:
    client = sign_in(new_client(), "vic")
    assert client.get("/api/v1/projects").status_code == 401
    assert client.get("/p/acme", headers=HTML).status_code == 200


def test_a_forged_cookie_is_refused_and_audited(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = new_client()
    client.cookies.set(SESSION_COOKIE, f"{uuid.uuid4()}.9999999999.nonce.abcd.forged")
    assert client.get("/p/acme").status_code == 401
    (entry,) = _audit(engine, "auth.failed")
    assert "session cookie is not valid" in entry.reason


def test_disabling_a_person_ends_their_session_at_once(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "vic")
    assert client.get("/p/acme").status_code == 200
    with session_scope(engine) as session:
        vic = get_principal_by_name(session=session, name="vic")
        disable_principal(session=session, actor=Actor.system(), principal_id=vic.id)
    assert client.get("/p/acme").status_code == 401


def _pending(engine: Engine, approval_id: uuid.UUID) -> str:
    with session_scope(engine) as session:
        request = session.get(ApprovalRequest, approval_id)
        assert request is not None
        return str(request.status)


def test_an_approver_decides_with_a_required_reason_and_a_csrf_token(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "alex")
    inbox = client.get("/p/acme/approvals", headers=HTML)
    assert f'id="a-{store.approval_id}"' in inbox.text
    assert '<a href="/p/acme/models/income/versions/1">income v1</a>' in inbox.text
    assert ">Approve</button>" in inbox.text
    url = f"/p/acme/approvals/{store.approval_id}"
    no_token = client.post(url, data={"decision": "approve", "reason": "fine"})
    assert no_token.status_code == 403
    assert no_token.json()["field"] == CSRF_FIELD
    (forged,) = _audit(engine, "access.denied")
    assert forged.actor_name == "alex"
    assert "CSRF" in forged.reason
    token = _token(inbox.text)
    no_reason = client.post(
        url, data={"decision": "approve", "reason": "  ", CSRF_FIELD: token}, headers=HTML
    )
    assert no_reason.status_code == 422
    assert "give a reason" in no_reason.text
    assert _pending(engine, store.approval_id) == "pending"
    done = client.post(
        url,
        data={"decision": "approve", "reason": "reviewed the evaluation", CSRF_FIELD: token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert _pending(engine, store.approval_id) == "approved"
    (entry,) = _audit(engine, "approval.approve")
    assert (entry.actor_name, entry.reason) == ("alex", "reviewed the evaluation")
    after = client.get(done.headers["location"], headers=HTML)
    assert "Your decision was recorded: approved." in after.text


def test_the_approvals_inbox_lists_every_request_a_page_at_a_time(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    """55 requests past the store's one: the newest 50 on the first page, the rest behind
    "Older requests" (the fixture's promotion, named ``income v1``, on the last page)."""
    with session_scope(engine) as session:
        project = get_project(session=session, name="acme")
        dana = get_principal_by_name(session=session, name="dana")
        asker = Actor(principal_id=dana.id, name="dana", kind=dana.kind, project_id=project.id)
        for number in range(55):
            request_approval(
                session=session,
                actor=asker,
                action=ApprovalAction.ROLLBACK,
                target_kind="deployment",
                target_id=f"slot-{number}",
                reason="regression",
            )
    client = sign_in(new_client(), "vic")
    all_rows = '<h2 id="h-all">All requests</h2>'
    first = client.get("/p/acme/approvals", headers=HTML).text.split(all_rows)[1]
    assert first.count("<tr><td>") == 50
    assert "deployment slot-54" in first
    assert "deployment slot-5<" in first
    assert "deployment slot-4<" not in first
    assert "Newest requests" not in first
    older = re.search(r'href="([^"]+)" rel="next">Older requests', first)
    assert older is not None
    rest = client.get(html.unescape(older.group(1)), headers=HTML).text.split(all_rows)[1]
    assert rest.count("<tr><td>") == 6
    assert "deployment slot-4<" in rest
    assert "deployment slot-0<" in rest
    assert '<a href="/p/acme/models/income/versions/1">income v1</a>' in rest
    assert "Newest requests" in rest
    assert "Older requests" not in rest


def test_the_requester_cannot_approve_their_own_request_and_is_audited(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    with session_scope(engine) as session:
        dana = get_principal_by_name(session=session, name="dana")
        project_id = session.exec(select(ApprovalRequest.project_id)).one()
        grant_role(
            session=session,
            actor=Actor.system(),
            project_id=project_id,
            principal_id=dana.id,
            role=Role.APPROVER,
        )
    client = sign_in(new_client(), "dana")
    inbox = client.get("/p/acme/approvals", headers=HTML)
    assert f'id="a-{store.approval_id}"' not in inbox.text
    refused = client.post(
        f"/p/acme/approvals/{store.approval_id}",
        data={"decision": "approve", "reason": "mine", CSRF_FIELD: _token(inbox.text)},
        headers=HTML,
    )
    assert refused.status_code == 403
    assert "<h1>403" in refused.text
    assert _pending(engine, store.approval_id) == "pending"
    (entry,) = _audit(engine, "approval.approve")
    assert (entry.actor_name, entry.outcome) == ("dana", "denied")


def test_a_viewer_is_offered_no_decision_and_is_refused_if_forcing_one(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "vic")
    inbox = client.get("/p/acme/approvals", headers=HTML)
    assert "better on the recent window" in inbox.text
    assert ">Approve</button>" not in inbox.text
    assert "Audit log" not in inbox.text
    forced = client.post(
        f"/p/acme/approvals/{store.approval_id}",
        data={"decision": "approve", "reason": "me", CSRF_FIELD: _token(inbox.text)},
    )
    assert forced.status_code == 403
    assert "approval:decide" in forced.json()["detail"]
    (denial,) = _audit(engine, "access.denied")
    assert denial.actor_name == "vic"
    assert _pending(engine, store.approval_id) == "pending"
    assert client.get("/p/acme/audit").status_code == 403


def test_the_audit_page_searches_paginates_and_reports_the_chain(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "ida")
    page = client.get("/p/acme/audit", headers=HTML)
    assert page.status_code == 200
    assert "Chain intact." in page.text
    assert "approval.request" in page.text
    searched = client.get("/p/acme/audit?action=approval.request&who=dana", headers=HTML)
    assert searched.text.count('<tr><td class="num">') == 1
    none = client.get("/p/acme/audit?who=nobody", headers=HTML)
    assert "No entries match." in none.text
    bad = client.get("/p/acme/audit?outcome=maybe", headers=HTML)
    assert bad.status_code == 422
    with session_scope(engine) as session:
        project_id = session.exec(select(ApprovalRequest.project_id)).one()
        for number in range(55):
            append(
                session=session,
                actor=Actor.system(),
                action="test.filler",
                target=f"filler:{number}",
                project_id=project_id,
            )
    first = client.get("/p/acme/audit?action=test.filler", headers=HTML)
    assert first.text.count("filler:") == 50
    next_url = re.search(r'href="(\?[^"]*after=\d+)" rel="next"', first.text)
    assert next_url is not None
    second = client.get("/p/acme/audit" + next_url.group(1).replace("&amp;", "&"), headers=HTML)
    assert second.text.count("filler:") == 5
    assert 'rel="next"' not in second.text
    drop_triggers(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.update(AuditEntry).where(col(AuditEntry.seq) == 2).values(reason="rewritten")
        )
    broken = client.get("/p/acme/audit", headers=HTML)
    assert "Chain broken at entry #2." in broken.text


def test_the_monitor_page_charts_status_over_time_and_the_overview_shows_the_latest(
    new_client: Callable[..., TestClient], store: Store
) -> None:
    client = sign_in(new_client(), "vic")
    overview = client.get("/p/acme", headers=HTML)
    assert re.search(r"income-api</a></td>.*?s-alert", overview.text, re.S)
    page = client.get(f"/p/acme/monitors/{store.monitor_id}", headers=HTML)
    assert page.status_code == 200
    assert 'aria-label="Drift share"' in page.text
    assert 'aria-label="Per-column drift"' in page.text
    assert "drift share: 0.5 at" in page.text
    assert "age: 0.31 at" in page.text
    run = client.get(f"/p/acme/monitor-runs/{store.run_ids[1]}", headers=HTML)
    assert run.status_code == 200
    assert run.text.index("drift_share") < run.text.index("column:age")  # alert sorted first
    missing = client.get(f"/p/acme/monitor-runs/{store.run_ids[1]}/report.html", headers=HTML)
    assert missing.status_code == 404
    assert "has no report yet" in missing.text
    other = client.get(f"/p/acme/monitor-runs/{uuid.uuid4()}", headers=HTML)
    assert other.status_code == 404


def test_model_pages_compare_versions_and_hide_other_projects(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "vic")
    model = client.get("/p/acme/models/income", headers=HTML)
    assert model.status_code == 200
    assert "0.861" in model.text
    assert 'aria-label="Lineage graph' in model.text
    assert 'href="/p/acme/models/income/versions/1"' in model.text
    version = client.get("/p/acme/models/income/versions/1", headers=HTML)
    assert version.status_code == 200
    with session_scope(engine) as session:
        create_project(session=session, name="secret")
    assert client.get("/p/secret", headers=HTML).status_code == 404
    home = client.get("/", headers=HTML)
    assert "/p/acme" in home.text
    assert "/p/secret" not in home.text


def test_reports_are_generated_downloaded_and_audited(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "vic")
    page = client.get("/p/acme/reports", headers=HTML)
    assert page.status_code == 200
    version_id = re.search(r'<option value="([0-9a-f-]{36})">income v1</option>', page.text)
    assert version_id is not None
    card = client.get(
        f"/p/acme/reports/model-card?version_id={version_id.group(1)}&format=json", headers=HTML
    )
    assert card.status_code == 200
    assert card.headers["content-disposition"].startswith("attachment;")
    assert card.json()["model_details"]["name"] == "income"
    audit = client.get("/p/acme/reports/audit?from=2026-01-01&to=2026-12-31", headers=HTML)
    assert audit.status_code == 200
    assert audit.headers["content-type"].startswith("text/html")
    backwards = client.get("/p/acme/reports/audit?from=2026-12-31&to=2026-01-01", headers=HTML)
    assert backwards.status_code == 422
    assert "ends before it starts" in backwards.text
    assert (
        client.get(
            f"/p/acme/reports/model-card?version_id={version_id.group(1)}&format=exe"
        ).status_code
        == 422
    )
    assert len([e for e in _all_audit(engine) if e.actor_name == "vic"]) == 2
    version = client.get("/p/acme/models/income/versions/1", headers=HTML).text
    link = f'/p/acme/reports/model-card?version_id={version_id.group(1)}&amp;format=html">HTML'
    assert link in version  # every version's page links its card, however old


def _all_audit(engine: Engine) -> list[AuditEntry]:
    with session_scope(engine) as session:
        found = list(
            session.exec(select(AuditEntry).where(col(AuditEntry.action).like("report%"))).all()
        )
        session.expunge_all()
        return found


def test_numbers_on_pages_read_as_people_write_them() -> None:
    from api.dashboard.rendering import _num

    assert _num(26050.0) == "26,050"
    assert _num(6513) == "6,513"
    assert _num(0.87064) == "0.8706"
    assert _num(None) == "—"
    assert _num(True) == "True"


def _alert_on_everything(session: Session, project_id: uuid.UUID) -> None:
    """An alert rule over every source, to a webhook (never sent: no worker runs)."""
    channel, _ = create_channel(
        session=session,
        project_id=project_id,
        spec={"kind": "webhook", "name": "ops", "url": "http://10.0.0.1/"},
        box=SecretBox.generate(),
        created_by="t",
    )
    create_rule(
        session=session,
        project_id=project_id,
        spec=RuleCreate(name="drift", channel_ids=[channel.id]),
        created_by="t",
    )


def test_the_incidents_page_lists_an_incident_with_its_findings(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    with session_scope(engine) as session:
        project = get_project(session=session, name="acme")
        _alert_on_everything(session, project.id)
        route_findings(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            source_kind="monitor",
            source_id=str(store.monitor_id),
            run_id=str(store.run_ids[1]),
            findings=[Finding("drift", "drift_share", "dataset", 0.5, 0.3, Status.ALERT)],
        )
    client = sign_in(new_client(), "vic")
    page = client.get("/p/acme/incidents", headers=HTML)
    assert page.status_code == 200, page.text
    assert "drift_share dataset = 0.5 (alert)" in page.text


def test_the_incidents_page_lists_every_incident_a_page_at_a_time(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    """105 open incidents: the 100 seen last on the first page, 5 behind "Older incidents"."""
    with session_scope(engine) as session:
        project = get_project(session=session, name="acme")
        _alert_on_everything(session, project.id)
        for number in range(105):
            route_findings(
                session=session,
                actor=Actor.system(),
                project_id=project.id,
                source_kind="policy",
                source_id=f"p{number}",
                run_id=None,
                findings=[Finding("drift", "drift_share", "dataset", 0.5, 0.3, Status.ALERT)],
            )
    client = sign_in(new_client(), "vic")
    first = client.get("/p/acme/incidents", headers=HTML).text
    shown = re.findall(r"<code>(p\d+)</code>", first)
    assert len(shown) == 100
    assert "Most recent incidents" not in first
    older = re.search(r'href="([^"]+)" rel="next">Older incidents', first)
    assert older is not None
    rest = client.get(html.unescape(older.group(1)), headers=HTML).text
    more = re.findall(r"<code>(p\d+)</code>", rest)
    assert len(more) == 5
    assert sorted(shown + more) == sorted(f"p{n}" for n in range(105))
    assert "Most recent incidents" in rest
    assert "Older incidents" not in rest


def test_a_promotion_keeps_the_slots_monitors_on_the_overview(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    with session_scope(engine) as session:
        project = get_project(session=session, name="acme")
        register_model_version(
            session=session,
            project_id=project.id,
            name="income",
            spec=ModelVersionCreate(version="2", artifact_uri="m", artifact_sha256="b" * 64),
        )
        record_deployment(  # a new deployment row for the same slot, as a promotion writes
            session=session,
            project_id=project.id,
            spec=DeploymentCreate(
                name="income-api", environment="production", model_name="income", model_version="2"
            ),
        )
    overview = sign_in(new_client(), "vic").get("/p/acme", headers=HTML)
    assert "no monitors" not in overview.text
    assert re.search(r"income-api</a></td>.*?s-alert", overview.text, re.S)
