"""Policy documents (validation with exact paths) and their pure evaluation into decisions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from governance.policy_evaluation import PolicyRef, PriorDecision, RunFindings, evaluate
from governance.policy_language import (
    AllCondition,
    AnyCondition,
    FairnessMaxGate,
    RetrainAction,
    dump_document,
    error_line,
    load_document,
    load_source,
    parse_document,
)
from lineage.errors import InvalidInput
from monitors.findings import Finding, Status

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
POLICY_ID = uuid.UUID("00000000-0000-0000-0000-0000000000aa")

SOURCE = """
description: retrain income when its traffic drifts
rules:
  - name: retrain-on-drift
    scope: {model: income}
    when:
      all:
        - {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
        - any:
            - {monitor: drift, scope: "column:age", status: alert}
            - {monitor: performance, metric: accuracy, op: "<", threshold: 0.8}
    consecutive_runs: 2
    cooldown_seconds: 3600
    actions:
      - {type: alert}
      - {type: retrain, pipeline: income-train}
gates:
  - {type: metric_vs_champion, metric: accuracy, max_drop: 0.01}
  - {type: fairness_max, max: 0.1}
"""


def _policy(source: str = SOURCE, version: int = 1) -> PolicyRef:
    return PolicyRef(
        policy_id=POLICY_ID,
        name="drift",
        version=version,
        document=parse_document(load_source(source)),
    )


def _run(
    index: int,
    *,
    share: float,
    age: Status = Status.ALERT,
    model: str = "income",
    source: str = "monitor-1",
) -> RunFindings:
    return RunFindings(
        run_id=f"run-{index}",
        source_id=source,
        at=T0 + timedelta(minutes=10 * index),
        findings=(
            Finding("drift", "drift_share", "dataset", share, 0.3, Status.OK),
            Finding("drift", "wasserstein_distance", "column:age", 0.4, 0.1, age),
            Finding("drift", "wasserstein_distance", "column:hours", 0.01, 0.1, Status.OK),
        ),
        model=model,
        deployment="income-api",
        environment="production",
    )


def _invalid(document: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_document(document)
    return caught.value


def test_a_document_parses_with_its_rules_and_gates() -> None:
    document = parse_document(load_source(SOURCE))
    assert [r.name for r in document.rules] == ["retrain-on-drift"]
    assert document.rules[0].consecutive_runs == 2
    assert isinstance(document.rules[0].actions[1], RetrainAction)
    assert [g.type for g in document.gates] == ["metric_vs_champion", "fairness_max"]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            lambda d: d["rules"][0]["when"]["all"][1]["any"][1].update(threshold="high"),
            "rules[0].when.all[1].any[1].threshold",
            "valid number",
        ),
        (
            lambda d: d["rules"][0]["when"]["all"][0].pop("op"),
            "rules[0].when.all[0].op",
            "needs 'op' and 'threshold'",
        ),
        (
            lambda d: d["rules"][0]["actions"][1].pop("pipeline"),
            "rules[0].actions[1].pipeline",
            "Field required",
        ),
        (
            lambda d: d["rules"][0]["actions"][0].update(type="page-everyone"),
            "rules[0].actions[0].type",
            "must be one of alert",
        ),
        (
            lambda d: d["rules"][0].update(cooldown_seconds=-5),
            "rules[0].cooldown_seconds",
            "greater than or equal to 0",
        ),
        (lambda d: d["gates"][1].update(max="low"), "gates[1].max", "valid number"),
        (lambda d: d.update(rulez=[]), "rulez", "unknown key"),
        (
            lambda d: d["rules"][0]["when"]["all"][0].update(colour="red"),
            "rules[0].when.all[0].colour",
            "Extra inputs",
        ),
        (lambda d: d["rules"].append(d["rules"][0]), "rules[1].name", "used twice"),
    ],
)
def test_an_invalid_document_names_the_exact_path(change: Any, path: str, message: str) -> None:
    document = load_source(SOURCE)
    change(document)
    error = _invalid(document)
    assert error.field == path
    assert message in error.detail


def test_yaml_syntax_errors_name_the_line() -> None:
    with pytest.raises(InvalidInput, match="not valid YAML or JSON at line 3") as caught:
        load_source("rules:\n  - name: [unclosed\n")
    assert caught.value.field == "source"


def test_an_empty_policy_is_refused() -> None:
    assert _invalid({"rules": [], "gates": []}).field == "rules"


def test_a_stored_document_reads_back_typed_and_decides_the_same() -> None:
    parsed = parse_document(load_source(SOURCE))
    stored = dump_document(parsed)
    loaded = load_document(json.loads(json.dumps(stored)))
    assert dump_document(loaded) == stored
    assert isinstance(loaded.rules[0].when, AllCondition)
    assert isinstance(loaded.rules[0].when.all[1], AnyCondition)
    assert isinstance(loaded.rules[0].actions[1], RetrainAction)
    assert isinstance(loaded.gates[1], FairnessMaxGate)
    held = [_run(1, share=0.1), _run(2, share=0.5), _run(3, share=0.6)]
    as_parsed = evaluate(history=held, policies=[_policy()], prior=[], now=T0)
    as_stored = evaluate(
        history=held,
        policies=[PolicyRef(policy_id=POLICY_ID, name="drift", version=1, document=loaded)],
        prior=[],
        now=T0,
    )
    assert as_stored == as_parsed
    assert [d.status for d in as_stored] == ["fire"]


def test_a_rule_fires_only_after_n_consecutive_runs() -> None:
    policy = _policy()
    one = evaluate(history=[_run(1, share=0.5)], policies=[policy], prior=[], now=T0)
    assert one == []
    broken = [_run(1, share=0.5), _run(2, share=0.1), _run(3, share=0.5)]
    assert evaluate(history=broken, policies=[policy], prior=[], now=T0) == []
    held = [_run(1, share=0.1), _run(2, share=0.5), _run(3, share=0.6)]
    [decision] = evaluate(history=held, policies=[policy], prior=[], now=T0)
    assert decision.status == "fire"
    assert decision.run_ids == ("run-2", "run-3")
    assert decision.policy_version == 1
    assert "run-3:drift.drift_share@dataset" in decision.finding_ids
    assert "run-2:drift.wasserstein_distance@column:age" in decision.finding_ids
    assert not any("column:hours" in f for f in decision.finding_ids)
    assert [a.type for a in decision.actions] == ["alert", "retrain"]


def test_any_needs_one_branch_and_all_needs_every_condition() -> None:
    policy = _policy()
    calm_age = [_run(1, share=0.5, age=Status.OK), _run(2, share=0.5, age=Status.OK)]
    assert evaluate(history=calm_age, policies=[policy], prior=[], now=T0) == []
    low_share = [_run(1, share=0.2), _run(2, share=0.2)]
    assert evaluate(history=low_share, policies=[policy], prior=[], now=T0) == []


def test_scope_limits_a_rule_to_its_model() -> None:
    other = [_run(1, share=0.5, model="churn"), _run(2, share=0.5, model="churn")]
    assert evaluate(history=other, policies=[_policy()], prior=[], now=T0) == []


def test_a_cooldown_holds_back_a_second_firing() -> None:
    policy = _policy()
    runs = [_run(1, share=0.5), _run(2, share=0.5)]
    fired = PriorDecision(
        policy_id=POLICY_ID,
        rule="retrain-on-drift",
        scope_key="model=income;deployment=income-api/production",
        at=T0 - timedelta(minutes=30),
    )
    [held] = evaluate(history=runs, policies=[policy], prior=[fired], now=T0)
    assert held.status == "cooldown"
    assert "cooldown is 3600 s" in held.reason
    [again] = evaluate(history=runs, policies=[policy], prior=[fired], now=T0 + timedelta(hours=1))
    assert again.status == "fire"


def test_two_monitors_of_one_model_fire_once_within_a_cooldown() -> None:
    runs = [
        _run(1, share=0.5),
        _run(2, share=0.5),
        _run(1, share=0.5, source="monitor-2"),
        _run(2, share=0.5, source="monitor-2"),
    ]
    decisions = evaluate(history=runs, policies=[_policy()], prior=[], now=T0)
    assert [d.status for d in decisions] == ["fire", "cooldown"]
    assert [d.source_id for d in decisions] == ["monitor-1", "monitor-2"]


def test_evaluation_is_pure() -> None:
    runs = [_run(1, share=0.5), _run(2, share=0.5)]
    first = evaluate(history=runs, policies=[_policy()], prior=[], now=T0)
    second = evaluate(history=runs, policies=[_policy()], prior=[], now=T0)
    assert first == second


_LINED = """\
description: lines
rules:
  - name: r
    when:
      all:
        - {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
        - {monitor: drift, metric: x, op: "<", threshold: low}
    actions: [{type: alert}]
"""


def _refusal(source: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        parse_document(load_source(source))
    return refused.value


def test_an_error_is_placed_at_the_line_its_path_names() -> None:
    error = _refusal(_LINED)
    assert error.field == "rules[0].when.all[1].threshold"
    assert error_line(_LINED, error) == 7


def test_a_missing_key_points_at_its_enclosing_node_and_syntax_at_the_parser_line() -> None:
    no_actions = "rules:\n  - name: r\n    when: {monitor: drift, metric: m, status: alert}\n"
    assert error_line(no_actions, _refusal(no_actions)) == 2
    broken = "rules:\n  - name: r\n    when: {monitor: drift\n"
    assert error_line(broken, _refusal(broken)) == 3
