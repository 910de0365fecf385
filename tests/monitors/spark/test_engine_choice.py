"""Choosing the engine, and merging partial window summaries (what Spark's tasks send back)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from api.settings import Settings
from monitors.baseline import Baseline
from monitors.drift.verdicts import compare
from monitors.drift.window import (
    merge_window,
    summarise_window,
    window_from_dict,
    window_to_dict,
)
from monitors.engine import SummaryEngine


def test_auto_sends_large_windows_and_named_deployments_to_spark() -> None:
    rule = SummaryEngine(mode="auto", row_threshold=1_000, deployments=frozenset({"churn"}))
    assert rule.choose(rows=999, deployment="scoring") == "local"
    assert rule.choose(rows=1_000, deployment="scoring") == "spark"
    assert rule.choose(rows=10, deployment="churn") == "spark"
    assert SummaryEngine(mode="spark").choose(rows=1) == "spark"
    assert SummaryEngine().choose(rows=10**9) == "local"


def test_settings_build_the_rule() -> None:
    settings = Settings(
        monitor_engine="auto", spark_row_threshold=2_000_000, spark_deployments=["churn"]
    )
    rule = settings.summary_engine()
    assert rule == SummaryEngine(
        mode="auto", row_threshold=2_000_000, deployments=frozenset({"churn"}), master="local[2]"
    )


def test_merged_partials_equal_one_pass(
    adult_baseline: Baseline, small_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    """Three shares summarised apart, sent as JSON and merged, judge like one streaming pass."""
    columns = list(adult_baseline.columns)
    for baseline in (adult_baseline, small_baseline):
        whole = summarise_window(baseline, older_window, columns)
        merged = summarise_window(baseline, older_window.iloc[:0], columns)
        for part in np.array_split(np.arange(len(older_window)), 3):
            share = summarise_window(baseline, older_window.iloc[part], columns)
            for name in columns:
                sent = window_from_dict(window_to_dict(share[name]), baseline.column(name))
                merged[name] = merge_window(merged[name], sent)
        one, other = compare(baseline, whole), compare(baseline, merged)
        assert [c.drifted for c in one.columns] == [c.drifted for c in other.columns]
        for left, right in zip(one.columns, other.columns, strict=True):
            assert left.value is not None
            assert right.value is not None
            assert np.isclose(left.value, right.value, rtol=1e-9)
