"""Fairness per slice on the Adult data: a disparity planted in one slice is found there, the
window-wide disparity of the real data is no slice alarm, and unshifted copies raise none over
repeated seeds (the false-alarm rate is printed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitors.drift.slices import SliceConfig, slice_findings
from monitors.findings import Finding, Status
from tests.adult import TARGET, adult_test

REGIONS = np.array(["north", "south", "east", "west", "centre", "islands", "abroad"])
WEIGHTS = np.array([0.2, 0.25, 0.2, 0.15, 0.1, 0.06, 0.04])
CONFIG = SliceConfig(columns=("region",), top_k=5, min_rows=100, fdr=0.05)
SENSITIVE = ["sex", "race"]


def _window(seed: int, rows: int = 6000) -> pd.DataFrame:
    """Adult rows with a region each and decisions wrong 15 % of the time.

    The decisions inherit the data's real disparity: men earn >50K about three times as often.
    """
    rng = np.random.default_rng(seed)
    frame = adult_test().sample(rows, random_state=seed).reset_index(drop=True)
    labels = frame[TARGET].to_numpy()
    wrong = rng.random(len(frame)) < 0.15
    return frame.assign(
        region=rng.choice(REGIONS, size=len(frame), p=WEIGHTS),
        label=labels,
        prediction=np.where(wrong, 1 - labels, labels),
    )


def _judge(window: pd.DataFrame, *, labelled: bool = True) -> tuple[list[Finding], dict]:  # type: ignore[type-arg]
    return slice_findings(
        window, config=CONFIG, monitor="fairness",
        label_column="label" if labelled else None, prediction_column="prediction",
        sensitive_features=SENSITIVE,
    )  # fmt: skip


def _alerts(findings: list[Finding]) -> set[str]:
    return {f.scope for f in findings if f.status == Status.ALERT}


@pytest.mark.parametrize("seed", range(8))
def test_a_disparity_planted_in_one_slice_is_found_there_only(seed: int) -> None:
    window = _window(seed)
    rng = np.random.default_rng(seed + 1)
    target = (window["region"] == "north") & (window["sex"] == "Female")
    refused = target & (window["prediction"] == 1) & (rng.random(len(window)) < 0.6)
    window.loc[refused, "prediction"] = 0
    findings, report = _judge(window)
    alerts = _alerts(findings)
    assert "slice:region=north/group:sex=Female" in alerts
    assert all(scope.startswith("slice:region=north") for scope in alerts), alerts
    gap = next(
        f for f in findings
        if f.scope == "slice:region=north/group:sex=Female"
        and f.metric == "slice_selection_rate_gap"
    )  # fmt: skip
    assert gap.value is not None
    assert gap.value < gap.detail["centre"] - 0.05
    assert gap.detail["adjusted_p"] < CONFIG.fdr
    # Per-group rates per slice value are in the report, for every slice.
    north = next(
        r for r in report["fairness"]
        if r["scope"] == "slice:region=north" and r["feature"] == "sex"
    )  # fmt: skip
    women = window[(window["region"] == "north") & (window["sex"] == "Female")]
    assert north["groups"]["Female"]["selection_rate"] == pytest.approx(
        float((women["prediction"] == 1).mean())
    )
    positives = women[women["label"] == 1]
    assert north["groups"]["Female"]["tpr"] == pytest.approx(
        float((positives["prediction"] == 1).mean())
    )
    assert {r["scope"] for r in report["fairness"]} >= {
        f"slice:region={r}" for r in ["north", "south", "east", "west", "centre"]
    }


def test_the_window_wide_disparity_is_no_slice_alarm() -> None:
    window = _window(2)
    selected = window.groupby("sex")["prediction"].mean()
    assert selected["Male"] - selected["Female"] > 0.1  # a real disparity, everywhere
    findings, _ = _judge(window)
    assert not _alerts(findings)
    assert any(f.metric == "slice_tpr_gap" for f in findings)


def test_without_labels_only_selection_rates_are_compared() -> None:
    findings, report = _judge(_window(3).drop(columns=["label"]), labelled=False)
    metrics = {f.metric for f in findings if f.metric.startswith("slice_") and "gap" in f.metric}
    assert metrics == {"slice_selection_rate_gap"}
    assert all("tpr" not in group for r in report["fairness"] for group in r["groups"].values())


@pytest.mark.slow
def test_unshifted_copies_raise_no_slice_fairness_alarm_over_seeds() -> None:
    seeds = range(20)
    alarms = 0
    for seed in seeds:
        findings, _ = _judge(_window(200 + seed))
        alarms += bool(_alerts([f for f in findings if "/group:" in f.scope]))
    rate = alarms / len(seeds)
    print(f"slice fairness false-alarm rate over {len(seeds)} unshifted seeds: {rate:.2f}")
    assert rate <= 0.1
