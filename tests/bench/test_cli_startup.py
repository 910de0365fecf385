"""A small run of the start-up benchmark: it completes and its JSON line has every figure."""

from __future__ import annotations

import json

import pytest

from bench.cli_startup import main

pytestmark = pytest.mark.slow


def test_small_benchmark_run_reports_commands_against_the_anchor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--runs", "1", "--up-runs", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures["anchor_python_pass"]) == {"wall_s", "cpu_s"}
    for name in (
        "help", "monitors_help", "client_whoami", "client_monitors_list", "client_approvals_list",
    ):  # fmt: skip
        assert set(figures[name]) == {"wall_s", "cpu_s", "x_anchor"}, name
        assert figures[name]["wall_s"] > figures["anchor_python_pass"]["wall_s"] / 2, name
    assert set(figures["import_app"]) == {"wall_s", "cpu_s"}
    assert figures["up_ready_s"] > 0
    assert figures["up_fresh_ready_s"] > 0
    assert figures["up_ready_cpu_s"] > 0
    assert figures["up_fresh_ready_cpu_s"] > 0
