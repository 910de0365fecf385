"""API processes of one ``warden serve`` each claim a core; a replacement takes the freed one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

_CLAIM = (
    "import os, sys\n"
    "from api.cpu_slots import claim_a_core\n"
    "print(claim_a_core(), sorted(os.sched_getaffinity(0)), flush=True)\n"
    "sys.stdin.read()\n"  # hold the claim until the test lets go
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
    reason="cores are claimed on Linux with two cores or more",
)


def _claimer() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", _CLAIM],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert process.stdout is not None
    core, affinity = process.stdout.readline().split(" ", 1)
    assert affinity.strip() == f"[{core}]"  # held to that core alone
    return process, int(core)


def test_siblings_spread_over_the_cores_and_a_replacement_takes_the_freed_one() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    claimers = [_claimer() for _ in range(len(allowed) + 1)]
    try:
        cores = [core for _, core in claimers]
        assert sorted(set(cores)) == allowed  # every core used before any is used twice
        assert Counter(cores).most_common(1)[0][1] == 2
        gone, freed = claimers.pop(1)
        gone.communicate("")
        replacement = _claimer()
        claimers.append(replacement)
        assert replacement[1] == freed
    finally:
        for process, _ in claimers:
            process.communicate("")
