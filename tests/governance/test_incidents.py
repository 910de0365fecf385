from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance.actors import Actor, PrincipalKind
from governance.alerts import RuleCreate, create_rule
from governance.audit import AuditEntry
from governance.channels import SecretBox, create_channel
from governance.delivery import Delivery, deliver_due
from governance.incidents import (
    Incident,
    IncidentState,
    acknowledge_incident,
    list_incidents,
    resolve_incident,
    route_findings,
)
from governance.outbound import add_allow_entry, guard_for_project
from lineage import Conflict, NotFound, Project, create_project, session_scope, utcnow
from monitors.findings import Finding, Status
from tests.governance.receivers import http_receiver

WORKER = Actor(principal_id=uuid.uuid4(), name="svc-worker", kind=PrincipalKind.SERVICE)
MONITOR = "6f1c0d8e-monitor"


def drift(status: Status, value: float = 0.6, metric: str = "drift_share") -> Finding:
    return Finding(
        monitor="drift", metric=metric, scope="dataset", value=value, threshold=0.5, status=status
    )


@pytest.fixture
def project(engine: Engine) -> Project:
    """A project whose admin allowed 127.0.0.1, where the test receivers listen."""
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        add_allow_entry(
            session=session, project_id=project.id, target="127.0.0.1", note="", created_by="a"
        )
        return project


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.generate()


def add_rule(
    engine: Engine,
    project: Project,
    box: SecretBox,
    url: str = "http://127.0.0.1:9/",
    **rule: object,
) -> uuid.UUID:
    with session_scope(engine) as session:
        channel, _ = create_channel(
            session=session,
            project_id=project.id,
            spec={"kind": "webhook", "name": f"hook-{uuid.uuid4().hex[:6]}", "url": url},
            box=box,
            created_by="alice",
            check_target=guard_for_project(session=session, project_id=project.id),
        )
        spec = RuleCreate.model_validate(
            {"name": f"rule-{uuid.uuid4().hex[:6]}", "channel_ids": [channel.id], **rule}
        )
        return create_rule(session=session, project_id=project.id, spec=spec, created_by="alice").id


def run(
    engine: Engine, project: Project, findings: list[Finding], run_id: str, source: str = MONITOR
) -> list[Incident]:
    with session_scope(engine) as session:
        return route_findings(
            session=session,
            actor=WORKER,
            project_id=project.id,
            source_kind="monitor",
            source_id=source,
            run_id=run_id,
            findings=findings,
        )


def deliveries(session: Session) -> list[Delivery]:
    return list(session.exec(select(Delivery).order_by(col(Delivery.created_at))).all())


def audit(session: Session, action: str) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.seq))
    return list(session.exec(query).all())


def test_three_firing_runs_make_one_incident_then_an_ok_run_resolves_it(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    add_rule(engine, project, box, min_status="warn")
    for number in (1, 2, 3):
        [incident] = run(engine, project, [drift(Status.ALERT, 0.5 + number / 10)], f"run-{number}")

    with session_scope(engine) as session:
        [open_incident] = list_incidents(session=session, project_id=project.id)
        assert open_incident.id == incident.id
        assert open_incident.state == IncidentState.OPEN
        assert open_incident.count == 3
        assert open_incident.last_run_id == "run-3"
        assert open_incident.findings[0].value == pytest.approx(0.8)
        assert open_incident.last_seen_at >= open_incident.first_seen_at
        assert [d.event_type for d in deliveries(session)] == ["io.warden.incident.opened"]

    [resolved] = run(engine, project, [drift(Status.OK, 0.1)], "run-4")
    assert resolved.id == incident.id
    with session_scope(engine) as session:
        [closed] = list_incidents(session=session, project_id=project.id)
        assert closed.state == IncidentState.RESOLVED
        assert closed.open_key is None
        assert closed.resolved_at is not None
        assert [d.event_type for d in deliveries(session)] == [
            "io.warden.incident.opened",
            "io.warden.incident.resolved",
        ]
        assert len(audit(session, "incident.open")) == 1
        [entry] = audit(session, "incident.resolve")
        assert entry.actor_name == "svc-worker"
        assert entry.project_id == project.id


def test_firing_again_after_resolution_opens_a_new_incident(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    add_rule(engine, project, box)
    [first] = run(engine, project, [drift(Status.ALERT)], "r1")
    run(engine, project, [drift(Status.OK)], "r2")
    [second] = run(engine, project, [drift(Status.ALERT)], "r3")
    assert second.id != first.id
    with session_scope(engine) as session:
        assert [i.state for i in list_incidents(session=session, project_id=project.id)] == [
            "open",
            "resolved",
        ]
        assert [
            i.id for i in list_incidents(session=session, project_id=project.id, open_only=True)
        ] == [second.id]


def test_the_same_run_routed_twice_counts_once(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    add_rule(engine, project, box)
    run(engine, project, [drift(Status.ALERT)], "r1")
    [incident] = run(engine, project, [drift(Status.ALERT)], "r1")
    assert incident.count == 1


def test_insufficient_data_neither_fires_nor_resolves(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    add_rule(engine, project, box)
    insufficient = Finding("drift", "drift_share", "dataset", None, 0.5, Status.INSUFFICIENT)
    assert run(engine, project, [insufficient], "r0") == []
    run(engine, project, [drift(Status.ALERT)], "r1")
    assert run(engine, project, [insufficient], "r2") == []
    assert run(engine, project, [], "r3") == []
    with session_scope(engine) as session:
        [incident] = list_incidents(session=session, project_id=project.id)
        assert (incident.state, incident.count) == ("open", 1)


def test_rules_filter_by_kind_metric_status_and_source(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    add_rule(engine, project, box, monitor_kinds=["performance"], metrics=["accuracy"])
    add_rule(engine, project, box, source_ids=["other-monitor"])
    accuracy = Finding("performance", "accuracy", "dataset", 0.7, 0.8, Status.ALERT)
    roc = Finding("performance", "roc_auc", "dataset", 0.7, 0.8, Status.ALERT)
    warn_only = Finding("performance", "accuracy", "dataset", 0.79, 0.8, Status.WARN)

    assert run(engine, project, [warn_only, roc], "r1") == [], "min_status alert, wrong metric"
    [incident] = run(engine, project, [accuracy, roc], "r2")
    assert [f.metric for f in incident.findings] == ["accuracy"]
    assert run(engine, project, [drift(Status.OK)], "r3") == [], "out of scope: no resolution"
    [other] = run(engine, project, [drift(Status.ALERT)], "r4", source="other-monitor")
    assert other.rule_id != incident.rule_id


def test_a_warn_incident_escalating_to_alert_notifies_once(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    add_rule(engine, project, box, min_status="warn")
    run(engine, project, [drift(Status.WARN)], "r1")
    run(engine, project, [drift(Status.WARN)], "r2")
    [incident] = run(engine, project, [drift(Status.ALERT)], "r3")
    run(engine, project, [drift(Status.ALERT)], "r4")
    assert incident.severity == "alert"
    with session_scope(engine) as session:
        assert [d.event_type for d in deliveries(session)] == [
            "io.warden.incident.opened",
            "io.warden.incident.escalated",
        ]


def test_disabled_rules_do_not_fire(engine: Engine, project: Project, box: SecretBox) -> None:
    add_rule(engine, project, box, enabled=False)
    assert run(engine, project, [drift(Status.ALERT)], "r1") == []


def test_acknowledging_is_audited_and_the_incident_stays_open(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    add_rule(engine, project, box)
    [incident] = run(engine, project, [drift(Status.ALERT)], "r1")
    alice = Actor(
        principal_id=uuid.uuid4(), name="alice", kind=PrincipalKind.PERSON, request_id="req-7"
    )
    with session_scope(engine) as session:
        acked = acknowledge_incident(
            session=session,
            actor=alice,
            project_id=project.id,
            incident_id=incident.id,
            note="looking into the income feed",
        )
        assert (acked.state, acked.acknowledged_by) == ("acknowledged", "alice")
    with session_scope(engine) as session:
        [entry] = audit(session, "incident.acknowledge")
        assert (entry.actor_name, entry.target, entry.request_id) == (
            "alice",
            f"incident:{incident.id}",
            "req-7",
        )
        assert entry.reason == "looking into the income feed"
        assert json.loads(entry.detail) == {"after": "acknowledged", "before": "open"}
        with pytest.raises(Conflict, match="acknowledged by alice already"):
            acknowledge_incident(
                session=session, actor=alice, project_id=project.id, incident_id=incident.id
            )
    [still] = run(engine, project, [drift(Status.ALERT)], "r2")
    assert (still.id, still.state, still.count) == (incident.id, "acknowledged", 2)
    [resolved] = run(engine, project, [drift(Status.OK)], "r3")
    assert resolved.state == "resolved"


def test_a_failed_acknowledgement_leaves_no_audit_entry(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    alice = Actor(principal_id=uuid.uuid4(), name="alice", kind=PrincipalKind.PERSON)
    with session_scope(engine) as session, pytest.raises(NotFound, match="no incident"):
        acknowledge_incident(
            session=session, actor=alice, project_id=project.id, incident_id=uuid.uuid4()
        )
    with session_scope(engine) as session:
        assert audit(session, "incident.acknowledge") == []


def test_resolving_by_hand_is_audited(engine: Engine, project: Project, box: SecretBox) -> None:
    add_rule(engine, project, box)
    [incident] = run(engine, project, [drift(Status.ALERT)], "r1")
    bob = Actor(principal_id=uuid.uuid4(), name="bob", kind=PrincipalKind.PERSON)
    with session_scope(engine) as session:
        resolve_incident(
            session=session, actor=bob, project_id=project.id, incident_id=incident.id, note="fp"
        )
        with pytest.raises(Conflict, match="resolved already"):
            resolve_incident(
                session=session, actor=bob, project_id=project.id, incident_id=incident.id
            )
    with session_scope(engine) as session:
        [entry] = audit(session, "incident.resolve")
        assert (entry.actor_name, entry.reason) == ("bob", "fp")


def test_incidents_of_another_project_are_invisible(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    add_rule(engine, project, box)
    [incident] = run(engine, project, [drift(Status.ALERT)], "r1")
    with session_scope(engine) as session:
        other = create_project(session=session, name="other")
        assert list_incidents(session=session, project_id=other.id) == []
        with pytest.raises(NotFound):
            acknowledge_incident(
                session=session, actor=WORKER, project_id=other.id, incident_id=incident.id
            )


def test_an_opened_incident_reaches_a_real_webhook(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    with http_receiver() as receiver:
        add_rule(engine, project, box, url=receiver.url)
        run(engine, project, [drift(Status.ALERT, 0.75)], "r1")
        assert deliver_due(engine=engine, box=box, now=utcnow() + timedelta(seconds=1)) == 1
        [request] = receiver.requests
    event = json.loads(request.body)
    assert event["type"] == "io.warden.incident.opened"
    assert event["data"]["incident"]["source_id"] == MONITOR
    assert event["data"]["incident"]["count"] == 1
    assert event["data"]["run_id"] == "r1"
    assert event["data"]["title"].startswith("ALERT: rule-")
    assert "drift_share (dataset) = 0.75" in event["data"]["summary"]
