"""The permission gate's cache of API-key answers, valid only while the identity generation holds.

Every API request authenticated by an API key used to cost the gate two indexed reads in a
transaction of its own (the key and its principal; the project and the caller's roles there),
about a fifth of an audited write's server CPU (``bench.audit``). The answer to those reads is
kept here per process, keyed by a keyed digest of the presented key (never the key itself, nor
the digest the store keeps) and the project name, and reused only while the *identity
generation* (:mod:`governance.identity_generation`) has not moved since the answer was read.
Database triggers move it on any change to API keys, principals, role grants or projects, from
any code path, process or replica, so each request pays one one-row read instead, and a
revocation, a disabled principal, a lowered role or a renamed project is seen by the very next
request.

What is never cached: an unknown, wrong, revoked or expired key, or a project the caller cannot
see (those take the full path on every request, so nobody can fill the cache by probing); an
answer's key expiry is checked against the clock on every use. The cache is bounded (LRU) and
holds one generation at a time: the first request that reads a newer generation empties it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import manager_of_class

from governance.actors import Actor, PrincipalKind
from governance.permissions import Permission
from lineage.projects import Project

__all__ = ["GateCache", "KeyAnswer", "project_snapshot"]

MAX_ENTRIES = 4096


@cache
def _project_columns() -> tuple[str, ...]:
    return tuple(attribute.key for attribute in sa.inspect(Project).column_attrs)


def project_snapshot(project: Project) -> tuple[tuple[str, Any], ...]:
    """Return the column values of ``project``, from which :meth:`KeyAnswer.project` rebuilds it."""
    return tuple((key, getattr(project, key)) for key in _project_columns())


@dataclass(frozen=True, slots=True)
class KeyAnswer:
    """What one valid API key resolved to for one project name (or for routes without one).

    Attributes:
        principal_id: The key's principal.
        name: Its name, as actors and audit entries carry it.
        kind: Person or service account.
        is_admin: Whether it is a global administrator.
        expires_at: The key's expiry, checked against the clock on every use.
        project: The project's column values (``None`` for routes without ``{project}``).
        held: The permissions held there (in any project, for routes without ``{project}``).
    """

    principal_id: uuid.UUID
    name: str
    kind: PrincipalKind
    is_admin: bool
    expires_at: datetime | None
    project: tuple[tuple[str, Any], ...] | None
    held: frozenset[Permission]

    def actor(self, *, request_id: str) -> Actor:
        """Return the request's actor (not yet scoped to the project)."""
        return Actor(
            principal_id=self.principal_id,
            name=self.name,
            kind=self.kind,
            is_admin=self.is_admin,
            request_id=request_id,
        )

    def fresh_project(self) -> Project | None:
        """Return a detached project of this request's own, as the uncached gate hands out.

        Made as the ORM makes a loaded row (an instance without ``__init__``, its columns set,
        then detached with its identity), at about a third of the constructor's CPU.
        """
        if self.project is None:
            return None
        project: Project = manager_of_class(Project).new_instance()
        project.__dict__.update(self.project)
        make_transient_to_detached(project)
        return project

    def expired(self, now: datetime) -> bool:
        """Return whether the key has expired at ``now``."""
        return self.expires_at is not None and self.expires_at <= now


class GateCache:
    """A bounded, thread-safe map of (key digest, project name) to :class:`KeyAnswer`."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._salt = secrets.token_bytes(32)  # per process: digests here match nothing stored
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[bytes, str | None], KeyAnswer] = OrderedDict()
        self._generation: int | None = None

    def digest(self, raw_key: str) -> bytes:
        """Return the keyed digest under which answers for ``raw_key`` are kept."""
        return hashlib.blake2b(raw_key.encode(), key=self._salt, digest_size=32).digest()

    def get(self, *, digest: bytes, name: str | None, generation: int) -> KeyAnswer | None:
        """Return the answer kept at ``generation``; any other generation empties the cache."""
        with self._lock:
            if generation != self._generation:
                # Any other value empties it, a lower one too (a store restored from a backup):
                # a request racing a change at worst empties it once more.
                self._entries.clear()
                self._generation = generation
                return None
            answer = self._entries.get((digest, name))
            if answer is not None:
                self._entries.move_to_end((digest, name))
            return answer

    def put(self, *, digest: bytes, name: str | None, generation: int, answer: KeyAnswer) -> None:
        """Keep ``answer``, read after ``generation`` was; dropped if the generation moved."""
        with self._lock:
            if generation != self._generation:
                return
            self._entries[(digest, name)] = answer
            self._entries.move_to_end((digest, name))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        """Return how many answers are kept."""
        return len(self._entries)

    def digests(self) -> set[bytes]:
        """Return the digests kept (for tests: no raw key is ever among them)."""
        with self._lock:
            return {digest for digest, _name in self._entries}
