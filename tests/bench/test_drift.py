"""A small run of the drift benchmark: it completes and its JSON line carries the figures."""

from __future__ import annotations

import json

import pytest

from bench.drift import main, make_frame

pytestmark = pytest.mark.slow


def test_small_benchmark_run_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rows", "3000", "--parquet-rows", "20000", "--repeats", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in (
        "rows", "columns", "evidently_seconds", "warden_seconds", "speedup",
        "evidently_peak_mib", "warden_peak_mib", "memory_ratio", "verdict_agreement",
        "read_once_seconds", "warden_read_ratio", "parquet_read_ratio", "rounds",
        "cpu_speedup", "warden_cpu_seconds", "warden_read_cpu_ratio",
    ):  # fmt: skip
        assert key in figures, key
    assert figures["rows"] == 3000
    assert all(
        one["evidently_cpu_seconds"] > 0 and one["cpu_ratio"] > 0 for one in figures["rounds"]
    )
    assert figures["columns"] == 25
    assert figures["verdict_agreement"] >= 24
    assert figures["max_relative_error"] < 0.02
    assert figures["parquet_rows"] == 20000
    assert figures["drifted_columns"] == [
        "num_02", "num_05", "num_09", "num_13", "num_17", "cat_1", "cat_3",
    ]  # fmt: skip


def test_generated_windows_shift_only_the_chosen_columns() -> None:
    reference = make_frame(100, seed=0, current=False)
    current = make_frame(100, seed=0, current=True)
    assert list(reference.columns) == list(current.columns)
    assert reference["num_00"].equals(current["num_00"])
    assert not reference["num_02"].equals(current["num_02"])
