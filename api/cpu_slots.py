"""Each API process of ``warden serve --workers N`` runs on a core of its own.

An API process's threads (the event loop and the request threads) hand CPython's lock to each
other on every request. Spread over two cores, each hand-over is a wake-up on the other core,
and on a virtual machine a wake-up across cores is costly: ``bench.audit``'s eight writers
(2026-12-07 21:03 UTC, no other work on the machine, 2 cores) got 390 audited actions/s from one
process at 2.65 ms of CPU an action, and 538-568/s at 1.76-1.86 ms with the process held to one
core; two processes gave 565-571/s free and 876-886/s with each on a core of its own. One
process alone is left free (``warden serve``, ``warden up``): it then also has the other cores
for the work its threads do outside that lock (a Parquet upload's reading, hashing and writing,
which held to one core fell from 1.13 to 1.04 million rows/s as a multipart upload and from
1.29 to 0.96 million as the body).

A process claims the lowest free *slot* of its parent (an abstract Unix socket named after the
parent's pid and the slot; Linux frees it when the process ends, so a replacement takes the
slot of the process it replaces), and slot ``k`` is the ``k``-th allowed core, round and round
when there are more processes than cores. Linux only; elsewhere nothing is pinned.
"""

from __future__ import annotations

import os
import socket
import sys

__all__ = ["claim_a_core"]

_HELD: list[socket.socket] = []  # the claim lives as long as the process


def claim_a_core() -> int | None:
    """Hold this process (and the threads it starts from now on) to a core no sibling holds.

    Returns the core, or ``None`` where cores cannot be chosen (not Linux, one core allowed, a
    claim already made).
    """
    if not sys.platform.startswith("linux") or _HELD:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    parent = os.getppid()
    for slot in range(len(allowed) * 64):
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0warden-api-{parent}-{slot}")
        except OSError:
            claim.close()
            continue
        _HELD.append(claim)
        core = allowed[slot % len(allowed)]
        os.sched_setaffinity(0, {core})
        return core
    return None
