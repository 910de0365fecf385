"""A small run of the inference ingest benchmark: every record stored, figures come out."""

from __future__ import annotations

import json

import pytest

from bench.inference_ingest import main

pytestmark = pytest.mark.slow


def test_small_benchmark_run_stores_every_record(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--batches", "2", "--size", "50", "--repeat", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in (
        "json_rows_per_s", "parquet_rows_per_s", "anchor_rows_per_s",
        "json_to_anchor_ratio", "parquet_to_anchor_ratio", "parquet_body_rows_per_s",
        "server_cpu_parquet_body_rows_per_s", "json_random_ids_rows_per_s",
        "parquet_random_ids_rows_per_s", "parquet_body_random_ids_rows_per_s",
        "server_cpu_parquet_random_ids_rows_per_s",
        "server_cpu_parquet_body_random_ids_rows_per_s",
    ):  # fmt: skip
        assert figures[key] > 0, key
    # each round: JSON, JSON with UUIDs and four uploads; then the warm-up
    assert figures["stored_rows"] == 6 * 2 * 50 + 50 + 2 * 2 * 50
