"""What the sync and async clients share: settings, the bounded buffer, verdicts and settling.

A record goes caller → buffer (in memory, at most ``max_queue`` records) → batch → Warden. When
the buffer is full the caller moves its oldest ``batch_size`` records to the disk spool itself
(a bounded write, never a wait on the network) and they are counted in ``stats.spooled``. The
sender takes batches by size or after ``flush_interval`` seconds; a batch that cannot be sent now
goes to the spool and is re-sent, oldest first, once Warden answers again.

Warden's answer decides a batch's fate (:func:`judge`): 2xx sent; connection errors, 408, 409
(a concurrent batch, "send again"), 425, 429 and 5xx retried with exponential backoff and jitter
(``Retry-After`` honoured); 400, 413 and 422 split in halves until the refused records are alone;
any other 4xx (a bad key, an unknown deployment) is kept in the dead-letter directory with the
reason. Re-sending is safe: Warden counts a request id once.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from warden_client._records import Batch, Kind
from warden_client._spool import Spool

__all__ = [
    "Backoff",
    "Buffer",
    "Config",
    "Outcome",
    "Pipeline",
    "Stats",
    "Verdict",
    "judge",
    "judge_error",
]

log = logging.getLogger("warden_client")

MAX_BATCH = 10_000
"""The most records Warden takes in one call."""
_RETRY = frozenset({408, 409, 425, 429})
_SPLIT = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class Config:
    """Where to send and how to batch; see :class:`warden_client.WardenClient` for each field."""

    url: str
    project: str
    api_key: str
    spool_dir: Path
    batch_size: int = 1000
    flush_interval: float = 1.0
    max_queue: int = 10_000
    timeout: float = 10.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0

    def __post_init__(self) -> None:
        """Refuse settings that would break Warden's limits or the memory bound."""
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        if self.max_queue < self.batch_size:
            raise ValueError("max_queue must hold at least one batch (>= batch_size)")
        if self.flush_interval <= 0:
            raise ValueError("flush_interval must be positive")

    def route(self, batch: Batch) -> str:
        """Return the URL of the route taking ``batch``."""
        return (
            f"{self.url.rstrip('/')}/api/v1/projects/{quote(self.project, safe='')}"
            f"/deployments/{quote(batch.deployment, safe='')}/{batch.kind}"
        )


def resolve_key(api_key: str | None) -> str:
    """Return the API key given, else ``WARDEN_API_KEY``.

    Raises:
        ValueError: Neither is set.
    """
    key = api_key or os.environ.get("WARDEN_API_KEY")
    if not key:
        raise ValueError("no API key: pass api_key= or set WARDEN_API_KEY")
    return key


def default_spool_dir(url: str, project: str) -> Path:
    """Return ``WARDEN_SPOOL_DIR``, else a directory per server and project under the user cache."""
    configured = os.environ.get("WARDEN_SPOOL_DIR")
    if configured:
        return Path(configured)
    slug = "".join(c if c.isalnum() else "_" for c in f"{url}_{project}")
    return Path.home() / ".cache" / "warden-client" / slug


@dataclass(slots=True)
class Stats:
    """Counts of records since the client started (never dropped: each is in one of these).

    Attributes:
        logged: Records handed to ``log`` or ``log_label``.
        sent: Records Warden answered for (stored, or already stored: ``duplicates``).
        duplicates: Records Warden already held (re-sent after a lost answer).
        spooled: Records written to the spool (Warden down, buffer full, or closing).
        retries: Failed attempts that will be retried.
        dead: Records Warden refused for good, kept in the dead-letter directory.
    """

    logged: int = 0
    sent: int = 0
    duplicates: int = 0
    spooled: int = 0
    retries: int = 0
    dead: int = 0

    def to_dict(self) -> dict[str, int]:
        """Return the counts as a plain dict."""
        return asdict(self)


class Outcome(Enum):
    """What to do with a batch after one attempt."""

    SENT = "sent"
    RETRY = "retry"
    SPLIT = "split"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One attempt's outcome, with Warden's ``Retry-After`` and its reason in words."""

    outcome: Outcome
    reason: str = ""
    retry_after: float | None = None
    duplicates: int = 0


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), 600.0)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def judge(response: httpx.Response) -> Verdict:
    """Return what Warden's answer means for the batch sent."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            duplicates = int(response.json().get("duplicates", 0))
        except (ValueError, AttributeError, TypeError):
            duplicates = 0
        return Verdict(Outcome.SENT, duplicates=duplicates)
    reason = f"HTTP {status}: {response.text[:2000]}"
    if status in _RETRY or status >= 500:
        return Verdict(Outcome.RETRY, reason, _retry_after(response.headers))
    if status in _SPLIT:
        return Verdict(Outcome.SPLIT, reason)
    return Verdict(Outcome.DEAD, reason)


def judge_error(error: Exception) -> Verdict:
    """Return the verdict of an attempt that got no answer (Warden down, restarting, slow)."""
    return Verdict(Outcome.RETRY, f"{type(error).__name__}: {error}")


class Backoff:
    """Exponential backoff with jitter: waits grow from ``base`` to ``cap``, then hold."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0
        self.ready_at = 0.0

    def fail(self, retry_after: float | None) -> float:
        """Record a failed attempt; return how long to wait before the next one."""
        ceiling = min(self.cap, self.base * 2.0 ** min(self.failures, 32))
        self.failures += 1
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not secrecy
        if retry_after is not None:
            delay = max(delay, retry_after)
        self.ready_at = time.monotonic() + delay
        return delay

    def succeed(self) -> None:
        """Forget past failures: Warden answers again."""
        self.failures = 0
        self.ready_at = 0.0

    @property
    def waiting(self) -> float:
        """Seconds left before the next attempt may be made (0 when it may be made now)."""
        return max(0.0, self.ready_at - time.monotonic())


class Buffer:
    """The bounded in-memory queue between callers and the sender (thread-safe)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[tuple[Kind, str, dict[str, Any]]] = deque()
        self.lock = threading.Lock()
        self.oldest_at: float | None = None

    def __len__(self) -> int:
        return len(self.items)

    def put(self, item: tuple[Kind, str, dict[str, Any]]) -> bool:
        """Append ``item``; ``False`` (nothing appended) when the buffer is full."""
        with self.lock:
            if len(self.items) >= self.capacity:
                return False
            if not self.items:
                self.oldest_at = time.monotonic()
            self.items.append(item)
            return True

    def take(self, count: int) -> list[Batch]:
        """Remove up to ``count`` oldest records, grouped into batches by kind and deployment."""
        with self.lock:
            taken = [self.items.popleft() for _ in range(min(count, len(self.items)))]
            self.oldest_at = time.monotonic() if self.items else None
        batches: dict[tuple[Kind, str], Batch] = {}
        for kind, deployment, record in taken:
            key = (kind, deployment)
            if key not in batches:
                batches[key] = Batch(kind, deployment)
            batches[key].records.append(record)
        return list(batches.values())

    def age(self) -> float:
        """Seconds since the oldest waiting record arrived (0 when empty)."""
        oldest = self.oldest_at
        return 0.0 if oldest is None else time.monotonic() - oldest


@dataclass
class Pipeline:
    """Buffer, spool, backoff and counts, and what to do with each attempt's verdict."""

    config: Config
    buffer: Buffer = field(init=False)
    spool: Spool = field(init=False)
    backoff: Backoff = field(init=False)
    stats: Stats = field(default_factory=Stats)
    lock: threading.Lock = field(default_factory=threading.Lock)
    down: bool = False

    def __post_init__(self) -> None:
        """Open the buffer and the spool (a spool left by an earlier process is sent first)."""
        self.buffer = Buffer(self.config.max_queue)
        self.spool = Spool(self.config.spool_dir)
        self.backoff = Backoff(self.config.backoff_base, self.config.backoff_cap)

    def count(self, name: str, records: int) -> None:
        """Add ``records`` to the counter ``name``."""
        with self.lock:
            setattr(self.stats, name, getattr(self.stats, name) + records)

    def enqueue(self, kind: Kind, deployment: str, record: dict[str, Any]) -> None:
        """Queue one record; when the buffer is full, spill its oldest batch to disk first."""
        self.count("logged", 1)
        item = (kind, deployment, record)
        while not self.buffer.put(item):
            self.park(self.buffer.take(self.config.batch_size))

    def due(self) -> bool:
        """Whether a batch should go now: a full batch waits, or the oldest record is old enough."""
        return len(self.buffer) >= self.config.batch_size or (
            len(self.buffer) > 0 and self.buffer.age() >= self.config.flush_interval
        )

    def park(self, batches: list[Batch]) -> None:
        """Write batches to the spool, to be sent when Warden answers again."""
        for batch in batches:
            self.spool.write(batch)
            self.count("spooled", len(batch.records))

    def settle(self, batch: Batch, verdict: Verdict, path: Path | None = None) -> bool:
        """Apply one attempt's verdict to ``batch`` (read from ``path`` when spooled).

        Returns:
            Whether Warden answered, so the sender may go on with the next batch now.
        """
        size = len(batch.records)
        if verdict.outcome is Outcome.RETRY:
            self.count("retries", 1)
            delay = self.backoff.fail(verdict.retry_after)
            if not self.down:
                log.warning(
                    "Warden did not take a batch (%s); spooling to %s, next try in %.1fs",
                    verdict.reason,
                    self.spool.directory,
                    delay,
                )
            self.down = True
            if path is None:
                self.park([batch])
            return False
        if self.down:
            log.info("Warden answers again; sending the spool")
        self.down = False
        self.backoff.succeed()
        if verdict.outcome is Outcome.SPLIT and size > 1:
            for half in batch.halves():  # resent at once: Warden is up
                self.spool.write(half)
        elif verdict.outcome is Outcome.SENT:
            self.count("sent", size)
            self.count("duplicates", verdict.duplicates)
        else:
            log.error("Warden refused %d record(s) for good (%s)", size, verdict.reason)
            self.spool.bury(batch, verdict.reason)
            self.count("dead", size)
        if path is not None:
            self.spool.remove(path)
        return True
