"""The ``performance_estimate`` kind: findings, bands, realised values beside estimates, trust.

Data are drawn here with a known truth: a label is drawn from the probability the score states
(after a known distortion the calibration must undo), so the estimate's expected value is known;
"concept drift" flips labels without touching the scores, which only the realised values reveal.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest

from lineage.errors import InvalidInput
from monitors.baseline import Baseline, build_baseline
from monitors.estimation import SECTION, ClassificationReference, reference_estimation
from monitors.findings import Finding, Status
from monitors.kinds import MonitorContext, run_monitor
from monitors.report import build_report
from monitors.spec import MonitorSpec

SPEC = {
    "kind": "performance_estimate",
    "label_column": "label",
    "prediction_column": "prediction",
    "score_column": "score",
}


def _binary(rows: int, *, seed: int, confident: bool = True, flip: float = 0.0) -> pd.DataFrame:
    """Scores whose square is the true probability (so they need calibrating), and labels."""
    rng = np.random.default_rng(seed)
    probability = rng.beta(0.4, 0.4, rows) if confident else rng.beta(4, 4, rows)
    label = (rng.random(rows) < probability).astype(int)
    flipped = rng.random(rows) < flip
    label = np.where(flipped, 1 - label, label)
    score = np.sqrt(probability)
    prediction = (probability >= 0.5).astype(int)
    return pd.DataFrame({
        "x": rng.normal(size=rows), "score": score, "prediction": prediction, "label": label,
    })  # fmt: skip


def _baseline(reference: pd.DataFrame) -> Baseline:
    section = reference_estimation(
        reference, label_column="label", prediction_column="prediction", score_column="score"
    )
    return build_baseline(reference, extras={SECTION: section})


def _finding(findings: list[Finding], metric: str) -> Finding:
    return next(f for f in findings if f.metric == metric)


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return _baseline(_binary(20000, seed=0))


def test_reference_section_is_json_and_reads_back(baseline: Baseline) -> None:
    section = json.loads(baseline.to_json())["extras"][SECTION]
    fitted = ClassificationReference.from_dict(section)
    assert fitted.classes == ("0", "1")
    assert fitted.positive == "1"
    assert fitted.calibrations["1"].x, "square-root scores must be calibrated"
    assert fitted.realised["accuracy"] == pytest.approx(0.8, abs=0.05)


def test_an_estimated_drop_alerts_before_any_label(baseline: Baseline) -> None:
    window = _binary(3000, seed=1, confident=False).drop(columns=["label"])
    result = run_monitor(
        MonitorSpec.model_validate(SPEC), MonitorContext(window=window, baseline=baseline)
    )
    accuracy = _finding(result.findings, "accuracy")
    # Beta(4, 4) probabilities: the expected accuracy is E[max(p, 1 - p)] ~ 0.63.
    assert accuracy.value == pytest.approx(0.63, abs=0.02)
    assert accuracy.status == Status.ALERT
    assert accuracy.detail["estimated"] is True
    assert accuracy.detail["lower"] < accuracy.value < accuracy.detail["upper"]
    assert accuracy.detail["realised"] is None
    reliability = _finding(result.findings, "estimate_reliability")
    assert reliability.status == Status.OK
    assert result.report["realised"] is None
    assert result.report["comparison"] == []


def test_an_unshifted_window_is_ok_and_realised_lands_in_the_band(baseline: Baseline) -> None:
    window = _binary(3000, seed=2)
    result = run_monitor(
        MonitorSpec.model_validate(SPEC), MonitorContext(window=window, baseline=baseline)
    )
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        finding = _finding(result.findings, metric)
        assert finding.status == Status.OK, finding
        assert finding.detail["within_band"] is True, finding
        assert finding.detail["realised_rows"] == 3000
    comparison = {row["metric"]: row for row in result.report["comparison"]}
    assert comparison["accuracy"]["realised"] == pytest.approx(
        float((window["label"] == window["prediction"]).mean())
    )
    assert _finding(result.findings, "estimate_reliability").status == Status.OK
    html = build_report([result], title="estimate").html
    assert "Estimated and realised" in html
    assert "realised" in html


def test_concept_drift_is_reported_as_untrustworthy_not_hidden(baseline: Baseline) -> None:
    window = _binary(3000, seed=3, flip=0.25)
    result = run_monitor(
        MonitorSpec.model_validate(SPEC), MonitorContext(window=window, baseline=baseline)
    )
    accuracy = _finding(result.findings, "accuracy")
    assert accuracy.status == Status.OK, "the scores alone look as good as ever"
    assert accuracy.detail["within_band"] is False
    assert accuracy.detail["trusted"] is False
    reliability = _finding(result.findings, "estimate_reliability")
    assert reliability.status == Status.WARN
    assert any("concept drift" in caveat for caveat in reliability.detail["caveats"])
    assert "Do not trust this estimate blindly" in build_report([result], title="e").html


def test_scores_outside_the_reference_range_are_a_caveat() -> None:
    reference = _binary(5000, seed=4)
    reference["score"] = 0.2 + 0.6 * reference["score"]
    window = _binary(2000, seed=5).drop(columns=["label"])
    result = run_monitor(
        MonitorSpec.model_validate(SPEC),
        MonitorContext(window=window, baseline=_baseline(reference)),
    )
    reliability = _finding(result.findings, "estimate_reliability")
    assert reliability.status == Status.WARN
    assert reliability.value is not None
    assert reliability.value > 0.1
    assert "outside the reference's range" in reliability.detail["caveats"][0]


def test_absolute_floor_judges_the_band(baseline: Baseline) -> None:
    window = _binary(3000, seed=6).drop(columns=["label"])
    spec = MonitorSpec.model_validate({**SPEC, "thresholds": {"min_accuracy": 0.95}})
    accuracy = _finding(
        run_monitor(spec, MonitorContext(window=window, baseline=baseline)).findings, "accuracy"
    )
    assert accuracy.threshold == 0.95
    assert accuracy.status == Status.ALERT


def test_multiclass_estimates_from_logged_probabilities() -> None:
    rng = np.random.default_rng(7)
    classes = ["a", "b", "c"]

    def draw(rows: int) -> pd.DataFrame:
        probabilities = rng.dirichlet([0.5, 0.5, 0.5], rows)
        labels = [classes[rng.choice(3, p=p)] for p in probabilities]
        predictions = [classes[int(np.argmax(p))] for p in probabilities]
        logged = [json.dumps(dict(zip(classes, map(float, p), strict=True))) for p in probabilities]
        return pd.DataFrame({
            "label": labels, "prediction": predictions,
            "probabilities": logged,
            **{f"p_{c}": probabilities[:, k] for k, c in enumerate(classes)},
        })  # fmt: skip

    reference = draw(6000)
    section = reference_estimation(
        reference, label_column="label", prediction_column="prediction",
        probability_columns={c: f"p_{c}" for c in classes},
    )  # fmt: skip
    baseline = build_baseline(reference.drop(columns=["probabilities"]), extras={SECTION: section})
    window = draw(3000)
    result = run_monitor(
        MonitorSpec.model_validate(SPEC), MonitorContext(window=window, baseline=baseline)
    )
    assert result.report["task"] == "classification"
    for row in result.report["comparison"]:
        assert row["within_band"], row
    assert _finding(result.findings, "f1").detail["method"] == "cbpe"


def test_regression_estimates_mae_and_rmse_from_inputs() -> None:
    rng = np.random.default_rng(8)

    def draw(rows: int, spread: float = 1.0) -> pd.DataFrame:
        x = rng.uniform(0, spread * 4, rows)
        kind = rng.choice(["calm", "noisy"], rows)
        noise = np.where(kind == "noisy", 3.0, 0.5) * (1 + x)
        truth = 2 * x + rng.normal(0, noise)
        return pd.DataFrame({"x": x, "kind": kind, "prediction": 2 * x, "label": truth})

    baseline = build_baseline(draw(4000))
    window = draw(2000)
    spec = MonitorSpec.model_validate({**SPEC, "score_column": None, "task": "regression"})
    result = run_monitor(
        spec, MonitorContext(window=window, baseline=baseline, feature_names=["x", "kind"])
    )
    assert result.report["method"] == "dle"
    for row in result.report["comparison"]:
        assert row["within_band"], row
    assert (
        "loss model fitted on the baseline's reference sample (4000 rows)" in result.report["notes"]
    )
    mae = _finding(result.findings, "mae")
    assert mae.value == pytest.approx(result.report["realised"]["mae"], rel=0.1)


def test_bad_specs_name_the_field(baseline: Baseline) -> None:
    window = _binary(500, seed=9)
    for spec, field in (
        ({**SPEC, "thresholds": {"accuracy_drop": 0.1}}, "thresholds"),
        ({**SPEC, "options": {"bins": 3}}, "options"),
        ({**SPEC, "score_column": "missing"}, "score_column"),
        ({**SPEC, "slices": ["x"]}, "slices"),
    ):
        with pytest.raises(InvalidInput, match=r"performance|score") as caught:
            run_monitor(
                MonitorSpec.model_validate(spec), MonitorContext(window=window, baseline=baseline)
            )
        assert caught.value.field == field
    with pytest.raises(InvalidInput, match="baseline built from a reference") as missing:
        run_monitor(
            MonitorSpec.model_validate(SPEC),
            MonitorContext(window=window, baseline=build_baseline(window[["x"]])),
        )
    assert missing.value.field == "baseline"


def test_a_small_window_is_insufficient_never_an_alert(baseline: Baseline) -> None:
    window = _binary(150, seed=10, confident=False).drop(columns=["label"])
    tiny = MonitorSpec.model_validate({**SPEC, "min_rows": 1000})
    assert run_monitor(tiny, MonitorContext(window=window, baseline=baseline)).status == (
        Status.INSUFFICIENT
    )


def test_a_policy_retrains_on_an_estimated_drop(baseline: Baseline) -> None:
    from datetime import UTC, datetime

    from governance.policy_evaluation import PolicyRef, RunFindings, evaluate
    from governance.policy_language import parse_document

    window = _binary(3000, seed=11, confident=False).drop(columns=["label"])
    findings = run_monitor(
        MonitorSpec.model_validate(SPEC), MonitorContext(window=window, baseline=baseline)
    ).findings
    document = parse_document({
        "rules": [{
            "name": "retrain-before-labels",
            "when": {"monitor": "performance_estimate", "metric": "accuracy", "status": "alert"},
            "actions": [{"type": "retrain", "pipeline": "income-train"}],
        }],
    })  # fmt: skip
    now = datetime(2026, 12, 1, tzinfo=UTC)
    decisions = evaluate(
        history=[RunFindings(run_id="r1", source_id="m1", at=now, findings=tuple(findings))],
        policies=[PolicyRef(policy_id=uuid.uuid4(), name="p", version=1, document=document)],
        prior=[],
        now=now,
    )
    assert [d.rule for d in decisions] == ["retrain-before-labels"]


def test_a_window_without_usable_scores_is_insufficient(baseline: Baseline) -> None:
    window = _binary(300, seed=12).drop(columns=["label"]).assign(score=float("nan"))
    result = run_monitor(
        MonitorSpec.model_validate(SPEC), MonitorContext(window=window, baseline=baseline)
    )
    assert result.status == Status.INSUFFICIENT
    assert result.report["rows"] == 0
    assert "300 rows without a prediction or score were left out" in result.report["notes"]


def test_a_small_reference_is_a_caveat() -> None:
    window = _binary(2000, seed=13).drop(columns=["label"])
    result = run_monitor(
        MonitorSpec.model_validate(SPEC),
        MonitorContext(window=window, baseline=_baseline(_binary(600, seed=14))),
    )
    reliability = _finding(result.findings, "estimate_reliability")
    assert reliability.status == Status.WARN
    assert any("only 600 labelled rows" in c for c in reliability.detail["caveats"])
