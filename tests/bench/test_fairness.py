"""A small run of the fairness benchmark: it completes, matches fairlearn, reports its figures."""

from __future__ import annotations

import json

import pytest

from bench.fairness import main

pytestmark = pytest.mark.slow


def test_small_benchmark_run_matches_fairlearn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rows", "2000", "--repeats", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("fairlearn_seconds", "warden_seconds", "speedup", "read_once_seconds", "rounds"):
        assert key in figures, key
    assert figures["rows"] == 2000
    assert figures["max_abs_difference"] <= 1e-12
