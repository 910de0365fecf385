"""A small thread pool for ingest work that need not hold up the request's thread.

For work that releases the GIL (hashing, writing a file, numpy and Arrow kernels): on a second
core it runs while the request goes on — the SHA-256 of a kept upload while its columns decode,
writing it while its ids are claimed, merging the id runs in memory after a commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["in_background"]

_T = TypeVar("_T")
_POOL: list[ThreadPoolExecutor] = []
_POOL_GUARD = threading.Lock()


def in_background(work: Callable[[], _T]) -> Future[_T]:
    """Run ``work`` on a thread of this process's ingest pool (two threads, made on first use)."""
    with _POOL_GUARD:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=2, thread_name_prefix="warden-ingest"))
    return _POOL[0].submit(work)
