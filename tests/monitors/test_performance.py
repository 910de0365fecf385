"""Performance of the real Adult model, checked against scikit-learn computed right here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from lineage.errors import InvalidInput
from monitors.baseline import build_baseline
from monitors.findings import Status
from monitors.kinds import MonitorContext, run_monitor
from monitors.performance import compute_performance, reference_performance
from monitors.spec import Kind, MonitorSpec
from tests.adult import FEATURES, TARGET, adult_model

pytestmark = pytest.mark.slow  # trains the Adult model once (a few seconds)


@pytest.fixture(scope="module")
def scored(holdout: pd.DataFrame) -> pd.DataFrame:
    """5,000 labelled test rows with the model's predictions and scores."""
    rows = holdout.sample(5000, random_state=0).reset_index(drop=True)
    model = adult_model()
    rows["prediction"] = model.predict(rows[FEATURES])
    rows["score"] = model.predict_proba(rows[FEATURES])[:, 1]
    return rows


def _spec(**changes: object) -> MonitorSpec:
    fields: dict[str, object] = {
        "kind": Kind.PERFORMANCE,
        "label_column": TARGET,
        "prediction_column": "prediction",
        "score_column": "score",
    }
    fields.update(changes)
    return MonitorSpec.model_validate(fields)


def test_classification_metrics_match_sklearn(scored: pd.DataFrame) -> None:
    result = compute_performance(
        scored, label_column=TARGET, prediction_column="prediction", score_column="score"
    )
    truth, guess = scored[TARGET], scored["prediction"]
    expected = {
        "accuracy": metrics.accuracy_score(truth, guess),
        "precision": metrics.precision_score(truth, guess),
        "recall": metrics.recall_score(truth, guess),
        "f1": metrics.f1_score(truth, guess),
        "roc_auc": metrics.roc_auc_score(truth, scored["score"]),
    }
    assert result["task"] == "classification"
    for name, value in expected.items():
        metric = result["metrics"][name]
        assert metric["value"] == pytest.approx(value, rel=1e-12), name
        assert metric["lower"] < value < metric["upper"], name
        assert metric["upper"] - metric["lower"] < 0.06, name


def test_bootstrap_interval_matches_row_resampling(scored: pd.DataFrame) -> None:
    result = compute_performance(scored, label_column=TARGET, prediction_column="prediction")
    rng = np.random.default_rng(1)
    truth, guess = scored[TARGET].to_numpy(), scored["prediction"].to_numpy()
    draws = [
        metrics.accuracy_score(truth[index], guess[index])
        for index in (rng.integers(0, len(truth), len(truth)) for _ in range(300))
    ]
    lower, upper = np.quantile(draws, [0.025, 0.975])
    assert result["metrics"]["accuracy"]["lower"] == pytest.approx(lower, abs=0.004)
    assert result["metrics"]["accuracy"]["upper"] == pytest.approx(upper, abs=0.004)


def test_multiclass_metrics_are_macro_averages() -> None:
    rng = np.random.default_rng(2)
    truth = rng.choice(["a", "b", "c"], 600)
    guess = np.where(rng.random(600) < 0.7, truth, rng.choice(["a", "b", "c"], 600))
    frame = pd.DataFrame({"y": truth, "p": guess})
    result = compute_performance(frame, label_column="y", prediction_column="p")
    assert result["metrics"]["f1"]["value"] == pytest.approx(
        metrics.f1_score(truth, guess, average="macro")
    )
    assert result["metrics"]["recall"]["value"] == pytest.approx(
        metrics.recall_score(truth, guess, average="macro")
    )


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(50, 10, 2000)
    frame = pd.DataFrame({"y": truth, "p": truth + rng.normal(0, 3, 2000)})
    result = compute_performance(frame, label_column="y", prediction_column="p")
    assert result["task"] == "regression"
    mae = metrics.mean_absolute_error(frame["y"], frame["p"])
    rmse = metrics.root_mean_squared_error(frame["y"], frame["p"])
    assert result["metrics"]["mae"]["value"] == pytest.approx(mae)
    assert result["metrics"]["rmse"]["value"] == pytest.approx(rmse)
    assert result["metrics"]["rmse"]["lower"] < rmse < result["metrics"]["rmse"]["upper"]


def test_rows_without_labels_are_left_out(scored: pd.DataFrame) -> None:
    frame = scored.copy()
    frame[TARGET] = frame[TARGET].astype(float)
    frame.loc[:999, TARGET] = np.nan
    result = compute_performance(frame, label_column=TARGET, prediction_column="prediction")
    assert result["rows"] == 4000
    labelled = scored.iloc[1000:]
    assert result["metrics"]["accuracy"]["value"] == pytest.approx(
        metrics.accuracy_score(labelled[TARGET], labelled["prediction"])
    )


def test_degradation_against_the_reference_alerts(scored: pd.DataFrame) -> None:
    reference = reference_performance(
        scored.iloc[:2500], label_column=TARGET, prediction_column="prediction",
        score_column="score",
    )  # fmt: skip
    baseline = build_baseline(scored.iloc[:2500], extras={"performance": reference})
    same = run_monitor(_spec(), MonitorContext(window=scored.iloc[2500:], baseline=baseline))
    assert same.status is Status.OK
    broken = scored.iloc[2500:].copy()
    broken["prediction"] = 1 - broken["prediction"]
    result = run_monitor(_spec(), MonitorContext(window=broken, baseline=baseline))
    accuracy = next(finding for finding in result.findings if finding.metric == "accuracy")
    assert accuracy.status is Status.ALERT
    assert accuracy.threshold == pytest.approx(reference["metrics"]["accuracy"]["value"] - 0.05)
    assert accuracy.detail["reference"] == reference["metrics"]["accuracy"]["value"]


def test_without_a_reference_metrics_are_reported_not_judged(scored: pd.DataFrame) -> None:
    baseline = build_baseline(scored[[TARGET]].head(10))
    result = run_monitor(_spec(), MonitorContext(window=scored, baseline=baseline))
    assert {finding.status for finding in result.findings} == {Status.OK}
    assert {finding.threshold for finding in result.findings} == {None}


def test_too_few_labels_are_insufficient(scored: pd.DataFrame) -> None:
    frame = scored.copy()
    frame[TARGET] = frame[TARGET].astype(float)
    frame.loc[50:, TARGET] = np.nan
    baseline = build_baseline(scored[[TARGET]].head(10))
    result = run_monitor(_spec(min_rows=100), MonitorContext(window=frame, baseline=baseline))
    assert result.status is Status.INSUFFICIENT
    assert all(finding.value is None for finding in result.findings)


def test_performance_needs_label_and_prediction_columns(scored: pd.DataFrame) -> None:
    baseline = build_baseline(scored[[TARGET]].head(10))
    context = MonitorContext(window=scored, baseline=baseline)
    with pytest.raises(InvalidInput, match="needs label_column") as error:
        run_monitor(_spec(label_column=None), context)
    assert error.value.field == "label_column"
    with pytest.raises(InvalidInput, match="no column 'truth'"):
        run_monitor(_spec(label_column="truth"), context)


def test_a_single_regression_error_has_no_interval() -> None:
    result = compute_performance(
        pd.DataFrame({"y": [1.0], "p": [3.0]}), label_column="y", prediction_column="p",
        task="regression",
    )  # fmt: skip
    assert result["metrics"]["mae"] == {"value": 2.0, "lower": None, "upper": None}
    assert result["metrics"]["rmse"]["value"] == 2.0
