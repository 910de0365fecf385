"""A small run of the client-overhead benchmark: it completes and its JSON line has the figures."""

from __future__ import annotations

import json

import pytest

from bench.client_overhead import main

pytestmark = pytest.mark.slow


def test_small_benchmark_run_reports_the_client_against_plain_posts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--records", "3000", "--plain-records", "10", "--stalled-plain", "1"]
    assert main([*argv, "--max-queue", "500", "--batch-size", "100", "--timeout", "0.3"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in (
        "client_healthy", "plain_healthy", "plain_session_healthy", "client_stalled",
        "plain_stalled",
    ):  # fmt: skip
        assert set(figures[name]) == {"median_us", "p99_us", "max_us"}, name
    assert figures["records"] == 3000
    assert figures["client_stalled_spooled"] == 3000  # nothing dropped while Warden hangs
    assert figures["plain_stalled_failures"] == 1
    assert figures["plain_stalled"]["median_us"] >= 300_000  # each plain post waits its timeout
    assert figures["client_stalled"]["median_us"] < 10_000
    assert figures["client_stalled_peak_mib"] < 16
