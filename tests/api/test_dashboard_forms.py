"""The dashboard's authoring forms over HTTP: each form reaches the REST handler's service and
audit, shows refusals beside their field, and refuses viewers and forged posts (audited).

The browser journeys (fill, submit, see the result) are in ``tests/browser/test_forms.py``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.web_session import CSRF_FIELD
from governance.alerts import AlertRule
from governance.approvals import rule_settings
from governance.channels import Channel
from governance.decisions import record_batch
from governance.identity import get_principal_by_name
from governance.policies import Policy
from governance.policy_evaluation import RunFindings
from governance.roles import RoleGrant
from lineage.openlineage_events import DatasetRef, run_event
from lineage.openlineage_ingest import ingest_event
from lineage.projects import get_project
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.findings import Finding, Status
from monitors.models import Monitor
from retrain.pipelines import Pipeline
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


def _channels(engine: Engine) -> list[Channel]:
    with session_scope(engine) as session:
        found = list(session.exec(select(Channel)).all())
        session.expunge_all()
        return found


def test_channels_and_rules_are_created_and_changed_from_the_alerts_page(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "dana")
    page = client.get("/p/acme/alerts", headers=HTML)
    assert page.status_code == 200
    token = _token(page.text)
    refused = client.post(
        "/p/acme/alerts/channels",
        data={
            "c_kind": "webhook",
            "c_name": "ops",
            "c_url": "http://127.0.0.1:9/x",
            CSRF_FIELD: token,
        },
        headers=HTML,
    )
    assert refused.status_code == 422  # the outbound guard: no private addresses unless allowed
    assert 'id="e-c_url"' in refused.text
    assert _channels(engine) == []
    made = client.post(
        "/p/acme/alerts/channels",
        data={
            "c_kind": "email",
            "c_name": "ops-mail",
            "c_smtp_host": "93.184.216.34",
            "c_password": "hunter2-secret",
            "c_sender": "warden@example.org",
            "c_recipients": "ops@example.org, lead@example.org",
            CSRF_FIELD: token,
        },
        headers=HTML,
    )
    assert made.status_code == 201, made.text
    assert "Channel ops-mail created." in made.text
    assert "hunter2-secret" not in made.text
    (channel,) = _channels(engine)
    assert channel.config["recipients"] == ["ops@example.org", "lead@example.org"]
    no_channel = client.post(
        "/p/acme/alerts/rules",
        data={"name": "drift-to-ops", "min_status": "warn", CSRF_FIELD: token},
        headers=HTML,
    )
    assert no_channel.status_code == 422
    assert 'id="e-channel_ids"' in no_channel.text
    created = client.post(
        "/p/acme/alerts/rules",
        data={
            "name": "drift-to-ops",
            "min_status": "warn",
            "metrics": "drift_share",
            "monitor_kinds": ["drift"],
            "source_ids": [str(store.monitor_id)],
            "channel_ids": [str(channel.id)],
            "enabled": "true",
            CSRF_FIELD: token,
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    with session_scope(engine) as session:
        (rule,) = session.exec(select(AlertRule)).all()
        rule_id = rule.id
        assert (rule.min_status, rule.metrics, rule.source_ids) == (
            "warn",
            ["drift_share"],
            [str(store.monitor_id)],
        )
    listing = client.get("/p/acme/alerts", headers=HTML)
    assert "income-drift" in listing.text
    assert "ops-mail" in listing.text
    edit = client.get(f"/p/acme/alerts?rule={rule_id}", headers=HTML)
    assert "Change rule drift-to-ops" in edit.text
    changed = client.post(
        "/p/acme/alerts/rules",
        data={
            "rule_id": str(rule_id),
            "name": "drift-to-ops",
            "min_status": "alert",
            "channel_ids": [str(channel.id)],
            CSRF_FIELD: token,
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    with session_scope(engine) as session:
        changed_rule = session.get(AlertRule, rule_id)
        assert changed_rule is not None
        assert (changed_rule.min_status, changed_rule.enabled) == ("alert", False)
    actions = [e.action for e in _audit(engine, "alert_rule.update")]
    assert actions == ["alert_rule.update"]
    assert [e.actor_name for e in _audit(engine, "alert_channel.create")] == ["dana"]


def test_a_viewer_sees_no_alert_forms_and_a_forced_rule_is_refused(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "vic")
    page = client.get("/p/acme/alerts", headers=HTML)
    assert page.status_code == 200
    assert "New channel" not in page.text
    assert "New rule" not in page.text
    forced = client.post(
        "/p/acme/alerts/channels",
        data={
            "c_kind": "slack",
            "c_name": "x",
            "c_url": "https://93.184.216.34/x",
            CSRF_FIELD: _token(page.text),
        },
    )
    assert forced.status_code == 403
    assert "alert:write" in forced.json()["detail"]
    assert [e.actor_name for e in _audit(engine, "access.denied")] == ["vic"]
    assert _channels(engine) == []


def test_a_data_scientist_defines_a_pipeline_and_a_bad_step_is_shown_at_its_field(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "dana")
    page = client.get("/p/acme/pipelines", headers=HTML)
    assert "Define a pipeline" in page.text
    token = _token(page.text)
    form = {
        "name": "income-train",
        "model_name": "income",
        "steps": "- name: train\n  entrypoint: tests.retrain.steps:train\n",
        "parameters": "max_iter = 200\nlearning_rate = 0.1",
        "time_limit_seconds": "600",
        CSRF_FIELD: token,
    }
    bad = client.post("/p/acme/pipelines", data={**form, "steps": "- name: train\n"}, headers=HTML)
    assert bad.status_code == 422
    assert 'id="e-steps"' in bad.text
    assert "exactly one of" in bad.text
    done = client.post("/p/acme/pipelines", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    with session_scope(engine) as session:
        (pipeline,) = session.exec(select(Pipeline)).all()
        assert pipeline.spec["parameters"] == {"max_iter": 200, "learning_rate": 0.1}
        assert pipeline.spec["time_limit_seconds"] == 600
    assert [e.actor_name for e in _audit(engine, "pipeline.create")] == ["dana"]
    listing = client.get(done.headers["location"], headers=HTML)
    assert "Pipeline income-train defined." in listing.text
    viewer = sign_in(new_client(), "vic")
    seen = viewer.get("/p/acme/pipelines", headers=HTML)
    assert "income-train" in seen.text
    assert "Define a pipeline" not in seen.text
    forced = viewer.post(
        "/p/acme/pipelines", data={**form, "name": "x", CSRF_FIELD: _token(seen.text)}
    )
    assert forced.status_code == 403
    assert [e.actor_name for e in _audit(engine, "access.denied")] == ["vic"]


def test_an_admin_sets_an_approval_rule_and_grants_and_revokes_roles_by_name(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "root")
    page = client.get("/p/acme/access", headers=HTML)
    assert page.status_code == 200
    assert "<td>dana</td><td>data_scientist</td>" in page.text
    token = _token(page.text)
    ruled = client.post(
        "/p/acme/access/approval-rules/rollback",
        data={"required_approvers": "2", "carry_out": "on_approval", CSRF_FIELD: token},
        follow_redirects=False,
    )
    assert ruled.status_code == 303
    with session_scope(engine) as session:
        project = get_project(session=session, name="acme")
        rule = rule_settings(session=session, project_id=project.id, action="rollback")
        assert (rule.required_approvers, rule.carry_out) == (2, "on_approval")
    unknown = client.post(
        "/p/acme/access/grants", data={"person": "nobody", "role": "viewer", CSRF_FIELD: token}
    )
    assert unknown.status_code == 404
    granted = client.post(
        "/p/acme/access/grants",
        data={"person": "vic", "role": "approver", CSRF_FIELD: token},
        follow_redirects=False,
    )
    assert granted.status_code == 303
    shown = client.get(granted.headers["location"], headers=HTML)
    assert "Role granted." in shown.text
    assert "<td>vic</td><td>approver</td>" in shown.text
    with session_scope(engine) as session:
        grant = session.exec(select(RoleGrant).where(RoleGrant.role == "approver")).all()
        vic_grant = next(
            g
            for g in grant
            if g.principal_id == get_principal_by_name(session=session, name="vic").id
        )
        grant_id = vic_grant.id
    revoked = client.post(
        f"/p/acme/access/grants/{grant_id}/revoke", data={CSRF_FIELD: token}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert [e.action for e in _audit(engine, "role.revoke")] == ["role.revoke"]


def test_only_project_admins_see_access_and_a_forced_grant_is_refused(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    client = sign_in(new_client(), "dana")
    overview = client.get("/p/acme/monitors", headers=HTML)
    assert ">Access<" not in overview.text
    assert client.get("/p/acme/access", headers=HTML).status_code == 403
    forced = client.post(
        "/p/acme/access/grants",
        data={"person": "dana", "role": "admin", CSRF_FIELD: _token(overview.text)},
    )
    assert forced.status_code == 403
    assert "project:admin" in forced.json()["detail"]
    with session_scope(engine) as session:
        assert not session.exec(select(RoleGrant).where(RoleGrant.role == "admin")).all()


def test_search_finds_models_deployments_datasets_and_runs_the_reader_may_see(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    with session_scope(engine) as session:
        project = get_project(session=session, name="acme")
        event = run_event(
            event_type="COMPLETE",
            event_time=utcnow(),
            run_id=uuid.uuid4(),
            job_namespace="pipelines",
            job_name="train-income",
            inputs=[DatasetRef(namespace="s3://data", name="adult/train")],
        )
        ingest_event(session=session, project_id=project.id, body=json.dumps(event).encode())
    client = sign_in(new_client(), "vic")
    found = client.get("/p/acme/search?q=INCOME", headers=HTML)
    assert found.status_code == 200
    assert '<a href="/p/acme/models/income">income</a>' in found.text
    assert ">income-api</a>" in found.text
    assert "train-income" in found.text
    data = client.get("/p/acme/search?q=adult%2Ftr", headers=HTML)
    assert "adult/train" in data.text
    assert "s3://data" in data.text
    assert "Nothing matches" in client.get("/p/acme/search?q=%25", headers=HTML).text
    other = sign_in(new_client(), "root")
    assert other.get("/p/acme/search?q=income", headers=HTML).status_code == 200


def test_the_audit_page_names_targets_and_keeps_the_raw_target_beside_them(
    new_client: Callable[..., TestClient], store: Store, engine: Engine
) -> None:
    writer = sign_in(new_client(), "dana")
    token = _token(writer.get("/p/acme/monitors/new", headers=HTML).text)
    writer.post("/p/acme/monitors/new", data={**_monitor_form(), CSRF_FIELD: token})
    made = _monitor(engine, "age-quality")
    assert made is not None
    page = sign_in(new_client(), "ida").get("/p/acme/audit", headers=HTML)
    assert page.status_code == 200
    assert f'<a href="/p/acme/monitors/{made.id}">age-quality</a>' in page.text
    assert f"monitor:{made.id}</code>" in page.text
    assert "promote request by dana</a>" in page.text
