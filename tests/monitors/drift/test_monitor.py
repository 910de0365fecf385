"""The drift and prediction-drift kinds: findings, too-small windows, refused specs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lineage.errors import InvalidInput
from monitors.baseline import Baseline, build_baseline
from monitors.findings import Finding, Status
from monitors.kinds import MonitorContext, run_monitor
from monitors.spec import Kind, MonitorSpec


def test_drift_kind_findings(adult_baseline: Baseline, older_window: pd.DataFrame) -> None:
    received: list[list[Finding]] = []

    def sink(findings: list[Finding]) -> None:
        received.append(findings)

    result = run_monitor(
        MonitorSpec(kind=Kind.DRIFT, thresholds={"drift_share": 0.3}),
        MonitorContext(window=older_window, baseline=adult_baseline),
        sink=sink,
    )
    assert received == [result.findings]
    dataset = next(finding for finding in result.findings if finding.scope == "dataset")
    assert dataset.metric == "drift_share"
    assert dataset.threshold == 0.3
    assert dataset.status is Status.ALERT
    age = next(finding for finding in result.findings if finding.scope == "column:age")
    assert age.metric == "wasserstein_distance"
    assert age.status is Status.WARN
    assert result.status is Status.ALERT


def test_a_small_window_is_insufficient_never_an_alert(adult_baseline: Baseline) -> None:
    window = pd.DataFrame({"age": [90.0] * 20})
    result = run_monitor(
        MonitorSpec(kind=Kind.DRIFT, min_rows=50),
        MonitorContext(window=window, baseline=adult_baseline),
    )
    assert result.status is Status.INSUFFICIENT
    assert [finding.status for finding in result.findings] == [Status.INSUFFICIENT]
    assert result.findings[0].detail == {"rows": 20, "min_rows": 50}


def test_unknown_drift_thresholds_are_refused(
    adult_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    with pytest.raises(InvalidInput, match="unknown thresholds"):
        run_monitor(
            MonitorSpec(kind=Kind.DRIFT, thresholds={"share": 0.5}),
            MonitorContext(window=older_window, baseline=adult_baseline),
        )


def test_prediction_drift_alerts_on_a_shifted_score() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"score": rng.beta(2, 5, 5000)})
    baseline = build_baseline(reference)
    shifted = pd.DataFrame({"score": rng.beta(5, 2, 1000)})
    spec = MonitorSpec(kind=Kind.PREDICTION_DRIFT, score_column="score")
    result = run_monitor(spec, MonitorContext(window=shifted, baseline=baseline))
    assert result.status is Status.ALERT
    same = pd.DataFrame({"score": rng.beta(2, 5, 1000)})
    assert run_monitor(spec, MonitorContext(window=same, baseline=baseline)).status is Status.OK


def test_prediction_drift_needs_a_column(adult_baseline: Baseline) -> None:
    with pytest.raises(InvalidInput, match="prediction_column or score_column"):
        run_monitor(
            MonitorSpec(kind=Kind.PREDICTION_DRIFT, min_rows=1),
            MonitorContext(window=pd.DataFrame({"age": [1.0]}), baseline=adult_baseline),
        )
