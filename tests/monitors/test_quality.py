"""Data quality on crafted bad values against the real Adult reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lineage.errors import InvalidInput
from monitors.baseline import Baseline
from monitors.findings import Finding, Status
from monitors.kinds import MonitorContext, run_monitor
from monitors.quality import check_quality
from monitors.spec import Kind, MonitorSpec


@pytest.fixture
def bad_window(random_window: pd.DataFrame) -> pd.DataFrame:
    """A clean window of 3,000 rows with known bad values written into it."""
    window = random_window.copy().reset_index(drop=True)
    window["age"] = window["age"].astype(float)
    window.loc[0:29, "age"] = np.nan  # 30 missing
    window.loc[30:34, "age"] = 150.0  # 5 above the reference maximum
    window.loc[35:36, "age"] = np.inf  # 2 infinite
    window.loc[37, "age"] = -1.0  # 1 below the minimum
    window["hours_per_week"] = window["hours_per_week"].astype(object)
    window.loc[0:3, "hours_per_week"] = "forty"  # 4 type errors
    window.loc[4:5, "hours_per_week"] = None  # 2 missing
    window.loc[0:59, "sex"] = "Unknown"  # 60 unseen
    window.loc[60:69, "sex"] = None  # 10 missing
    return window.drop(columns=["fnlwgt"]).assign(device="phone")


def test_counts_of_crafted_bad_values(adult_baseline: Baseline, bad_window: pd.DataFrame) -> None:
    result = check_quality(adult_baseline, bad_window)
    age = result.column("age")
    assert (age.missing, age.out_of_range, age.type_errors) == (30, 8, 0)
    hours = result.column("hours_per_week")
    assert (hours.missing, hours.type_errors, hours.out_of_range) == (2, 4, 0)
    assert "forty" in hours.examples
    sex = result.column("sex")
    assert (sex.missing, sex.unseen) == (10, 60)
    assert sex.examples == ["Unknown"]
    assert result.missing_columns == ["fnlwgt"]
    assert result.extra_columns == ["device"]
    assert result.type_changes == {"hours_per_week": ("int64", "object")}


def test_a_clean_window_has_nothing_to_report(
    adult_baseline: Baseline, random_window: pd.DataFrame
) -> None:
    result = run_monitor(
        MonitorSpec(kind=Kind.QUALITY, columns=["age", "sex", "hours_per_week"]),
        MonitorContext(window=random_window, baseline=adult_baseline),
    )
    assert result.status is Status.OK
    assert result.report["missing_columns"] == []


def _find(findings: list[Finding], metric: str, scope: str) -> Finding:
    return next(f for f in findings if f.metric == metric and f.scope == scope)


def test_quality_findings_judge_shares_against_thresholds(
    adult_baseline: Baseline, bad_window: pd.DataFrame
) -> None:
    result = run_monitor(
        MonitorSpec(kind=Kind.QUALITY, thresholds={"out_of_range_share": 0.005}),
        MonitorContext(window=bad_window, baseline=adult_baseline),
    )
    findings = result.findings
    assert _find(findings, "missing_columns", "dataset").status is Status.ALERT
    assert _find(findings, "extra_columns", "dataset").status is Status.WARN
    assert _find(findings, "type_changed", "column:hours_per_week").status is Status.ALERT
    out_of_range = _find(findings, "out_of_range_share", "column:age")
    assert out_of_range.value == pytest.approx(8 / 3000)
    assert out_of_range.threshold == 0.005
    assert out_of_range.status is Status.OK
    unseen = _find(findings, "unseen_share", "column:sex")
    assert unseen.value == pytest.approx(60 / 3000)
    assert unseen.status is Status.WARN
    assert unseen.detail["count"] == 60
    type_errors = _find(findings, "type_error_share", "column:hours_per_week")
    assert type_errors.status is Status.WARN
    missing = _find(findings, "missing_share", "column:age")
    assert missing.value == pytest.approx(0.01)
    assert missing.status is Status.OK
    assert result.status is Status.ALERT


def test_missing_share_is_judged_against_the_reference_share(
    adult_baseline: Baseline, random_window: pd.DataFrame
) -> None:
    window = random_window.copy()
    window["workclass"] = None
    result = run_monitor(
        MonitorSpec(kind=Kind.QUALITY, columns=["workclass"]),
        MonitorContext(window=window, baseline=adult_baseline),
    )
    missing = _find(result.findings, "missing_share", "column:workclass")
    assert missing.value == 1.0
    assert missing.threshold == pytest.approx(
        adult_baseline.columns["workclass"].missing_share + 0.05
    )
    assert missing.status is Status.WARN


def test_unknown_quality_thresholds_are_refused(
    adult_baseline: Baseline, random_window: pd.DataFrame
) -> None:
    with pytest.raises(InvalidInput, match="unknown thresholds") as error:
        run_monitor(
            MonitorSpec(kind=Kind.QUALITY, thresholds={"nulls": 0.1}),
            MonitorContext(window=random_window, baseline=adult_baseline),
        )
    assert error.value.field == "thresholds"


def test_a_parquet_window_streams_to_the_same_counts(
    adult_baseline: Baseline, bad_window: pd.DataFrame, tmp_path: Path
) -> None:
    window = bad_window.drop(columns=["hours_per_week"])
    path = tmp_path / "window.parquet"
    window.to_parquet(path, index=False)
    streamed = check_quality(adult_baseline, path, batch_rows=700)
    assert streamed.to_dict() == check_quality(adult_baseline, window).to_dict()
    assert streamed.column("age").out_of_range == 8
    assert streamed.missing_columns == ["fnlwgt", "hours_per_week"]
