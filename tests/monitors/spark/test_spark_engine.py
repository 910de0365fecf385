"""The Spark engine gives the local engine's findings on Adult, shifted and not.

Spark runs for real (PySpark in local mode on the system's Java); only the summaries are computed
there, so verdicts must be identical and statistics equal up to floating-point summation order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitors.baseline import Baseline
from monitors.drift.verdicts import compare
from monitors.drift.window import summarise_window
from monitors.findings import Status
from monitors.kinds import MonitorContext, run_monitor
from monitors.spark_engine import spark_window_summaries
from monitors.spec import Kind, MonitorSpec
from tests.monitors.spark.same import same, same_findings

pytestmark = pytest.mark.slow


def _planted(window: pd.DataFrame) -> pd.DataFrame:
    """Plant a shift: ten more working hours and every fifth person's workclass unknown."""
    shifted = window.copy()
    shifted["hours_per_week"] = shifted["hours_per_week"] + 10
    shifted.loc[shifted.index[::5], "workclass"] = "?"
    return shifted


@pytest.mark.parametrize("planted", [False, True], ids=["unshifted", "planted-shift"])
def test_drift_findings_match_the_local_engine(
    spark: Any, adult_baseline: Baseline, random_window: pd.DataFrame, planted: bool
) -> None:
    window = _planted(random_window) if planted else random_window
    spec = MonitorSpec(kind=Kind.DRIFT, thresholds={"drift_share": 0.1})
    local = run_monitor(spec, MonitorContext(window=window, baseline=adult_baseline))
    on_spark = run_monitor(
        spec, MonitorContext(window=window, baseline=adult_baseline, engine="spark")
    )
    same_findings(local.findings, on_spark.findings)
    drifted = {f.scope for f in on_spark.findings if f.status is Status.WARN}
    if planted:
        assert {"column:hours_per_week", "column:workclass"} <= drifted
        assert on_spark.status is Status.ALERT
    else:
        assert drifted == set()
        assert on_spark.status is Status.OK


def test_p_value_tests_on_a_small_reference_match(
    spark: Any, small_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    """A small reference keeps raw values: KS and chi-square run exactly on both engines."""
    spec = MonitorSpec(kind=Kind.DRIFT)
    local = run_monitor(spec, MonitorContext(window=older_window, baseline=small_baseline))
    on_spark = run_monitor(
        spec, MonitorContext(window=older_window, baseline=small_baseline, engine="spark")
    )
    same_findings(local.findings, on_spark.findings)
    assert {f.metric for f in on_spark.findings} >= {"ks_p_value", "chisquare_p_value", "z_p_value"}
    assert on_spark.status is Status.ALERT


def test_a_window_in_several_parquet_files_matches_one_local_pass(
    spark: Any, adult_baseline: Baseline, holdout: pd.DataFrame, tmp_path: Path
) -> None:
    """Spark reads a deployment's batch files itself; 16,281 rows drop the raw values."""
    window = _planted(holdout)
    paths = []
    for index, part in enumerate(np.array_split(np.arange(len(window)), 3)):
        path = tmp_path / f"batch-{index}.parquet"
        window.iloc[part].to_parquet(path, index=False)
        paths.append(path)
    columns = list(adult_baseline.columns)
    local = compare(adult_baseline, summarise_window(adult_baseline, window, columns))
    on_spark = compare(
        adult_baseline, spark_window_summaries(adult_baseline, paths, columns, session=spark)
    )
    same(local.to_dict(), on_spark.to_dict())
    assert on_spark.dataset_drift == local.dataset_drift
