"""A small run of the embedding benchmark, inside a network namespace when this machine has one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.embeddings import SURGE, questions, windows

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def test_small_benchmark_run_reports_every_figure_without_a_network() -> None:
    command = [
        sys.executable,
        "-m",
        "bench.embeddings",
        "--texts",
        "60",
        "--throughput-texts",
        "16",
    ]
    isolated = _unshare_works()
    if isolated:
        command = ["unshare", "-n", *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    for key in (
        "throughput_texts_per_second_one_core", "embed_seconds", "drift_seconds",
        "full_run_seconds", "model_load_seconds", "verdicts", "drifted",
    ):  # fmt: skip
        assert key in figures, key
    assert figures["texts_per_side"] == 60
    assert figures["throughput_texts_per_second_one_core"] > 0
    assert set(figures["verdicts"]) == {"domain_classifier_auc", "mmd_p_value", "topic_mix_p_value"}
    if isolated:
        assert figures["network_interfaces"] == ["lo"]


def test_the_current_window_is_one_third_surge() -> None:
    reference, current = windows(90, seed=1)
    intents = dict(questions("train") + questions("test"))
    assert len(reference) == len(current) == 90
    assert sum(intents[text] in SURGE for text in current) >= 30
    assert not any(intents[text] in SURGE for text in reference)
    assert not set(reference) & set(current)
