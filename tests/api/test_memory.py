"""An API process keeps freed memory for its next large request (glibc only)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# In a process of its own: the thresholds are process-wide. Each round allocates and frees a
# 16 MiB block (an upload's body); with the thresholds set, rounds after the first reuse the
# same pages, so they fault in almost none (a round on fresh memory faults in 4,096 pages).
_ROUNDS = """
import resource, sys
from api.memory import keep_freed_memory

if sys.argv[1] == "keep":
    assert keep_freed_memory()
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = bytearray(16 * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(max(faults[1:]))
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_a_large_block_freed_is_reused_rather_than_faulted_in_again() -> None:
    assert _faults("default") >= 2048  # glibc maps each block afresh: its pages fault again
    assert _faults("keep") < 512
