"""Fairness on the real Adult data and model, checked against fairlearn computed right here."""

from __future__ import annotations

import json
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
from pydantic import ValidationError
from sklearn.metrics import accuracy_score

from lineage.errors import InvalidInput
from monitors.baseline import Baseline
from monitors.fairness import (
    DISPARITY_METRICS,
    FairnessConfig,
    FairnessResult,
    compute_fairness,
    config_from_spec,
    fairness_charts,
    fairness_findings,
    reference_fairness,
)
from monitors.findings import Finding, Status
from monitors.kinds import MonitorContext, run_monitor
from monitors.report import render_chart_svg
from monitors.spec import MonitorSpec
from tests.adult import FEATURES, TARGET, adult_model, adult_test, adult_train

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


def test_adult_model_selects_women_far_less_often_and_that_is_an_alert() -> None:
    result = run()
    sex = result.disparities[0]
    rates = {g.values[0]: g.metrics["selection_rate"] for g in sex.groups}
    assert rates["Female"].value == pytest.approx(0.09, abs=0.015)
    assert rates["Male"].value == pytest.approx(0.26, abs=0.015)
    found = by_scope(fairness_findings(result))
    gap = found["demographic_parity_difference", "feature:sex"]
    assert gap.status is Status.ALERT
    assert gap.threshold == 0.1
    assert gap.detail["low"] < gap.value < gap.detail["high"]
    assert gap.detail["low"] > 0.1
    assert (gap.detail["lowest"], gap.detail["highest"]) == ("sex=Female", "sex=Male")
    assert found["demographic_parity_ratio", "feature:sex"].status is Status.ALERT
    female = found["selection_rate", "group:sex=Female"]
    assert female.value == rates["Female"].value
    assert female.status is Status.OK
    assert female.threshold is None


def test_verdict_uses_the_interval_between_ok_and_alert() -> None:
    point = run().disparities[0].metrics["demographic_parity_difference"]
    assert point.value is not None
    assert point.low is not None
    verdicts = {}
    for threshold in (point.value + 0.01, (point.low + point.value) / 2, point.low - 0.01):
        found = by_scope(fairness_findings(run(max_demographic_parity_difference=threshold)))
        verdicts[threshold] = found["demographic_parity_difference", "feature:sex"].status
    assert list(verdicts.values()) == [Status.OK, Status.WARN, Status.ALERT]


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


def test_group_metrics_are_judged_by_their_shift_from_the_reference() -> None:
    train = adult_train()
    model = adult_model()
    config = FairnessConfig(sensitive_features=("sex",))
    baseline = compute_fairness(
        sensitive=train,
        y_pred=model.predict(train[FEATURES]),
        y_true=train[TARGET].to_numpy(),
        config=config,
    ).to_dict()["groups"]

    frame, predicted, labels = window()
    same = compute_fairness(sensitive=frame, y_pred=predicted, y_true=labels, config=config)
    lenient = (model.predict_proba(frame[FEATURES])[:, 1] > 0.15).astype(int)
    shifted = compute_fairness(sensitive=frame, y_pred=lenient, y_true=labels, config=config)

    stable = by_scope(fairness_findings(same, reference=baseline))
    moved = by_scope(fairness_findings(shifted, reference=baseline))
    key = ("selection_rate", "group:sex=Male")
    assert stable[key].status is Status.OK
    assert stable[key].threshold == 0.1
    assert stable[key].detail["reference"] == pytest.approx(baseline["group:sex=Male"][key[0]])
    assert moved[key].status is Status.ALERT
    assert moved[key].detail["shift"] > 0.1


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


def test_config_refuses_one_feature_intersections_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="two or more distinct features"):
        FairnessConfig(sensitive_features=("sex",), intersections=(("sex",),))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FairnessConfig.model_validate({"sensitive_features": ["sex"], "min_size": 3})
    assert FairnessConfig(sensitive_features=("sex",)).scopes() == [("sex",)]


def test_charts_are_intervals_per_feature_set_without_small_groups() -> None:
    result = run(min_group_size=100)
    charts = fairness_charts(result, reference=result.group_values())
    assert [c.kind for c in charts] == ["intervals"] * 6
    intersection = charts[4]
    assert intersection.title.startswith("Selection rate by sex & race")
    assert "4 group(s) too small to judge left out" in intersection.title
    assert "sex=Female&race=Other" not in intersection.data["labels"]
    assert intersection.data["reference"] == intersection.data["values"]
    for low, value, high in zip(
        intersection.data["lower"],
        intersection.data["values"],
        intersection.data["upper"],
        strict=True,
    ):
        assert low <= value <= high
    svg = render_chart_svg(charts[0])
    assert svg.startswith("<svg")
    assert "sex=Female" in svg


def spec(**fields: object) -> MonitorSpec:
    return MonitorSpec.model_validate(
        {
            "kind": "fairness",
            "sensitive_features": ["sex", "race"],
            "prediction_column": "prediction",
            "label_column": TARGET,
            **fields,
        }
    )


def scored(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(prediction=adult_model().predict(frame[FEATURES]))


def test_the_kind_runs_through_the_registry_against_a_stored_reference() -> None:
    reference = reference_fairness(scored(adult_train()), spec=spec())
    stored = Baseline.from_json(
        Baseline(rows=len(adult_train()), columns={}, extras={"fairness": reference}).to_json()
    )
    window = scored(adult_test())
    outcome = run_monitor(spec(), MonitorContext(window=window, baseline=stored))

    assert outcome.kind == "fairness"
    assert outcome.status is Status.ALERT
    found = by_scope(outcome.findings)
    assert found["demographic_parity_difference", "feature:sex"].status is Status.ALERT
    female = found["selection_rate", "group:sex=Female"]
    assert female.status is Status.OK
    assert female.detail["reference"] == pytest.approx(
        reference["groups"]["group:sex=Female"]["selection_rate"]
    )
    assert outcome.report["rows"] == len(window)
    assert outcome.report["reference"] == reference["groups"]
    assert {c.kind for c in outcome.charts} == {"intervals"}
    json.dumps(outcome.to_dict(), allow_nan=False)


def test_the_kind_predicts_with_the_model_when_there_is_no_prediction_column() -> None:
    window = adult_test()
    context = MonitorContext(
        window=window,
        baseline=Baseline(rows=0, columns={}),
        model=adult_model(),
        feature_names=FEATURES,
    )
    outcome = run_monitor(spec(prediction_column=None, label_column=None), context)
    found = by_scope(outcome.findings)
    expected = demographic_parity_difference(
        window[TARGET], adult_model().predict(window[FEATURES]), sensitive_features=window["sex"]
    )
    assert found["demographic_parity_difference", "feature:sex"].value == pytest.approx(expected)
    assert found["equalized_odds_difference", "feature:sex"].status is Status.INSUFFICIENT


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"sensitive_features": []}, "sensitive_features", "needs sensitive_features"),
        ({"sensitive_features": ["gender"]}, "sensitive_features", "no column 'gender'"),
        ({"label_column": "truth"}, "label_column", "no column 'truth'"),
        ({"thresholds": {"parity": 0.1}}, "thresholds", r"unknown thresholds \['parity'\]"),
        ({"options": {"min_size": 5}}, "options", r"unknown options \['min_size'\]"),
        ({"options": {"min_group_size": 0}}, "options.min_group_size", "greater than or equal"),
        (
            {"thresholds": {"demographic_parity_ratio": 2}},
            "thresholds.demographic_parity_ratio",
            "less than or equal to 1",
        ),
        ({"prediction_column": None}, "prediction_column", "run with the model"),
    ],
)
def test_the_kind_refuses_a_spec_it_cannot_apply(
    fields: dict[str, object], field: str, message: str
) -> None:
    context = MonitorContext(window=scored(adult_test()), baseline=Baseline(rows=0, columns={}))
    with pytest.raises(InvalidInput, match=message) as error:
        run_monitor(spec(**fields), context)
    assert error.value.field == field


def test_spec_options_and_thresholds_reach_the_config() -> None:
    config = config_from_spec(
        spec(
            thresholds={"demographic_parity_difference": 0.2, "group_shift": 0.05},
            options={"min_group_size": 50, "intersections": [["race", "sex"]], "seed": 4},
        )
    )
    assert config.max_demographic_parity_difference == 0.2
    assert config.max_group_shift == 0.05
    assert config.min_group_size == 50
    assert config.seed == 4
    assert config.scopes() == [("sex",), ("race",), ("race", "sex")]


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
