"""Promotion gates from policies: each gate's verdict, and real versions blocked or let through."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.demo.adult import read_adult
from governance.actors import Actor
from governance.decisions import PolicyDecision, PromotionBlock
from governance.policies import add_version, create_policy, get_policy, list_policies
from governance.policy_language import (
    ApproversGate,
    FairnessMaxGate,
    MetricNoWorseGate,
    MetricVsChampionGate,
    ModelCardGate,
)
from governance.roles import Role
from lineage.errors import PermissionDenied
from lineage.models import ModelVersion
from lineage.projects import Project
from lineage.store import session_scope
from lineage.tables import utcnow
from retrain.deployers import EmbeddedDeployer, VerifiedModelLoader
from retrain.evaluation import Evaluation, evaluate_version
from retrain.gates import check_gate, gate_results
from retrain.mlflow_registry import CHAMPION, Registry
from retrain.promotion import promote
from tests.retrain.test_loop import _approve_and_promote

ADULT_TEST = Path(__file__).resolve().parents[2] / "data" / "adult" / "adult.test.gz"
PROJECT = uuid.uuid4()


def _version(number: str, **fields: Any) -> ModelVersion:
    return ModelVersion(
        id=uuid.uuid4(),
        project_id=PROJECT,
        name="income",
        version=number,
        artifact_uri="models:/income/1",
        artifact_sha256="0" * 64,
        **fields,
    )


def _evaluation(
    candidate: ModelVersion,
    champion: ModelVersion | None,
    accuracy: tuple[float, float],
    parity: dict[str, float],
) -> Evaluation:
    return Evaluation(
        project_id=PROJECT,
        model_name="income",
        candidate_version_id=candidate.id,
        champion_version_id=champion.id if champion else None,
        holdout="adult.test",
        rows=100,
        performance={"candidate": {"accuracy": accuracy[0]}, "champion": {"accuracy": accuracy[1]}},
        fairness={
            "candidate": {
                feature: {"metrics": {"demographic_parity_difference": value}}
                for feature, value in parity.items()
            }
        },
    )


def test_accuracy_may_trail_the_champion_by_at_most_max_drop() -> None:
    champion, candidate = _version("1"), _version("2")
    gate = MetricVsChampionGate(type="metric_vs_champion", metric="accuracy", max_drop=0.01)

    def verdict(accuracy: tuple[float, float], against: ModelVersion | None = champion) -> Any:
        evaluation = _evaluation(candidate, against, accuracy, {})
        return check_gate(
            gate, model_version=candidate, champion=champion, evaluation=evaluation, approvers=1
        )

    assert verdict((0.845, 0.850)).passed
    failed = verdict((0.835, 0.850))
    assert not failed.passed
    assert failed.message == "accuracy 0.8350 vs champion 0.8500 (may trail by at most 0.01)"
    stale = verdict((0.9, 0.85), against=_version("0"))
    assert not stale.passed
    assert "evaluate again" in stale.message
    none = check_gate(
        gate, model_version=candidate, champion=champion, evaluation=None, approvers=1
    )
    assert not none.passed
    assert "no evaluation" in none.message
    first = check_gate(
        gate,
        model_version=candidate,
        champion=None,
        evaluation=_evaluation(candidate, None, (0.8, 0.0), {}),
        approvers=1,
    )
    assert first.passed


def test_fairness_card_and_approver_gates() -> None:
    candidate = _version("2", feature_schema={"age": "integer"}, metrics={"accuracy": 0.85})
    evaluation = _evaluation(candidate, None, (0.85, 0.85), {"sex": 0.18, "race": 0.05})

    def verdict(gate: Any, approvers: int = 1) -> Any:
        return check_gate(
            gate,
            model_version=candidate,
            champion=None,
            evaluation=evaluation,
            approvers=approvers,
        )

    fairness = verdict(FairnessMaxGate(type="fairness_max", max=0.1))
    assert not fairness.passed
    assert fairness.message == "demographic_parity_difference above 0.1: sex 0.1800"
    assert verdict(FairnessMaxGate(type="fairness_max", max=0.1, feature="race")).passed
    card = verdict(ModelCardGate(type="model_card", fields=["description", "metrics"]))
    assert (card.passed, card.message) == (False, "the model card lacks description")
    assert verdict(ModelCardGate(type="model_card", fields=["feature_schema", "metrics"])).passed
    assert not verdict(ApproversGate(type="approvers", min=2), approvers=1).passed
    assert verdict(ApproversGate(type="approvers", min=2), approvers=2).passed


GATED = """
gates:
  - {type: fairness_max, metric: demographic_parity_difference, max: 0.1}
  - {type: approvers, min: 1}
"""


@pytest.mark.slow
def test_a_version_failing_a_gate_is_blocked_and_passes_once_the_policy_allows_it(
    engine: Engine,
    project: Project,
    trainer: Actor,
    approver: Actor,
    person: Callable[..., Actor],
    registry: Registry,
    train_version: Callable[..., ModelVersion],
    tmp_path: Path,
) -> None:
    admin = person(Role.ADMIN)
    deployer = EmbeddedDeployer(
        loader=VerifiedModelLoader(registry=registry, cache_dir=tmp_path / "m")
    )
    train_version()
    _approve_and_promote(engine, project, trainer, approver, "1", registry, deployer)
    second = train_version(max_rows=4000)
    with session_scope(engine) as session:
        evaluate_version(
            session=session,
            project_id=project.id,
            model_name="income",
            version="2",
            holdout=read_adult(str(ADULT_TEST)).sample(n=2000, random_state=0),
            holdout_name="adult.test (2000 rows)",
            target="income",
            sensitive_features=["sex"],
            loader=deployer.loader,
            actor=approver,
        )
        policy, _ = create_policy(
            session=session, project_id=project.id, actor=admin, name="release", source=GATED
        )

    # Adult's gradient-boosted model selects men about twice as often as women: blocked.
    with pytest.raises(PermissionDenied, match=r"gate 'release v1 fairness_max'.*sex 0\.1\d+"):
        _approve_and_promote(engine, project, trainer, approver, "2", registry, deployer)
    assert registry.alias_version("income", CHAMPION) == "1"
    with session_scope(engine) as session:
        results = gate_results(session=session, model_version=second, champion=None)
    assert [(r.gate, r.passed) for r in results] == [
        ("release v1 fairness_max", False),
        ("release v1 approvers", True),
    ]

    # A block decided by a policy refuses promotion too, whatever the gates say.
    relaxed = GATED.replace("max: 0.1}", "max: 0.3}")
    with session_scope(engine) as session:
        add_version(
            session=session,
            policy=get_policy(session=session, project_id=project.id, policy_id=policy.id),
            actor=admin,
            source=relaxed,
        )
        decision_id = _block(session, project, admin)
    with pytest.raises(PermissionDenied, match="blocked until"):
        _promote_only(engine, project, trainer, registry, deployer)
    with session_scope(engine) as session:
        block = session.exec(
            select(PromotionBlock).where(PromotionBlock.decision_id == decision_id)
        ).one()
        block.until = utcnow() - timedelta(seconds=1)
        session.add(block)
    _promote_only(engine, project, trainer, registry, deployer)
    assert registry.alias_version("income", CHAMPION) == "2"


def _block(session: Session, project: Project, admin: Actor) -> uuid.UUID:
    """Record a block_promotion decision of the project's policy, as the loop does."""
    [policy] = list_policies(session=session, project_id=project.id)
    decision = PolicyDecision(
        project_id=project.id,
        policy_id=policy.id,
        policy_version=2,
        rule="freeze",
        scope_key="model=income",
        status="fire",
        decided_at=utcnow(),
        source_id="m1",
    )
    session.add(decision)
    session.flush()
    session.add(
        PromotionBlock(
            project_id=project.id,
            model_name="income",
            until=utcnow() + timedelta(hours=1),
            decision_id=decision.id,
            reason="incident open",
        )
    )
    session.flush()
    return decision.id


def _promote_only(
    engine: Engine,
    project: Project,
    actor: Actor,
    registry: Registry,
    deployer: EmbeddedDeployer,
) -> None:
    with session_scope(engine) as session:
        promote(
            session=session,
            project_id=project.id,
            model_name="income",
            version="2",
            deployment="income-api",
            environment="production",
            actor=actor,
            registry=registry,
            deployer=deployer,
        )


def test_no_worse_with_confidence_reads_the_stored_intervals() -> None:
    champion, candidate = _version("1"), _version("2")
    gate = MetricNoWorseGate(type="metric_no_worse", metric="accuracy", max_drop=0.005)

    def verdict(low: float) -> Any:
        evaluation = _evaluation(candidate, champion, (0.852, 0.850), {})
        evaluation.performance["intervals"] = {
            "candidate": {"accuracy": [low, 0.87]},
            "champion": {"accuracy": [0.83, 0.868]},
        }
        return check_gate(
            gate, model_version=candidate, champion=champion, evaluation=evaluation, approvers=1
        )

    # A better point value on a noisy holdout is not enough: the lower bound must reach.
    noisy = verdict(0.831)
    assert not noisy.passed
    assert noisy.message == (
        "accuracy 0.8520 [0.8310, 0.8700] vs champion 0.8500 [0.8300, 0.8680] (95% intervals); "
        "its lower bound 0.8310 is below 0.8450 (champion less max_drop 0.005): not shown to be "
        "no worse with 95% confidence"
    )
    assert verdict(0.846).passed
    bare = _evaluation(candidate, champion, (0.9, 0.8), {})  # no intervals stored
    assert not check_gate(
        gate, model_version=candidate, champion=champion, evaluation=bare, approvers=1
    ).passed
