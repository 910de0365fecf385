"""A small run of the many-monitors benchmark: real scheduler and worker processes, slots run."""

from __future__ import annotations

import json

import pytest

from bench.many_monitors import main

pytestmark = pytest.mark.slow


def test_small_benchmark_run_schedules_and_runs_every_slot(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--monitors", "4", "--deployments", "2", "--every", "3", "--periods", "2"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["monitors"] == 4
    assert figures["required_runs_per_minute"] == 80.0
    assert figures["slots_due"] >= 4  # at least one period of every monitor
    assert figures["slots_failed"] == 0
    assert figures["slots_finished"] >= 1
    assert figures["worker_cpu_seconds_per_run"] > 0
    assert figures["anchor_seconds_per_run"] > 0
