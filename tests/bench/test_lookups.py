"""A small run of the look-ups benchmark: the seeded chain verifies and every route is timed."""

from __future__ import annotations

import json

import pytest

from bench.lookups import main

pytestmark = pytest.mark.slow


def test_small_benchmark_run_times_each_route_against_its_sql(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--versions", "300", "--runs", "400", "--audit", "3000", "--requests", "3"]
    assert main([*argv, "--verify"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["audit_chain_intact"] is True  # bulk-seeded entries form a valid chain
    assert figures["audit_entries"] == 3000
    for name in (
        "models_list", "models_list_deep", "model_versions_list", "model_version_get",
        "monitor_runs_list", "monitor_runs_list_deep", "monitor_run_get", "monitors_list",
        "audit_list", "audit_list_deep", "audit_list_by_action", "audit_list_by_target",
    ):  # fmt: skip
        route = figures["routes"][name]
        assert set(route) == {
            "count", "p50_ms", "p95_ms", "p99_ms", "server_cpu_ms",
            "anchor_p50_ms", "anchor_p95_ms", "x_anchor_p95",
        }  # fmt: skip
        assert route["count"] == 3, name
        assert 0 < route["p50_ms"] <= route["p95_ms"] <= route["p99_ms"], name
        assert route["server_cpu_ms"] > 0, name
    assert figures["worst_p95_ms"] == max(r["p95_ms"] for r in figures["routes"].values())
