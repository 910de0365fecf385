"""A small run of the estimation benchmark: it completes and its JSON line carries the figures."""

from __future__ import annotations

import json

import pytest

from bench.performance_estimate import main

pytestmark = pytest.mark.slow


def test_small_benchmark_run_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rows", "6000"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for side in ("cbpe", "dle"):
        for figure in ("nannyml_seconds", "warden_seconds", "speedup", "nannyml_peak_mib",
                       "warden_peak_mib"):  # fmt: skip
            assert f"{side}_{figure}" in figures, (side, figure)
    assert figures["cbpe_reference_rows"] == figures["cbpe_window_rows"] == 6000
    assert figures["cbpe_max_abs_difference"] < 1e-9
    assert figures["dle_max_relative_difference"] < 0.02
