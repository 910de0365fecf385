from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from governance.actors import Actor
from governance.alerts import (
    AlertRule,
    RuleCreate,
    RuleUpdate,
    create_rule,
    delete_rule,
    get_rule,
    judged_in_scope,
    list_rules,
    rule_channel_ids,
    rule_view,
    triggering,
    update_rule,
)
from governance.channels import Channel, SecretBox, create_channel
from governance.incidents import route_findings
from lineage import Conflict, InvalidInput, NotFound, Project, create_project, session_scope
from monitors.findings import Finding, Status


def finding(monitor: str, metric: str, status: Status) -> Finding:
    return Finding(monitor, metric, "dataset", 1.0, 0.5, status)


@pytest.fixture
def project(engine: Engine) -> Project:
    with session_scope(engine) as session:
        return create_project(session=session, name="acme")


@pytest.fixture
def channels(engine: Engine, project: Project) -> list[Channel]:
    box = SecretBox.generate()
    made = []
    with session_scope(engine) as session:
        for name in ("a", "b"):
            channel, _ = create_channel(
                session=session,
                project_id=project.id,
                spec={"kind": "webhook", "name": name, "url": f"http://10.0.0.1/{name}"},
                box=box,
                created_by="t",
            )
            made.append(channel)
    return made


def test_empty_filters_match_everything_at_or_above_min_status() -> None:
    rule = AlertRule(project_id=uuid.uuid4(), name="r", min_status="warn", created_by="t")
    findings = [
        finding("drift", "drift_share", Status.WARN),
        finding("quality", "missing_share", Status.ALERT),
        finding("performance", "accuracy", Status.OK),
        finding("fairness", "dp_difference", Status.INSUFFICIENT),
    ]
    assert [f.monitor for f in triggering(rule, findings)] == ["drift", "quality"]
    assert [f.monitor for f in judged_in_scope(rule, findings)] == [
        "drift",
        "quality",
        "performance",
    ]
    rule.min_status = "alert"
    assert [f.monitor for f in triggering(rule, findings)] == ["quality"]


def test_kind_metric_and_source_filters() -> None:
    rule = AlertRule(
        project_id=uuid.uuid4(),
        name="r",
        monitor_kinds=["performance"],
        metrics=["accuracy", "f1"],
        source_ids=["m-1"],
        min_status="alert",
        created_by="t",
    )
    assert rule.matches(finding("performance", "f1", Status.OK))
    assert not rule.matches(finding("performance", "roc_auc", Status.ALERT))
    assert not rule.matches(finding("drift", "accuracy", Status.ALERT))
    assert rule.covers("m-1")
    assert not rule.covers("m-2")


def test_rules_are_created_listed_changed_and_deleted(
    engine: Engine, project: Project, channels: list[Channel]
) -> None:
    first, second = channels
    with session_scope(engine) as session:
        rule = create_rule(
            session=session,
            project_id=project.id,
            spec=RuleCreate(
                name="drift", channel_ids=[first.id, first.id], monitor_kinds=["drift"]
            ),
            created_by="alice",
        )
        assert rule_channel_ids(session=session, rule_id=rule.id) == [first.id]
        changed = update_rule(
            session=session,
            project_id=project.id,
            rule_id=rule.id,
            change=RuleUpdate(channel_ids=[second.id], min_status="warn", enabled=False),
        )
        view = rule_view(session=session, rule=changed)
        assert (view["channel_ids"], view["min_status"], view["enabled"]) == (
            [str(second.id)],
            "warn",
            False,
        )
        assert view["monitor_kinds"] == ["drift"], "left-out fields stay as they are"
        assert list_rules(session=session, project_id=project.id, enabled_only=True) == []
        delete_rule(session=session, project_id=project.id, rule_id=rule.id)
        with pytest.raises(NotFound, match="no alert rule"):
            get_rule(session=session, project_id=project.id, rule_id=rule.id)


def test_rule_names_are_unique_per_project(
    engine: Engine, project: Project, channels: list[Channel]
) -> None:
    spec = RuleCreate(name="drift", channel_ids=[channels[0].id])
    with session_scope(engine) as session:
        create_rule(session=session, project_id=project.id, spec=spec, created_by="t")
        with pytest.raises(Conflict, match="exists"):
            create_rule(session=session, project_id=project.id, spec=spec, created_by="t")


def test_a_rule_needs_channels_of_its_own_project(
    engine: Engine, project: Project, channels: list[Channel]
) -> None:
    with session_scope(engine) as session:
        other = create_project(session=session, name="other")
        with pytest.raises(InvalidInput, match="no alert channel") as caught:
            create_rule(
                session=session,
                project_id=other.id,
                spec=RuleCreate(name="x", channel_ids=[channels[0].id]),
                created_by="t",
            )
        assert caught.value.field == "channel_ids"
    with pytest.raises(ValidationError, match="channel_ids"):
        RuleCreate(name="x", channel_ids=[])
    with pytest.raises(ValidationError, match="min_status"):
        RuleCreate.model_validate({"name": "x", "channel_ids": [uuid.uuid4()], "min_status": "ok"})


def test_a_rule_with_incidents_cannot_be_deleted(
    engine: Engine, project: Project, channels: list[Channel]
) -> None:
    with session_scope(engine) as session:
        rule = create_rule(
            session=session,
            project_id=project.id,
            spec=RuleCreate(name="r", channel_ids=[channels[0].id]),
            created_by="t",
        )
        route_findings(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            source_kind="monitor",
            source_id="m",
            run_id="1",
            findings=[finding("drift", "drift_share", Status.ALERT)],
        )
    with session_scope(engine) as session:
        with pytest.raises(Conflict, match="disable it instead"):
            delete_rule(session=session, project_id=project.id, rule_id=rule.id)
        assert get_rule(session=session, project_id=project.id, rule_id=rule.id).name == "r"
