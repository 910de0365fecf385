"""Policy routes: versions, exact error paths, approval of changes, dry-runs that act on nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from governance.actors import Actor
from governance.audit import AuditEntry
from governance.decisions import PolicyDecision
from governance.policies import Policy, PolicyVersion
from governance.policy_evaluation import RunFindings
from governance.roles import Role
from lineage.projects import Project
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.findings import Finding, Status
from retrain.loop import on_findings
from tests.conftest import Issued

BASE = "/api/v1/projects/acme"

SOURCE = """
rules:
  - name: retrain-on-drift
    scope: {model: income}
    when:
      all:
        - {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
        - {monitor: drift, scope: "column:*", status: alert}
    cooldown_seconds: 3600
    actions:
      - {type: retrain, pipeline: income-train}
gates:
  - {type: fairness_max, max: 0.1}
"""

DRIFTED = [
    {
        "monitor": "drift",
        "metric": "drift_share",
        "value": 0.5,
        "threshold": 0.3,
        "status": "alert",
    },
    {
        "monitor": "drift",
        "metric": "wasserstein_distance",
        "scope": "column:age",
        "value": 0.4,
        "status": "alert",
    },
]


@pytest.fixture
def admin(make_principal: Callable[..., Issued]) -> Issued:
    return make_principal(role=Role.ADMIN)


def _count(engine: Engine, table: Any) -> int:
    with session_scope(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def _create(client: TestClient, who: Issued, **body: Any) -> Any:
    return client.post(f"{BASE}/policies", json={"name": "drift", **body}, headers=who.headers)


def test_create_read_and_version_a_policy(client: TestClient, admin: Issued) -> None:
    created = _create(client, admin, source=SOURCE, reason="first cut")
    assert created.status_code == 201, created.text
    policy = created.json()
    assert (policy["active_version"], policy["latest_version"]) == (1, 1)
    assert policy["pending_approval_id"] is None

    changed = SOURCE.replace("threshold: 0.3", "threshold: 0.25")
    second = client.post(
        f"{BASE}/policies/{policy['id']}/versions", json={"source": changed}, headers=admin.headers
    )
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2
    assert second.json()["active"] is True
    versions = client.get(f"{BASE}/policies/{policy['id']}/versions", headers=admin.headers)
    assert [v["version"] for v in versions.json()] == [1, 2]
    first_rule = versions.json()[0]["document"]["rules"][0]
    assert first_rule["when"]["all"][0]["threshold"] == 0.3
    assert versions.json()[1]["document"]["rules"][0]["when"]["all"][0]["threshold"] == 0.25

    back = client.post(
        f"{BASE}/policies/{policy['id']}/versions/1:activate", headers=admin.headers
    ).json()
    assert back["active"] is True
    listed = client.get(f"{BASE}/policies", headers=admin.headers).json()
    assert [(p["name"], p["active_version"], p["latest_version"]) for p in listed] == [
        ("drift", 1, 2)
    ]

    off = client.patch(
        f"{BASE}/policies/{policy['id']}", json={"enabled": False}, headers=admin.headers
    )
    assert off.json()["enabled"] is False


def test_an_invalid_policy_is_a_422_naming_the_exact_path_and_stores_nothing(
    client: TestClient, engine: Engine, admin: Issued
) -> None:
    bad = SOURCE.replace("status: alert}", "status: alert, threshold: lots}")
    answer = _create(client, admin, source=bad)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "rules[0].when.all[1].threshold"
    assert _count(engine, Policy) == 0

    when = {"metric": "accuracy", "op": "<", "threshold": 0.8}
    unknown = _create(client, admin, document={"rules": [{"name": "x", "when": when}]})
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "rules[0].actions"
    neither = _create(client, admin)
    assert neither.status_code == 422
    assert _count(engine, Policy) == 0


def test_only_policy_writers_change_policies(
    client: TestClient, make_principal: Callable[..., Issued], admin: Issued
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    assert _create(client, scientist, source=SOURCE).status_code == 403
    policy = _create(client, admin, source=SOURCE).json()
    assert client.get(f"{BASE}/policies/{policy['id']}", headers=scientist.headers).is_success


def test_a_change_waits_for_approval_when_the_project_requires_it(
    client: TestClient,
    engine: Engine,
    make_principal: Callable[..., Issued],
    admin: Issued,
) -> None:
    approver = make_principal(role=Role.APPROVER)
    rule = client.put(
        f"{BASE}/approval-rules/policy_change",
        json={"required_approvers": 1},
        headers=admin.headers,
    )
    assert rule.is_success, rule.text
    policy = _create(client, admin, source=SOURCE).json()
    assert policy["active_version"] is None
    approval_id = policy["pending_approval_id"]
    assert approval_id is not None

    url = f"{BASE}/policies/{policy['id']}/versions/1:activate"
    early = client.post(url, headers=admin.headers)
    assert early.status_code == 403
    assert "needs an approved policy_change request" in early.json()["detail"]

    own = client.post(
        f"{BASE}/approvals/{approval_id}/approve", json={"reason": "mine"}, headers=admin.headers
    )
    assert own.status_code == 403
    approved = client.post(
        f"{BASE}/approvals/{approval_id}/approve",
        json={"reason": "thresholds reviewed"},
        headers=approver.headers,
    )
    assert approved.is_success, approved.text
    assert client.post(url, headers=admin.headers).json()["active"] is True
    with session_scope(engine) as session:
        actions = [
            (e.action, e.outcome)
            for e in session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()  # type: ignore[arg-type]
            if e.action.startswith(("policy.", "approval."))
        ]
    assert actions == [
        ("policy.create", "success"),
        ("approval.request", "success"),
        ("policy.version", "success"),
        ("policy.activate", "denied"),
        ("approval.approve", "denied"),
        ("approval.approve", "success"),
        ("policy.activate", "success"),
    ]


def test_dry_run_on_given_findings_shows_decisions_and_acts_on_nothing(
    client: TestClient, engine: Engine, admin: Issued
) -> None:
    policy = _create(client, admin, source=SOURCE).json()
    url = f"{BASE}/policies/{policy['id']}:dry-run"
    runs = [{"run_id": "r1", "model": "income", "findings": DRIFTED}]
    answer = client.post(url, json={"runs": runs}, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    [decision] = answer.json()["decisions"]
    assert decision["status"] == "fire"
    assert decision["rule"] == "retrain-on-drift"
    assert decision["actions"] == [
        {"type": "retrain", "pipeline": "income-train", "parameters": {}}
    ]
    assert decision["finding_ids"] == [
        "r1:drift.drift_share@dataset",
        "r1:drift.wasserstein_distance@column:age",
    ]
    other_model = [{"run_id": "r1", "model": "churn", "findings": DRIFTED}]
    quiet = client.post(url, json={"runs": other_model}, headers=admin.headers).json()
    assert quiet["decisions"] == []
    calm = [{**DRIFTED[0], "value": 0.1, "status": "ok"}, DRIFTED[1]]
    quiet = client.post(
        url, json={"runs": [{"model": "income", "findings": calm}]}, headers=admin.headers
    ).json()
    assert quiet["decisions"] == []
    assert _count(engine, PolicyDecision) == 0
    with session_scope(engine) as session:
        assert (
            session.exec(select(AuditEntry).where(AuditEntry.action == "policy.decide")).all() == []
        )

    both = client.post(url, json={"runs": runs, "last_runs": 3}, headers=admin.headers)
    assert both.status_code == 422
    assert both.json()["field"] == "runs"


def test_dry_run_can_name_a_version(client: TestClient, engine: Engine, admin: Issued) -> None:
    policy = _create(client, admin, source=SOURCE).json()
    stricter = SOURCE.replace("threshold: 0.3", "threshold: 0.9")
    client.post(
        f"{BASE}/policies/{policy['id']}/versions", json={"source": stricter}, headers=admin.headers
    )
    url = f"{BASE}/policies/{policy['id']}:dry-run"
    runs = [{"model": "income", "findings": DRIFTED}]
    now = client.post(url, json={"runs": runs}, headers=admin.headers).json()
    assert (now["policy_version"], now["decisions"]) == (2, [])
    then = client.post(url, json={"runs": runs, "version": 1}, headers=admin.headers).json()
    assert then["policy_version"] == 1
    assert [d["status"] for d in then["decisions"]] == ["fire"]
    with session_scope(engine) as session:
        assert len(session.exec(select(PolicyVersion)).all()) == 2


def test_dry_run_replays_the_last_recorded_runs_with_their_cooldowns(
    client: TestClient, engine: Engine, admin: Issued
) -> None:
    policy = _create(client, admin, source=SOURCE).json()
    with session_scope(engine) as session:
        project = session.exec(select(Project).where(Project.name == "acme")).one()
    findings = (
        Finding("drift", "drift_share", "dataset", 0.5, 0.3, Status.ALERT),
        Finding("drift", "wasserstein_distance", "column:age", 0.4, 0.1, Status.ALERT),
    )
    for index in (1, 2):
        run = RunFindings(
            run_id=f"run-{index}",
            source_id="income-drift",
            at=utcnow() - timedelta(minutes=10 * (3 - index)),
            findings=findings,
            model="income",
            deployment="income-api",
            environment="production",
        )
        with session_scope(engine) as session:
            decided = on_findings(
                session=session, actor=Actor.system(), project_id=project.id, run=run
            )
        assert [d.status for d in decided] == (["fire"] if index == 1 else ["cooldown"])

    url = f"{BASE}/policies/{policy['id']}:dry-run"
    replay = client.post(url, json={"last_runs": 2}, headers=admin.headers).json()
    assert replay["runs"] == 2
    [decision] = replay["decisions"]
    assert decision["status"] == "cooldown"
    assert decision["run_ids"] == ["run-2"]
    fresh = client.post(
        url, json={"last_runs": 2, "with_cooldowns": False}, headers=admin.headers
    ).json()
    assert [d["status"] for d in fresh["decisions"]] == ["fire"]
    assert _count(engine, PolicyDecision) == 2
    decisions = client.get(f"{BASE}/policies/{policy['id']}/decisions", headers=admin.headers)
    assert [d["status"] for d in decisions.json()] == ["cooldown", "fire"]
    assert decisions.json()[1]["outcomes"][0]["outcome"] == "failed"
    assert "no pipeline named 'income-train'" in decisions.json()[1]["outcomes"][0]["error"]


def test_a_deeply_nested_policy_is_a_422_and_stores_nothing(
    client: TestClient, engine: Engine, admin: Issued
) -> None:
    depth = 45_000  # within the 100,000-character limit of a policy's source
    answer = _create(client, admin, source="[" * depth + "]" * depth)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "source"
    assert "nests deeper" in answer.json()["detail"]
    assert _count(engine, Policy) == 0
