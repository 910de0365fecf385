"""The dashboard's authoring forms over HTTP: each form reaches the REST handler's service and
audit, shows refusals beside their field, and refuses viewers and forged posts (audited).

The browser journeys (fill, submit, see the result) are in ``tests/browser/test_forms.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.web_session import CSRF_FIELD
from governance.decisions import record_batch
from governance.policies import Policy
from governance.policy_evaluation import RunFindings
from lineage.projects import get_project
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.findings import Finding, Status
from monitors.models import Monitor
from tests.api.test_dashboard import HTML, Store, _audit, _token, new_client, sign_in, store

__all__ = ["new_client", "store"]


def _monitor(engine: Engine, name: str) -> Monitor | None:
    with session_scope(engine) as session:
        found = session.exec(select(Monitor).where(Monitor.name == name)).first()
        session.expunge_all()
        return found


def _monitor_form(**changes: str) -> dict[str, str]:
    return {
        "name": "age-quality",
        "deployment_id": "",
        "kind": "quality",
        "columns": "age, hours-per-week",
        "thresholds": "missing_share = 0.1",
        "min_rows": "50",
        "window": "last:7d",
        "schedule": "interval",
        "interval_seconds": "3600",
        "timezone": "UTC",
        **changes,
    }


def test_a_data_scientist_creates_and_edits_a_monitor_through_the_rest_service(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "dana")
    page = client.get("/p/acme/monitors/new", headers=HTML)
    assert page.status_code == 200
    token = _token(page.text)
    bad = client.post(
        "/p/acme/monitors/new",
        data={**_monitor_form(thresholds="missing_share = lots"), CSRF_FIELD: token},
        headers=HTML,
    )
    assert bad.status_code == 422
    assert 'id="e-thresholds"' in bad.text
    assert "must be a number" in bad.text
    assert _monitor(engine, "age-quality") is None
    done = client.post(
        "/p/acme/monitors/new",
        data={**_monitor_form(), CSRF_FIELD: token},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    made = _monitor(engine, "age-quality")
    assert made is not None
    assert (made.kind, made.interval_seconds, made.window) == ("quality", 3600, "last:7d")
    assert made.spec["columns"] == ["age", "hours-per-week"]
    assert made.spec["thresholds"] == {"missing_share": 0.1}
    (entry,) = _audit(engine, "monitor.create")
    assert (entry.actor_name, entry.target) == ("dana", f"monitor:{made.id}")
    edit = client.get(f"/p/acme/monitors/{made.id}/edit", headers=HTML)
    assert 'value="age-quality"' in edit.text
    changed = client.post(
        f"/p/acme/monitors/{made.id}/edit",
        data={**_monitor_form(schedule="cron", cron="0 6 * * *"), CSRF_FIELD: token},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    after = _monitor(engine, "age-quality")
    assert after is not None
    assert (after.cron, after.interval_seconds) == ("0 6 * * *", None)
    (change,) = _audit(engine, "monitor.change")
    assert change.actor_name == "dana"
    shown = client.get(changed.headers["location"], headers=HTML)
    assert "Monitor changed." in shown.text


def test_a_monitor_preview_queues_a_run_now(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "dana")
    page = client.get(f"/p/acme/monitors/{store.monitor_id}", headers=HTML)
    assert "Run a preview now" in page.text
    queued = client.post(
        f"/p/acme/monitors/{store.monitor_id}/preview",
        data={CSRF_FIELD: _token(page.text)},
        follow_redirects=False,
    )
    assert queued.status_code == 303
    assert "/p/acme/monitor-runs/" in queued.headers["location"]
    (entry,) = _audit(engine, "monitor.run")
    assert entry.actor_name == "dana"


def test_a_viewer_sees_no_monitor_form_and_a_forced_post_is_refused_and_audited(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "vic")
    listing = client.get("/p/acme/monitors", headers=HTML)
    assert "New monitor" not in listing.text
    assert client.get("/p/acme/monitors/new", headers=HTML).status_code == 403
    forced = client.post(
        "/p/acme/monitors/new", data={**_monitor_form(), CSRF_FIELD: _token(listing.text)}
    )
    assert forced.status_code == 403
    assert "monitor:write" in forced.json()["detail"]
    assert [e.actor_name for e in _audit(engine, "access.denied")][-1] == "vic"
    assert _monitor(engine, "age-quality") is None


def test_a_forged_monitor_post_without_the_csrf_token_is_refused_and_audited(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "dana")
    forged = client.post("/p/acme/monitors/new", data=_monitor_form())
    assert forged.status_code == 403
    assert forged.json()["field"] == CSRF_FIELD
    (denial,) = _audit(engine, "access.denied")
    assert denial.actor_name == "dana"
    assert "CSRF" in denial.reason
    assert _monitor(engine, "age-quality") is None


_POLICY = """\
rules:
  - name: alert-on-drift
    scope: {model: income}
    when: {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
    actions:
      - {type: alert}
"""


def _record_drift(engine: Engine, share: float) -> None:
    with session_scope(engine) as session:
        project = get_project(session=session, name="acme")
        record_batch(
            session=session,
            project_id=project.id,
            run=RunFindings(
                run_id=str(uuid.uuid4()),
                source_id="monitor-1",
                at=utcnow(),
                findings=(Finding("drift", "drift_share", "dataset", share, 0.3, Status.ALERT),),
                model="income",
                deployment="income-api",
                environment="production",
            ),
        )


def _policies(engine: Engine) -> list[Policy]:
    with session_scope(engine) as session:
        found = list(session.exec(select(Policy)).all())
        session.expunge_all()
        return found


def test_a_policy_error_is_shown_at_its_line_and_nothing_is_stored(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "root")
    page = client.get("/p/acme/policies/new", headers=HTML)
    assert page.status_code == 200
    broken = _POLICY.replace("threshold: 0.3", "threshold: high")
    refused = client.post(
        "/p/acme/policies/new",
        data={"name": "drift-guard", "source": broken, "reason": "", CSRF_FIELD: _token(page.text)},
        headers=HTML,
    )
    assert refused.status_code == 422
    assert "line 4: rules[0].when.threshold" in refused.text
    assert 'class="line bad" data-n="4" id="error-line"' in refused.text
    syntax = client.post(
        "/p/acme/policies/new",
        data={"name": "drift-guard", "source": "rules:\n  - [\n", CSRF_FIELD: _token(page.text)},
        headers=HTML,
    )
    assert syntax.status_code == 422
    assert "the policy is not valid YAML or JSON at line 3" in syntax.text
    assert 'data-n="2" id="error-line"' in syntax.text
    assert _policies(engine) == []


def test_a_policy_is_dry_run_on_recent_findings_then_saved_and_versioned(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    _record_drift(engine, 0.5)
    client = sign_in(new_client(), "root")
    token = _token(client.get("/p/acme/policies/new", headers=HTML).text)
    form = {"name": "drift-guard", "source": _POLICY, "reason": "drift", CSRF_FIELD: token}
    dry = client.post("/p/acme/policies/dry-run", data=form, headers=HTML)
    assert dry.status_code == 200
    assert "Dry run: 1 decision(s) on the last 1 run(s); nothing was done" in dry.text
    assert "<td>alert-on-drift</td>" in dry.text
    assert _policies(engine) == []
    saved = client.post("/p/acme/policies/new", data=form, follow_redirects=False)
    assert saved.status_code == 303
    (policy,) = _policies(engine)
    assert (policy.name, policy.active_version) == ("drift-guard", 1)
    (entry,) = _audit(engine, "policy.version")
    assert entry.actor_name == "root"
    shown = client.get(saved.headers["location"], headers=HTML)
    assert "Policy created." in shown.text
    stricter = _POLICY.replace("0.3", "0.6")
    again = client.post(
        f"/p/acme/policies/{policy.id}/dry-run".replace(f"/{policy.id}", ""),
        data={**form, "source": stricter, "policy_id": str(policy.id)},
        headers=HTML,
    )
    assert "No rule would fire on these runs." in again.text
    versioned = client.post(
        f"/p/acme/policies/{policy.id}/versions",
        data={**form, "source": stricter},
        follow_redirects=False,
    )
    assert versioned.status_code == 303
    (policy,) = _policies(engine)
    assert (policy.latest_version, policy.active_version) == (2, 2)


def test_a_data_scientist_sees_no_policy_editor_and_a_forced_post_is_refused(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "dana")
    listing = client.get("/p/acme/policies", headers=HTML)
    assert listing.status_code == 200
    assert "New policy" not in listing.text
    forced = client.post(
        "/p/acme/policies/new",
        data={"name": "mine", "source": _POLICY, CSRF_FIELD: _token(listing.text)},
    )
    assert forced.status_code == 403
    assert "policy:write" in forced.json()["detail"]
    assert [e.actor_name for e in _audit(engine, "access.denied")] == ["dana"]
    assert _policies(engine) == []
