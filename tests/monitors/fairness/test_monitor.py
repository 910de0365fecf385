"""The fairness kind: verdicts through intervals, shifts from the reference, charts, specs."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
)

from lineage.errors import InvalidInput
from monitors.baseline import Baseline
from monitors.fairness import (
    FairnessConfig,
    FairnessResult,
    compute_fairness,
    fairness_charts,
    fairness_findings,
    reference_fairness,
)
from monitors.findings import Finding, Status
from monitors.kinds import MonitorContext, run_monitor
from monitors.report import render_chart_svg
from monitors.spec import MonitorSpec
from tests.adult import FEATURES, TARGET, adult_model, adult_test, adult_train


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
