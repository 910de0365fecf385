"""Fairness metrics on the real Adult data and model, checked against fairlearn computed here."""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from lineage.errors import InvalidInput
from monitors.fairness import (
    DISPARITY_METRICS,
    FairnessConfig,
    FairnessResult,
    compute_fairness,
    fairness_findings,
)
from monitors.findings import Finding, Status
from tests.adult import FEATURES, TARGET, adult_model, adult_test

SCOPES = [("sex",), ("race",), ("sex", "race")]


FAIRLEARN = {
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "accuracy": accuracy_score,
}


@cache
def window() -> tuple[pd.DataFrame, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return the Adult test rows, the real model's predictions and the labels."""
    test = adult_test()
    return test, adult_model().predict(test[FEATURES]), test[TARGET].to_numpy()


def run(**overrides: object) -> FairnessResult:
    frame, predicted, labels = window()
    config = FairnessConfig.model_validate({"sensitive_features": ("sex", "race"), **overrides})
    return compute_fairness(sensitive=frame, y_pred=predicted, y_true=labels, config=config)


def by_scope(findings: list[Finding]) -> dict[tuple[str, str], Finding]:
    return {(f.metric, f.scope): f for f in findings}


@pytest.mark.parametrize("features", SCOPES)
def test_group_metrics_equal_fairlearn_metricframe(features: tuple[str, ...]) -> None:
    frame, predicted, labels = window()
    result = run(min_group_size=1, bootstrap_samples=0)
    reference = MetricFrame(
        metrics=FAIRLEARN,
        y_true=labels,
        y_pred=predicted,
        sensitive_features=frame[list(features)],
    ).by_group
    disparity = next(d for d in result.disparities if d.features == features)
    assert len(disparity.groups) == len(reference)
    for group in disparity.groups:
        key = group.values[0] if len(features) == 1 else group.values
        for metric, expected in reference.loc[key].items():
            assert group.metrics[str(metric)].value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("features", SCOPES)
def test_disparities_equal_fairlearn(features: tuple[str, ...]) -> None:
    frame, predicted, labels = window()
    result = run(min_group_size=1, bootstrap_samples=0)
    disparity = next(d for d in result.disparities if d.features == features)
    groups = frame[list(features)]
    expected = {
        "demographic_parity_difference": demographic_parity_difference(
            labels, predicted, sensitive_features=groups
        ),
        "demographic_parity_ratio": demographic_parity_ratio(
            labels, predicted, sensitive_features=groups
        ),
        "equalized_odds_difference": equalized_odds_difference(
            labels, predicted, sensitive_features=groups
        ),
    }
    for name in DISPARITY_METRICS:
        assert disparity.metrics[name].value == pytest.approx(expected[name], abs=1e-12)


def test_bootstrap_intervals_are_seeded_and_as_wide_as_a_row_bootstrap() -> None:
    frame, predicted, _ = window()
    first, again, other = run(seed=7), run(seed=7), run(seed=8)
    female = first.disparities[0].groups[0].metrics["selection_rate"]
    assert female == again.disparities[0].groups[0].metrics["selection_rate"]
    assert female != other.disparities[0].groups[0].metrics["selection_rate"]
    assert female.low is not None
    assert female.high is not None

    rng = np.random.default_rng(0)
    women = (frame["sex"] == "Female").to_numpy()
    rates = []
    for _ in range(300):
        rows = rng.integers(0, len(frame), len(frame))
        rates.append(predicted[rows][women[rows]].mean())
    low, high = np.quantile(rates, [0.025, 0.975])
    assert female.high - female.low == pytest.approx(high - low, rel=0.25)


def test_small_groups_are_marked_and_left_out_of_the_gaps() -> None:
    frame, predicted, labels = window()
    result = run(min_group_size=100)
    found = by_scope(fairness_findings(result))
    small = found["selection_rate", "group:sex=Female&race=Other"]
    assert small.status is Status.INSUFFICIENT
    assert small.value is None
    assert "min_group_size=100" in small.detail["reason"]
    assert "low" not in small.detail

    gap = found["demographic_parity_difference", "feature:sex&race"]
    sizes = frame.groupby(["sex", "race"])["sex"].transform("size")
    big = (sizes >= 100).to_numpy()
    expected = demographic_parity_difference(
        labels[big], predicted[big], sensitive_features=frame.loc[big, ["sex", "race"]]
    )
    assert gap.value == pytest.approx(expected, abs=1e-12)
    assert gap.detail["excluded_groups"] == [
        "sex=Female&race=Amer-Indian-Eskimo",
        "sex=Female&race=Other",
        "sex=Male&race=Amer-Indian-Eskimo",
        "sex=Male&race=Other",
    ]


def test_a_gap_needs_two_judged_groups() -> None:
    result = run(min_group_size=10_000)
    found = by_scope(fairness_findings(result))
    gap = found["demographic_parity_difference", "feature:sex"]
    assert gap.status is Status.INSUFFICIENT
    assert gap.value is None
    assert gap.detail["low"] is None
    assert gap.detail["high"] is None


def test_without_labels_only_selection_rates_are_judged() -> None:
    frame, predicted, _ = window()
    config = FairnessConfig(sensitive_features=("sex",))
    result = compute_fairness(sensitive=frame, y_pred=predicted, y_true=None, config=config)
    found = fairness_findings(result)
    assert {f.metric for f in found if f.scope.startswith("group:")} == {"selection_rate"}
    odds = by_scope(found)["equalized_odds_difference", "feature:sex"]
    assert odds.status is Status.INSUFFICIENT
    assert odds.detail["reason"] == "the window has no labels yet"
    assert by_scope(found)["demographic_parity_difference", "feature:sex"].value is not None


def test_partly_labelled_window_uses_labelled_rows_for_label_metrics() -> None:
    frame, predicted, labels = window()
    known = np.random.default_rng(1).random(len(frame)) < 0.5
    partial = np.where(known, labels, np.nan)
    config = FairnessConfig(sensitive_features=("sex",), bootstrap_samples=0)
    result = compute_fairness(sensitive=frame, y_pred=predicted, y_true=partial, config=config)
    assert result.labelled == known.sum()
    reference = MetricFrame(
        metrics=FAIRLEARN,
        y_true=labels[known],
        y_pred=predicted[known],
        sensitive_features=frame.loc[known, "sex"],
    ).by_group
    every_row = MetricFrame(
        metrics=selection_rate, y_true=labels, y_pred=predicted, sensitive_features=frame["sex"]
    ).by_group
    for group in result.disparities[0].groups:
        sex = group.values[0]
        assert group.metrics["selection_rate"].value == pytest.approx(every_row[sex])
        for metric in ("true_positive_rate", "false_positive_rate", "accuracy"):
            assert group.metrics[metric].value == pytest.approx(reference.loc[sex, metric])


def test_missing_sensitive_values_form_their_own_group() -> None:
    frame, predicted, labels = window()
    config = FairnessConfig(sensitive_features=("workclass",), min_group_size=1)
    result = compute_fairness(sensitive=frame, y_pred=predicted, y_true=labels, config=config)
    groups = {g.values[0]: g.size for g in result.disparities[0].groups}
    assert groups["<missing>"] == frame["workclass"].isna().sum() > 0
    assert sum(groups.values()) == len(frame)


def test_unknown_sensitive_feature_is_refused_with_the_columns() -> None:
    frame, predicted, labels = window()
    config = FairnessConfig(sensitive_features=("gender",))
    with pytest.raises(InvalidInput, match="'gender' is not a column") as error:
        compute_fairness(sensitive=frame, y_pred=predicted, y_true=labels, config=config)
    assert error.value.field == "sensitive_features"


def test_predictions_of_the_wrong_length_are_refused() -> None:
    frame, predicted, labels = window()
    config = FairnessConfig(sensitive_features=("sex",))
    with pytest.raises(InvalidInput, match="one value per row"):
        compute_fairness(sensitive=frame, y_pred=predicted[:10], y_true=labels, config=config)
    with pytest.raises(InvalidInput, match="one label per row"):
        compute_fairness(sensitive=frame, y_pred=predicted, y_true=labels[:10], config=config)


def test_scores_and_a_foreign_positive_label_are_refused() -> None:
    frame, predicted, labels = window()
    scores = adult_model().predict_proba(frame[FEATURES])[:, 1]
    config = FairnessConfig(sensitive_features=("sex",))
    with pytest.raises(InvalidInput, match="look like scores") as error:
        compute_fairness(sensitive=frame, y_pred=scores, y_true=labels, config=config)
    assert error.value.field == "prediction"
    words = np.where(predicted == 1, ">50K", "<=50K")
    with pytest.raises(InvalidInput, match="positive_label 1 never appears") as error:
        compute_fairness(sensitive=frame, y_pred=words, y_true=None, config=config)
    assert error.value.field == "positive_label"
    by_word = FairnessConfig(sensitive_features=("sex",), positive_label=">50K")
    result = compute_fairness(sensitive=frame, y_pred=words, y_true=None, config=by_word)
    assert result.disparities[0].metrics["demographic_parity_difference"].value == pytest.approx(
        demographic_parity_difference(labels, predicted, sensitive_features=frame["sex"])
    )


def test_categorical_columns_and_any_count_path_give_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Codes of a categorical column, one joint count or one count per scope: same result."""
    frame, predicted, labels = window()
    sensitive = frame[["sex", "race"]].copy()
    sensitive.loc[sensitive.index[:40], "race"] = None
    config = FairnessConfig(
        sensitive_features=("sex", "race"),
        intersections=(("race", "sex"), ("sex", "race")),
        bootstrap_samples=50,
    )
    expected = compute_fairness(
        sensitive=sensitive, y_pred=predicted, y_true=labels, config=config
    ).to_dict()
    categorical = sensitive.astype({"sex": "category", "race": "category"})
    assert (
        compute_fairness(
            sensitive=categorical, y_pred=predicted, y_true=labels, config=config
        ).to_dict()
        == expected
    )
    monkeypatch.setattr("monitors.fairness.metrics.JOINT_CELLS", 0)
    assert (
        compute_fairness(
            sensitive=sensitive, y_pred=predicted, y_true=labels, config=config
        ).to_dict()
        == expected
    )
    race_first = next(d for d in expected["disparities"] if d["features"] == ["race", "sex"])
    assert {group["values"][1] for group in race_first["groups"]} == {"Female", "Male"}
