"""Slice-level drift and performance on the Adult data: a shift planted in one slice is found,
and unshifted copies raise no slice alarm (the false-alarm rate over seeds is printed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitors.drift.slices import OTHER, SliceConfig, slice_findings
from monitors.findings import Status
from tests.adult import TARGET, adult_test, adult_train

REGIONS = np.array(["north", "south", "east", "west", "centre", "islands", "abroad"])
WEIGHTS = np.array([0.2, 0.25, 0.2, 0.15, 0.1, 0.06, 0.04])
COLUMNS = ["age", "hours_per_week", "education", "workclass"]
CONFIG = SliceConfig(columns=("region",), top_k=5, min_rows=100, fdr=0.05)


def _with_regions(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Give each row a region and a decision that is wrong 15 % of the time."""
    labels = frame[TARGET].to_numpy()
    wrong = rng.random(len(frame)) < 0.15
    return frame.assign(
        region=rng.choice(REGIONS, size=len(frame), p=WEIGHTS),
        label=labels,
        prediction=np.where(wrong, 1 - labels, labels),
    ).reset_index(drop=True)


def _judge(window: pd.DataFrame, reference: pd.DataFrame) -> set[str]:
    findings, report = slice_findings(
        window,
        config=CONFIG,
        monitor="drift",
        reference=reference,
        columns=COLUMNS,
        label_column="label",
        prediction_column="prediction",
    )
    assert report["notes"] == []
    return {f.scope for f in findings if f.status == Status.ALERT}


def test_a_shift_planted_in_one_slice_is_found_there_and_nowhere_else() -> None:
    rng = np.random.default_rng(0)
    reference = _with_regions(adult_train(), rng)
    window = _with_regions(adult_test().sample(6000, random_state=0), rng)
    north = window["region"] == "north"
    window.loc[north, "age"] = window.loc[north, "age"] + 8
    worse = north & (rng.random(len(window)) < 0.2)
    window.loc[worse, "prediction"] = 1 - window.loc[worse, "label"]
    alerts = _judge(window, reference)
    assert "slice:region=north/column:age" in alerts
    assert "slice:region=north" in alerts  # accuracy worse than the rest of the window
    assert all(scope.startswith("slice:region=north") for scope in alerts), alerts
    # The window-wide accuracy hides it: one slice in five.
    overall = float((window["label"] == window["prediction"]).mean())
    assert overall > 0.8


def test_top_k_slices_are_judged_alone_and_the_rest_pooled() -> None:
    rng = np.random.default_rng(1)
    window = _with_regions(adult_test().sample(3000, random_state=1), rng)
    findings, report = slice_findings(
        window, config=CONFIG, monitor="performance", label_column="label",
        prediction_column="prediction",
    )  # fmt: skip
    scopes = {f.scope for f in findings}
    assert scopes == {f"slice:region={r}" for r in ["north", "south", "east", "west", "centre"]} | {
        f"slice:region={OTHER}"
    }
    assert report["top_k"] == 5


@pytest.mark.slow
def test_unshifted_copies_raise_no_slice_alarm_over_seeds() -> None:
    train, test = adult_train(), adult_test()
    seeds = range(20)
    alarms = 0
    for seed in seeds:
        rng = np.random.default_rng(100 + seed)
        reference = _with_regions(train, rng)
        window = _with_regions(test.sample(6000, random_state=seed), rng)
        alarms += bool(_judge(window, reference))
    rate = alarms / len(seeds)
    print(f"slice false-alarm rate over {len(seeds)} unshifted seeds: {rate:.2f}")
    assert rate <= 0.1
