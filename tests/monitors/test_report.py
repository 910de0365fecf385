"""Run reports: the JSON keeps every number, the HTML shows them with inline SVG charts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from monitors.baseline import Baseline
from monitors.findings import Finding, Status
from monitors.kinds import Chart, MonitorContext, MonitorResult, run_monitor
from monitors.report import build_report, render_chart_svg
from monitors.spec import Kind, MonitorSpec


def test_report_json_and_html_carry_the_numbers(
    adult_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    columns = ["age", "sex", "hours_per_week"]
    drift = run_monitor(
        MonitorSpec(kind=Kind.DRIFT, columns=columns, thresholds={"drift_share": 0.3}),
        MonitorContext(window=older_window, baseline=adult_baseline),
    )
    fairness = MonitorResult(
        kind="fairness",
        status=Status.WARN,
        rows=3000,
        findings=[
            Finding("fairness", "selection_rate", "group:sex=Female", 0.0912, None, Status.OK)
        ],
        report={"by_group": {"sex=Female": 0.0912}},
        charts=[
            Chart(
                "Selection rate by group",
                "intervals",
                {
                    "labels": ["Female", "Male"],
                    "values": [0.09, 0.27],
                    "lower": [0.08, 0.25],
                    "upper": [0.1, 0.29],
                    "reference": [0.1, None],
                },
            )
        ],
        seconds=0.5,
    )
    when = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    report = build_report(
        [drift, fairness], title="Income model", meta={"run": "r-1"}, generated_at=when
    )
    document = json.loads(report.to_json())
    assert document["status"] == "alert"
    assert document["generated_at"] == "2026-11-30T12:00:00+00:00"
    age = next(c for c in document["results"][0]["report"]["columns"] if c["column"] == "age")
    assert age["value"] == drift.report["columns"][0]["value"]
    assert age["threshold"] == 0.1
    assert age["drifted"] is True
    assert document["results"][1]["findings"][0]["value"] == 0.0912

    html = report.html
    assert f"{age['value']:.4g}" in html
    assert "0.0912" in html
    assert "Income model" in html
    assert html.count("<svg") == len(drift.charts) + 1
    assert "<script" not in html
    assert "r-1" in html


def test_charts_are_inline_svg_with_text_kept_as_text() -> None:
    svg = render_chart_svg(
        Chart(
            "age: reference vs current",
            "distribution",
            {"labels": ["≤ 30", "(30, 60]"], "reference": [0.4, 0.6], "current": [0.1, 0.9]},
        )
    )
    assert svg.startswith("<svg")
    assert "age: reference vs current" in svg
    gaps = render_chart_svg(
        Chart(
            "by group",
            "intervals",
            {
                "labels": ["a", "b"],
                "values": [0.5, None],
                "lower": [None, None],
                "upper": [0.6, None],
            },
        )
    )
    assert "by group" in gaps
    bars = render_chart_svg(
        Chart("drift", "bars", {"labels": ["a", "b"], "values": [0.2, None], "threshold": 0.1})
    )
    assert bars.startswith("<svg")


def test_nan_values_become_null_in_json() -> None:
    result = MonitorResult(
        kind="quality", status=Status.OK, rows=1, findings=[],
        report={"value": float(np.nan)}, charts=[], seconds=0.0,
    )  # fmt: skip
    document = json.loads(build_report([result], title="t").to_json())
    assert document["results"][0]["report"]["value"] is None


@pytest.mark.slow  # WeasyPrint lays the page out
def test_the_html_page_converts_to_pdf_with_its_charts(
    adult_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    import io

    import weasyprint
    from pypdf import PdfReader

    result = run_monitor(
        MonitorSpec(kind=Kind.DRIFT, columns=["age"]),
        MonitorContext(window=older_window, baseline=adult_baseline),
    )
    report = build_report([result], title="Income model drift")
    pdf = weasyprint.HTML(string=report.html).write_pdf()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Income model drift" in text
    assert f"{result.report['columns'][0]['value']:.4g}" in text
    assert "age (wasserstein_distance)" in text  # a bar label, only drawn inside the SVG
