from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.demo.adult import FEATURES, TARGET, read_adult
from governance.actors import Actor
from governance.audit import AuditEntry
from lineage.errors import InvalidInput
from lineage.models import ModelVersion
from lineage.projects import Project
from lineage.store import session_scope
from retrain.deployers import VerifiedModelLoader
from retrain.evaluation import evaluate_version, latest_evaluation
from retrain.mlflow_registry import Registry

ADULT_TEST = Path(__file__).resolve().parents[2] / "data" / "adult" / "adult.test.gz"


@pytest.mark.slow
def test_candidate_and_champion_are_scored_side_by_side_on_the_same_rows(
    engine: Engine,
    project: Project,
    trainer: Actor,
    registry: Registry,
    tmp_path: Path,
    train_version: Callable[..., ModelVersion],
) -> None:
    champion = train_version()
    candidate = train_version(max_iter=5, random_state=1)
    holdout = read_adult(str(ADULT_TEST)).sample(n=2000, random_state=0)
    loader = VerifiedModelLoader(registry=registry, cache_dir=tmp_path / "models")

    with session_scope(engine) as session:
        evaluation = evaluate_version(
            session=session,
            project_id=project.id,
            model_name="income",
            version=candidate.version,
            holdout=holdout,
            holdout_name="adult.test.gz (2000 rows)",
            target=TARGET,
            sensitive_features=["sex", "race"],
            loader=loader,
            actor=trainer,
            champion_version=champion.version,
        )

    performance = evaluation.performance
    expected = accuracy_score(holdout[TARGET], loader.load(candidate).predict(holdout[FEATURES]))
    assert performance["candidate"]["accuracy"] == pytest.approx(expected)
    assert performance["champion"]["accuracy"] > 0.8
    assert performance["difference"]["accuracy"] == pytest.approx(
        performance["candidate"]["accuracy"] - performance["champion"]["accuracy"]
    )
    assert performance["candidate"]["roc_auc"] > 0.5
    fairness = evaluation.fairness
    assert set(fairness["champion"]) == {"sex", "race", "sex&race"}
    sex = fairness["champion"]["sex"]
    # The documented disparity on Adult: men are selected far more often than women.
    assert sex["selection_rate"]["sex=Male"] > sex["selection_rate"]["sex=Female"]
    assert sex["metrics"]["demographic_parity_difference"] > 0.05
    # Every group's selection rate and every gap carries its bootstrap interval.
    for group, rate in sex["selection_rate"].items():
        low, high = sex["intervals"][group]
        assert low <= rate <= high
    low, high = sex["metric_intervals"]["demographic_parity_difference"]
    assert low <= sex["metrics"]["demographic_parity_difference"] <= high
    assert "demographic_parity_difference" in fairness["difference"]["sex"]["metrics"]
    with session_scope(engine) as session:
        stored = latest_evaluation(
            session=session, project_id=project.id, model_version_id=candidate.id
        )
        audited = session.exec(
            select(AuditEntry).where(AuditEntry.action == "model.evaluate")
        ).one()
    assert stored is not None
    assert stored.champion_version_id == champion.id
    assert stored.rows == 2000
    assert audited.detail_object()["champion"] == champion.version

    with (
        pytest.raises(InvalidInput, match="not columns") as caught,
        session_scope(engine) as session,
    ):
        evaluate_version(
            session=session,
            project_id=project.id,
            model_name="income",
            version=candidate.version,
            holdout=holdout,
            holdout_name="adult",
            target=TARGET,
            sensitive_features=["gender"],
            loader=loader,
            actor=trainer,
        )
    assert caught.value.field == "sensitive_features"
