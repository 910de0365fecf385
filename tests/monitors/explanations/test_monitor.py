"""The explanations kind: attribution drift by NDCG and share shifts, through the registry."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest

from lineage.errors import InvalidInput
from monitors.baseline import Baseline
from monitors.explanations import (
    ExplanationConfig,
    Importance,
    attribution_ndcg,
    explanation_findings,
    global_importance,
    reference_importance,
)
from monitors.findings import Finding, Status
from monitors.kinds import MonitorContext, run_monitor
from monitors.report import render_chart_svg
from monitors.spec import MonitorSpec
from tests.adult import (
    FEATURES,
    adult_model,
    adult_test,
    adult_train,
)

SAMPLE = ExplanationConfig(sample_size=2000)


@cache
def training_importance() -> Importance:
    """The reference importance, as a baseline would store it (training rows)."""
    return global_importance(model=adult_model(), frame=adult_train()[FEATURES], config=SAMPLE)


def by_scope(findings: list[Finding]) -> dict[tuple[str, str], Finding]:
    return {(f.metric, f.scope): f for f in findings}


SPEC = MonitorSpec.model_validate({"kind": "explanations", "options": {"sample_size": 2000}})


@cache
def stored_baseline() -> Baseline:
    """A baseline whose extras carry the training importance, after a JSON round trip."""
    section = reference_importance(adult_train()[FEATURES], model=adult_model(), spec=SPEC)
    baseline = Baseline(rows=len(adult_train()), columns={}, extras={"explanations": section})
    return Baseline.from_json(baseline.to_json())


def context(window: pd.DataFrame, baseline: Baseline | None = None) -> MonitorContext:
    return MonitorContext(
        window=window,
        baseline=baseline or stored_baseline(),
        model=adult_model(),
        feature_names=FEATURES,
    )


def test_ndcg_is_one_for_the_same_ranking_and_falls_for_a_shuffled_one() -> None:
    reference = training_importance().values
    assert attribution_ndcg(reference=reference, current=reference) == pytest.approx(1.0)
    scaled = {name: 3 * value for name, value in reference.items()}
    assert attribution_ndcg(reference=reference, current=scaled) == pytest.approx(1.0)

    names = list(reference)
    shuffled = dict(zip(names[::-1], reference.values(), strict=True))
    assert attribution_ndcg(reference=reference, current=shuffled) < 0.9
    assert attribution_ndcg(reference=reference, current=shuffled, top_k=3) < 0.5


def test_ndcg_follows_its_documented_formula() -> None:
    reference = {"a": 3.0, "b": 2.0, "c": 1.0}
    current = {"a": 0.1, "b": 0.5, "c": 0.9}  # ranks c, b, a
    dcg = 1.0 / np.log2(2) + 2.0 / np.log2(3) + 3.0 / np.log2(4)
    ideal = 3.0 / np.log2(2) + 2.0 / np.log2(3) + 1.0 / np.log2(4)
    assert attribution_ndcg(reference=reference, current=current) == pytest.approx(dcg / ideal)
    assert attribution_ndcg(reference={"a": 0.0}, current={"a": 1.0}) == 1.0


def test_production_like_window_keeps_the_training_attributions() -> None:
    current = global_importance(model=adult_model(), frame=adult_test()[FEATURES], config=SAMPLE)
    found = by_scope(explanation_findings(current, reference=training_importance()))
    ndcg = found["attribution_ndcg", "dataset"]
    assert ndcg.value is not None
    assert ndcg.value > 0.98
    assert ndcg.status is Status.OK
    assert ndcg.threshold == 0.9
    assert all(f.status is Status.OK for f in found.values())


def test_a_shifted_population_is_flagged_by_ndcg_and_the_feature_that_moved() -> None:
    test = adult_test()
    shifted = test.loc[test["capital_loss"] > 0, FEATURES]  # a segment that declares losses
    current = global_importance(model=adult_model(), frame=shifted, config=SAMPLE)
    found = by_scope(explanation_findings(current, reference=training_importance()))

    ndcg = found["attribution_ndcg", "dataset"]
    assert ndcg.status is Status.ALERT
    assert ndcg.value is not None
    assert ndcg.value < 0.9
    assert ndcg.detail["current_top"][0] == "capital_loss"
    moved = found["attribution_share_shift", "feature:capital_loss"]
    assert moved.status is Status.WARN
    assert moved.value is not None
    assert moved.value > 0.1
    assert moved.detail["rank"] == 1
    assert moved.detail["reference_rank"] > 5


def test_without_a_reference_ndcg_is_insufficient_and_shares_are_reported() -> None:
    current = training_importance()
    found = explanation_findings(current, reference=None)
    ndcg = by_scope(found)["attribution_ndcg", "dataset"]
    assert ndcg.status is Status.INSUFFICIENT
    assert ndcg.value is None
    assert "no reference importance" in ndcg.detail["reason"]
    shares = [f.value for f in found if f.metric == "attribution_share"]
    assert sum(s for s in shares if s is not None) == pytest.approx(1.0)


def test_the_kind_runs_through_the_registry_and_flags_a_shifted_window() -> None:
    test = adult_test()
    steady = run_monitor(SPEC, context(test))
    assert steady.status is Status.OK
    assert steady.report["attribution_ndcg"] > 0.98

    progress: list[tuple[float, str]] = []
    shifted_context = context(test[test["capital_loss"] > 0])
    shifted_context.progress = lambda fraction, message: progress.append((fraction, message))
    shifted = run_monitor(SPEC, shifted_context)
    assert shifted.status is Status.ALERT
    assert shifted.report["attribution_ndcg"] < 0.9
    assert shifted.report["importance"]["rows"] == (test["capital_loss"] > 0).sum()
    assert [fraction for fraction, _ in progress] == [0.1, 0.9]
    assert [c.kind for c in shifted.charts] == ["bars", "distribution"]
    bars = shifted.charts[0]
    assert bars.data["labels"][0] == "capital_loss"
    assert render_chart_svg(bars).startswith("<svg")
    json.dumps(shifted.to_dict(), allow_nan=False)


def test_the_kind_without_a_reference_reports_importance_only() -> None:
    outcome = run_monitor(SPEC, context(adult_test(), Baseline(rows=0, columns={})))
    assert outcome.status is Status.OK
    found = by_scope(outcome.findings)
    assert found["attribution_ndcg", "dataset"].status is Status.INSUFFICIENT
    assert [c.kind for c in outcome.charts] == ["bars"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"thresholds": {"ndcg": 0.8}}, "thresholds", r"unknown thresholds \['ndcg'\]"),
        ({"options": {"rows": 5}}, "options", r"unknown options \['rows'\]"),
        ({"options": {"sample_size": 10**6}}, "options.sample_size", "less than or equal"),
        (
            {"thresholds": {"attribution_ndcg": 1.5}},
            "thresholds.attribution_ndcg",
            "less than or equal to 1",
        ),
    ],
)
def test_the_kind_refuses_a_spec_it_cannot_apply(
    fields: dict[str, object], field: str, message: str
) -> None:
    spec = MonitorSpec.model_validate({"kind": "explanations", **fields})
    with pytest.raises(InvalidInput, match=message) as error:
        run_monitor(spec, context(adult_test()))
    assert error.value.field == field


def test_the_kind_needs_the_model_and_its_columns() -> None:
    window = adult_test()
    bare = MonitorContext(window=window, baseline=stored_baseline())
    with pytest.raises(InvalidInput, match="needs the model") as error:
        run_monitor(SPEC, bare)
    assert error.value.field == "model"
    with pytest.raises(InvalidInput, match=r"lacks the model's input columns \['sex'\]"):
        run_monitor(SPEC, context(window.drop(columns="sex")))
