"""Verifying the audit chain, in the database or in an export (:mod:`governance.audit_export`).

Verification (:class:`ChainVerifier`, used by :func:`verify_store` on the database and by
:func:`verify_export` on a file, offline) checks, entry by entry: sequence numbers run 1..n
without gaps; each entry's hash is the SHA-256 of its canonical payload; each ``prev_hash`` is the
previous entry's hash. Then the checkpoints: each signed by the given public key and pinning the
hash the chain actually has at its sequence number; each chained to the one before it; none
missing from the schedule (no two further apart than the interval, nor the head further from the
last one). Last, when an anchor is given (:mod:`governance.anchors`), every anchored checkpoint
must be in the log, unchanged, over the same entry hash: so truncation (with the checkpoints
deleted) and a rewrite re-signed with the stolen key are found against the outside copy. It
reports the first broken sequence number, or that all is intact.

When entry *n*'s own hash is right but its ``prev_hash`` disagrees with entry *n-1*, entry *n-1*
was rewritten and re-hashed (its successor still vouches for the original), so *n-1* is reported.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.engine import Engine
from sqlmodel import select

from governance.anchors import Anchor
from governance.audit import (
    GENESIS_HASH,
    AuditEntry,
    canonical_json,
    entry_hash,
    entry_payload,
    payload_text,
)
from governance.audit_export import _TABLE, _raw_chunks, _stored_checkpoints
from governance.checkpoints import GENESIS_DIGEST, CheckpointRecord, format_time, policy_for
from governance.signing import key_id_of, verify_signature
from lineage.errors import InvalidInput
from lineage.store import create_store_engine, session_scope

__all__ = ["ChainVerifier", "CheckpointRecord", "VerifyReport", "verify_export", "verify_store"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What verification found: intact, or the first sequence number that cannot be trusted.

    Attributes:
        intact: Whether every entry and checkpoint checked out.
        entries: How many entries were read.
        head_seq: The last sequence number verified in order (the head, when intact).
        head_hash: The hash of that entry.
        checkpoints: How many checkpoints were read.
        checkpoints_verified: How many of them carry a valid signature and match the chain.
        first_broken_seq: The first untrustworthy sequence number, ``None`` when intact.
        problem: What was wrong there, and what it means.
        redacted: How many entries were redacted (their content could not be checked).
        every: The checkpoint interval the configuration promises (``None``: not checked).
        anchor: Where the outside copy of the checkpoints was read (``None``: not compared).
        anchored: How many checkpoints the anchor holds that agree with the chain.
        unanchored: How many checkpoints of the chain the anchor does not hold (yet).
    """

    intact: bool
    entries: int
    head_seq: int
    head_hash: str
    checkpoints: int
    checkpoints_verified: int
    first_broken_seq: int | None = None
    problem: str | None = None
    redacted: int = 0
    every: int | None = None
    anchor: str | None = None
    anchored: int = 0
    unanchored: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (API and ``--json``)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LinkedRun:
    """Entries a worker process found sound among themselves (:func:`_hash_range`).

    Every entry from ``first`` to ``last_seq`` (``count`` of them, seq numbers without a gap)
    matches its stored hash, and each but the first records its predecessor's hash;
    ``pinned`` holds their hashes at the sequence numbers the verifier asked for. ``first``
    is ``(seq, prev_hash, hash)``, ``None`` when the run is empty.
    """

    first: tuple[int, str, str] | None
    count: int
    last_seq: int
    last_hash: str
    pinned: dict[int, str]


@dataclass
class ChainVerifier:
    """Check a stream of entries against the chain rules, then the checkpoints against it.

    Feed entries in sequence order with :meth:`entry` (or :meth:`redacted`), then call
    :meth:`finish`. Checkpoints (and the anchor's copies) are given up front so the hashes at
    their sequence numbers can be remembered.

    Attributes:
        checkpoints: The chain's own checkpoints (database or export).
        public_key: The checkpoint key; ``None`` leaves signatures unchecked.
        every: The interval the configuration promises; checkpoints may be no further apart
            (nor the head further from the last one) than it, or than the interval each
            checkpoint signed. ``None`` checks only the signed intervals.
        anchored: The records of the outside copy; ``None`` when no anchor is compared.
        anchor: Where the outside copy was read, for the report.
        anchor_up_to: Ignore anchor records after this seq (an export is a prefix of the log).
    """

    checkpoints: list[CheckpointRecord]
    public_key: Ed25519PublicKey | None
    every: int | None = None
    anchored: list[CheckpointRecord] | None = None
    anchor: str | None = None
    anchor_up_to: int | None = None
    _expected: int = 1
    _last_hash: str = GENESIS_HASH
    _entries: int = 0
    _redacted: int = 0
    _broken: tuple[int, str] | None = None
    _max_seq: int = 0
    _pinned: dict[int, str] = field(default_factory=dict)
    _seqs: frozenset[int] = field(init=False)

    @property
    def pins(self) -> frozenset[int]:
        """The sequence numbers whose hashes the checkpoints and the anchor are compared with."""
        return self._seqs

    def __post_init__(self) -> None:
        if self.anchored is not None and self.anchor_up_to is not None:
            self.anchored = [r for r in self.anchored if r.seq <= self.anchor_up_to]
        self._seqs = frozenset(c.seq for c in self.checkpoints) | frozenset(
            r.seq for r in self.anchored or ()
        )

    def _seen(self, seq: int, stored_hash: str) -> None:
        self._entries += 1
        self._max_seq = max(self._max_seq, seq)
        if seq in self._seqs:
            self._pinned[seq] = stored_hash

    def _break(self, seq: int, problem: str) -> None:
        if self._broken is None or seq < self._broken[0]:
            self._broken = (seq, problem)

    def _link(self, seq: int, prev_hash: str, stored_hash: str) -> bool:
        if seq != self._expected:
            if seq > self._expected:
                self._break(
                    self._expected,
                    f"entries {self._expected}..{seq - 1} are missing (deleted behind Warden's "
                    "back)",
                )
            else:
                self._break(seq, f"entry {seq} appears twice or out of order")
            return False
        if prev_hash != self._last_hash:
            self._break(
                seq - 1,
                f"entry {seq - 1} does not match the hash entry {seq} recorded for it: it was "
                "changed and re-hashed",
            )
            return False
        return True

    def entry(self, payload: Mapping[str, Any], stored_hash: str) -> None:
        """Check one full entry: its place in the sequence, its hash and its link."""
        seq = int(payload["seq"])
        self._seen(seq, stored_hash)
        if self._broken is not None:
            return
        if seq == self._expected and entry_hash(payload) != stored_hash:
            self._break(seq, f"entry {seq} was changed: its content no longer matches its hash")
            return
        if not self._link(seq, str(payload["prev_hash"]), stored_hash):
            return
        self._expected = seq + 1
        self._last_hash = stored_hash

    def hashed(self, seq: int, prev_hash: str, stored_hash: str) -> None:
        """Check one full entry whose content the caller found to match ``stored_hash``."""
        self._seen(seq, stored_hash)
        if self._broken is not None:
            return
        if self._link(seq, prev_hash, stored_hash):
            self._expected = seq + 1
            self._last_hash = stored_hash

    def hashed_many(self, links: Iterable[tuple[int, str, str]]) -> None:
        """Check a run of ``(seq, prev_hash, hash)`` in order, as :meth:`hashed` would each.

        The verifier's hot loop: while the run links up, only the sequence and the link are
        compared; from the first entry that does not, :meth:`hashed` judges one by one.
        """
        rest = iter(links)
        if self._broken is None:
            expected, last, pins, pinned = self._expected, self._last_hash, self._seqs, self._pinned
            for seq, prev_hash, stored_hash in rest:
                if seq != expected or prev_hash != last:
                    self._advance(expected, last)
                    self.hashed(seq, prev_hash, stored_hash)
                    break
                if seq in pins:
                    pinned[seq] = stored_hash
                expected, last = seq + 1, stored_hash
            else:
                self._advance(expected, last)
        for seq, prev_hash, stored_hash in rest:
            self.hashed(seq, prev_hash, stored_hash)

    def linked_run(self, run: LinkedRun) -> None:
        """Take a run another process hashed and linked, as :meth:`hashed_many` would take it.

        Its first entry is judged here (its place and its link to the entry before it); the
        others are only counted and their pins kept, which is all :meth:`hashed_many` does with
        entries that link up (or :meth:`hashed` after a break).
        """
        if run.first is None:
            return
        self.hashed(*run.first)
        self._entries += run.count - 1
        self._max_seq = max(self._max_seq, run.last_seq)
        self._pinned.update(run.pinned)
        if self._broken is None:
            self._expected, self._last_hash = run.last_seq + 1, run.last_hash

    def _advance(self, expected: int, last_hash: str) -> None:
        """Record that the entries from ``_expected`` to ``expected - 1`` linked up."""
        if expected > self._expected:
            self._entries += expected - self._expected
            self._max_seq = max(self._max_seq, expected - 1)
            self._expected, self._last_hash = expected, last_hash

    def unreadable(self, seq: int, stored_hash: str, problem: str) -> None:
        """Count an entry whose stored values are not even of their column's type: a break."""
        self._seen(seq, stored_hash)
        self._break(seq, problem)

    def redacted(self, seq: int, prev_hash: str, stored_hash: str) -> None:
        """Check one redacted entry: its place and link only (its content is not exported)."""
        self._seen(seq, stored_hash)
        self._redacted += 1
        if self._broken is not None:
            return
        if self._link(seq, prev_hash, stored_hash):
            self._expected = seq + 1
            self._last_hash = stored_hash

    def expect_head(self, seq: int) -> None:
        """Check that entries reached ``seq`` (an export's header says where it ends)."""
        if self._max_seq < seq:
            self._break(
                self._max_seq + 1,
                f"the export ends at entry {self._max_seq} but its header says {seq}: lines were "
                "cut from its end",
            )

    def _signed(self, record: CheckpointRecord, where: str) -> bool:
        if self.public_key is None:
            return True
        expected_key = key_id_of(self.public_key)
        if record.key_id != expected_key:
            self._break(
                record.seq,
                f"the checkpoint at {record.seq}{where} names key {record.key_id}, not the "
                f"given public key {expected_key}",
            )
            return False
        if not verify_signature(self.public_key, record.message(), record.signature):
            self._break(
                record.seq,
                f"the checkpoint at {record.seq}{where} has an invalid signature: it was forged "
                "or altered",
            )
            return False
        return True

    def _check_pins(self, ordered: list[CheckpointRecord]) -> int:
        verified = 0
        for checkpoint in ordered:
            if not self._signed(checkpoint, ""):
                continue
            pinned = self._pinned.get(checkpoint.seq)
            if pinned is None:
                self._break(
                    min(checkpoint.seq, self._max_seq + 1),
                    f"a signed checkpoint pins entry {checkpoint.seq}, which is missing: the log "
                    "was truncated",
                )
                continue
            if pinned != checkpoint.hash:
                self._break(
                    checkpoint.seq,
                    f"entry {checkpoint.seq} differs from the hash its signed checkpoint pins: "
                    "the chain was rewritten up to here",
                )
                continue
            if self.public_key is not None:
                verified += 1
        return verified

    def _check_links(self, ordered: list[CheckpointRecord]) -> None:
        previous: CheckpointRecord | None = None
        for checkpoint in ordered:
            if checkpoint.prev is not None:
                expected = previous.digest() if previous is not None else GENESIS_DIGEST
                if checkpoint.prev != expected:
                    after = previous.seq if previous is not None else 0
                    self._break(
                        checkpoint.seq,
                        f"the checkpoint at {checkpoint.seq} chains to a checkpoint that is not "
                        f"in the log: a checkpoint after entry {after} was deleted",
                    )
            previous = checkpoint

    def _check_schedule(self, ordered: list[CheckpointRecord]) -> None:
        # Checkpoints fall every N entries (N signed in each checkpoint, and configured): a
        # stretch longer than the interval in force at either end means one was deleted.
        last_seq, last_every = 0, None
        for checkpoint in ordered:
            # Unchained (v1) checkpoints were signed "N since the last one", wherever that fell:
            # the schedule is judged from the first chained checkpoint on.
            bounds = [b for b in (last_every, checkpoint.every) if b]
            allowed = max(bounds) if bounds and checkpoint.prev is not None else None
            if allowed is not None and checkpoint.seq - last_seq > allowed:
                due = last_seq + allowed
                self._break(
                    due,
                    f"the checkpoint due at entry {due} (every {allowed} entries) is missing: "
                    f"none between entries {last_seq} and {checkpoint.seq}, so checkpoints were "
                    "deleted",
                )
            last_seq, last_every = checkpoint.seq, checkpoint.every or last_every
        bounds = [b for b in (last_every, self.every) if b]
        head = self._max_seq
        if bounds and head - last_seq >= max(bounds):
            due = last_seq + max(bounds)
            self._break(
                due,
                f"the checkpoint due at entry {due} (every {max(bounds)} entries) is missing: "
                "checkpoints were deleted, or entries were appended only by processes without "
                "the signing key since (`warden audit checkpoint` signs the missed positions)",
            )

    def _check_anchor(self, ours: dict[int, CheckpointRecord]) -> tuple[int, int]:
        if self.anchored is None:
            return 0, 0
        at: dict[int, CheckpointRecord] = {}
        for record in sorted(self.anchored, key=lambda r: r.seq):
            if not self._signed(record, " in the anchor"):
                continue
            kept = at.setdefault(record.seq, record)
            if kept != record:
                self._break(
                    record.seq,
                    f"the anchor holds two different checkpoints at entry {record.seq}: one was "
                    "signed later, over a rewritten or truncated chain",
                )
        matched = 0
        for seq, record in at.items():
            pinned = self._pinned.get(seq)
            if pinned is None:
                self._break(
                    min(seq, self._max_seq + 1),
                    f"the anchor holds a checkpoint at entry {seq}, but the log ends at entry "
                    f"{self._max_seq}: entries were truncated (with their checkpoints)",
                )
            elif pinned != record.hash:
                self._break(
                    seq,
                    f"entry {seq} differs from the hash the anchor keeps for it: the chain was "
                    "rewritten up to here" + (" and re-signed" if seq in ours else ""),
                )
            elif seq not in ours:
                self._break(
                    seq,
                    f"the checkpoint at entry {seq} is in the anchor but not in the log: it was "
                    "deleted",
                )
            elif ours[seq] != record:
                self._break(
                    seq,
                    f"the checkpoint at entry {seq} differs from the anchored copy: it was "
                    "re-signed",
                )
            else:
                matched += 1
        return matched, sum(1 for seq in ours if seq not in at)

    def finish(self) -> VerifyReport:
        """Check the checkpoints against the chain, the schedule and the anchor; report."""
        ordered = sorted(self.checkpoints, key=lambda c: c.seq)
        verified = self._check_pins(ordered)
        self._check_links(ordered)
        self._check_schedule(ordered)
        anchored, unanchored = self._check_anchor({c.seq: c for c in ordered})
        broken = self._broken
        return VerifyReport(
            intact=broken is None,
            entries=self._entries,
            head_seq=self._expected - 1,
            head_hash=self._last_hash,
            checkpoints=len(self.checkpoints),
            checkpoints_verified=verified,
            first_broken_seq=broken[0] if broken else None,
            problem=broken[1] if broken else None,
            redacted=self._redacted,
            every=self.every,
            anchor=self.anchor if self.anchored is not None else None,
            anchored=anchored,
            unanchored=unanchored,
        )


_FIELDS = (
    "action", "actor_id", "actor_kind", "actor_name", "created_at", "detail", "id", "outcome",
    "prev_hash", "project_id", "reason", "request_id", "seq", "target", "hash",
)  # fmt: skip
_hex32 = re.compile(r"[0-9a-f]{32}").fullmatch
_sqlite_time = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}"
).fullmatch


def _uuid_text(value: Any) -> str | None:
    """The canonical text of a stored UUID as read raw, ``None`` when it is not the usual form."""
    if type(value) is str:
        if _hex32(value):
            return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
        return None
    return str(value) if isinstance(value, uuid.UUID) else None


def _time_text(value: Any) -> str | None:
    """The canonical text of a stored time as read raw, ``None`` when it is not the usual form."""
    if type(value) is str:
        if not _sqlite_time(value):
            return None
        datetime.fromisoformat(value)  # a real date (ValueError otherwise: the slow path judges)
        return f"{value[:10]}T{value[11:]}Z"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return format_time(value)
    return None


_MEMO_LIMIT = 4096


def _remembered(
    convert: Callable[[Any], str | None], value: Any, memo: dict[str, str]
) -> str | None:
    """Return ``convert(value)``, converting each distinct stored text once (they repeat).

    Only exact ``str`` values are remembered (a pure function of the text); the memo is emptied
    when it grows past a few thousand texts.
    """
    if type(value) is not str:
        return convert(value)
    found = memo.get(value)
    if found is None:
        found = convert(value)
        if found is not None:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[value] = found
    return found


def _fast_hash(
    raw: Sequence[Any], uuids: dict[str, str] | None = None, times: dict[str, str] | None = None
) -> str | None:
    """The hash of a raw row when every field has its usual stored form, else ``None``.

    The text hashed is exactly ``canonical_json(entry_payload(row))`` for such rows (the
    conversions are the ones SQLAlchemy and :func:`entry_payload` apply, done on the raw values),
    so the verdict is that of the general path, which judges every other row.
    """
    (action, actor_id, actor_kind, actor_name, created_at, detail, id_, outcome, prev_hash,
     project_id, reason, request_id, seq, target, _stored) = raw  # fmt: skip
    try:
        uuids = {} if uuids is None else uuids  # one memo per conversion, never shared
        at = _remembered(_time_text, created_at, {} if times is None else times)
        entry_id = _uuid_text(id_)
        actor = None if actor_id is None else _remembered(_uuid_text, actor_id, uuids)
        project = None if project_id is None else _remembered(_uuid_text, project_id, uuids)
        if (
            at is None
            or entry_id is None
            or (actor is None and actor_id is not None)
            or (project is None and project_id is not None)
            or type(seq) is not int
            or type(action) is not str
            or type(actor_kind) is not str
            or type(actor_name) is not str
            or type(detail) is not str
            or type(outcome) is not str
            or type(prev_hash) is not str
            or type(reason) is not str
            or type(target) is not str
            or (request_id is not None and type(request_id) is not str)
        ):
            return None
        text = payload_text(
            action=action,
            actor_id=actor,
            actor_kind=actor_kind,
            actor_name=actor_name,
            created_at=at,
            detail=detail if detail == "{}" else canonical_json(json.loads(detail)),
            id=entry_id,
            outcome=outcome,
            prev_hash=prev_hash,
            project_id=project,
            reason=reason,
            request_id=request_id,
            seq=seq,
            target=target,
        )
    except ValueError:  # JSON that does not parse, an impossible date: the general path judges
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_quote: Callable[[str], str] = json.encoder.encode_basestring


def _quoted_uuid(value: Any, memo: dict[str, str]) -> str | None:
    """The JSON string of a stored hex UUID (remembered: actors and projects repeat)."""
    found = memo.get(value)
    if found is None:
        text = _uuid_text(value)
        if text is None:
            return None
        found = f'"{text}"'
        if type(value) is str:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[value] = found
    return found


def _hashed_run(
    rows: Sequence[Sequence[Any]], start: int, uuids: dict[str, str], times: dict[str, str]
) -> tuple[list[tuple[int, str, str]], int]:
    """Hash ``rows[start:]`` from their stored text until one does not match its stored hash.

    Returns the ``(seq, prev_hash, hash)`` of the rows that matched and the index of the first
    that did not (``len(rows)`` when all did): :func:`_verify_entries` judges that one by the
    slower paths. The text is :func:`governance.audit.payload_text`'s, built inline (this is the
    per-entry cost of verification), with the stored ``detail`` text as it is: every other field
    is written as a JSON token whose end is found from its start (those before ``detail``) or
    from the end of the text (those after), so a text equal to the one that was hashed puts the
    same ``detail`` between them, and that was the canonical text. A matching hash therefore
    means what the general path's match means, and a stored detail that is not canonical (the
    same object rewritten with spaces) simply goes to the slower paths, which parse it.
    """
    links: list[tuple[int, str, str]] = []
    quote, sha256 = _quote, hashlib.sha256
    for index in range(start, len(rows)):
        (action, actor_id, actor_kind, actor_name, created_at, detail, id_, outcome, prev_hash,
         project_id, reason, request_id, seq, target, stored) = rows[index]  # fmt: skip
        try:
            at = times.get(created_at)
            if at is None:
                converted = _time_text(created_at)
                if converted is None:
                    return links, index
                at = f'"{converted}"'
                if type(created_at) is str:
                    if len(times) >= _MEMO_LIMIT:
                        times.clear()
                    times[created_at] = at
            actor = "null" if actor_id is None else _quoted_uuid(actor_id, uuids)
            project = "null" if project_id is None else _quoted_uuid(project_id, uuids)
            entry_id: str | None
            if type(id_) is str and _hex32(id_):
                entry_id = f"{id_[:8]}-{id_[8:12]}-{id_[12:16]}-{id_[16:20]}-{id_[20:]}"
            else:
                entry_id = _uuid_text(id_)
            if (
                actor is None
                or project is None
                or entry_id is None
                or type(seq) is not int
                or type(detail) is not str
            ):
                return links, index
            text = (
                f'{{"action":{quote(action)},"actor_id":{actor},'
                f'"actor_kind":{quote(actor_kind)},"actor_name":{quote(actor_name)},'
                f'"created_at":{at},"detail":{detail},'
                f'"id":"{entry_id}","outcome":{quote(outcome)},"prev_hash":{quote(prev_hash)},'
                f'"project_id":{project},"reason":{quote(reason)},'
                f'"request_id":{"null" if request_id is None else quote(request_id)},'
                f'"seq":{seq},"target":{quote(target)}}}'
            )
            if sha256(text.encode("utf-8")).hexdigest() != stored:
                return links, index
        except (TypeError, ValueError):  # a value of another type, an impossible date
            return links, index
        links.append((seq, prev_hash, stored))
    return links, len(rows)


def _raw_entries(after: int, up_to: int) -> sa.Select[*tuple[Any, ...]]:
    """The entries after ``after`` up to ``up_to`` in seq order, as the driver stores them."""
    raw = sa.select(*(sa.type_coerce(_TABLE.c[name], sa.types.NullType()) for name in _FIELDS))
    return raw.where(_TABLE.c.seq > after, _TABLE.c.seq <= up_to).order_by(_TABLE.c.seq)


def _hash_range(url: str, after: int, up_to: int, pins: frozenset[int]) -> LinkedRun:
    """In a worker process: hash and link the entries after ``after`` up to ``up_to``.

    Stops at the first entry the fast path does not confirm or that does not link to the one
    before it: the parent judges the rest of the range itself (:func:`_verify_entries`), so
    whatever is unusual there gets exactly the serial verdict.
    """
    engine = create_store_engine(url)
    first: tuple[int, str, str] | None = None
    count, last_seq, last_hash = 0, after, ""
    pinned: dict[int, str] = {}
    uuids: dict[str, str] = {}
    times: dict[str, str] = {}
    try:
        for rows in _raw_chunks(engine, _raw_entries(after, up_to)):
            links, index = _hashed_run(rows, 0, uuids, times)
            for seq, prev_hash, stored in links:
                if first is None:
                    first = (seq, prev_hash, stored)
                elif seq != last_seq + 1 or prev_hash != last_hash:
                    return LinkedRun(first, count, last_seq, last_hash, pinned)
                if seq in pins:
                    pinned[seq] = stored
                count, last_seq, last_hash = count + 1, seq, stored
            if index < len(rows):
                break
    finally:
        engine.dispose()
    return LinkedRun(first, count, last_seq, last_hash, pinned)


def _verify_entries(engine: Engine, verifier: ChainVerifier, *, up_to: int, after: int = 0) -> None:
    """Feed entries ``after + 1``..``up_to`` to ``verifier``: raw rows, hashed on the fast path."""
    dialect = engine.dialect
    processors = [
        _TABLE.c[name].type.dialect_impl(dialect).result_processor(dialect, None)
        for name in _FIELDS
    ]
    query = _raw_entries(after, up_to)
    uuids: dict[str, str] = {}
    times: dict[str, str] = {}
    quoted_uuids: dict[str, str] = {}
    quoted_times: dict[str, str] = {}
    for rows in _raw_chunks(engine, query):
        index = 0
        while index < len(rows):
            links, index = _hashed_run(rows, index, quoted_uuids, quoted_times)
            verifier.hashed_many(links)
            if index == len(rows):
                break
            row = rows[index]
            index += 1
            stored = row[14]
            if type(stored) is str and _fast_hash(row, uuids, times) == stored:
                verifier.hashed(row[12], row[8], stored)
                continue
            # The general path, on the values SQLAlchemy would have returned. On SQLite an
            # insider can store text no UUID or time column could hold: that is a break there,
            # not a crash of the verifier.
            values: dict[str, Any] = {}
            for name, process, value in zip(_FIELDS, processors, row, strict=True):
                try:
                    values[name] = process(value) if process is not None else value
                except (TypeError, ValueError):
                    problem = f"entry {row[12]} was changed: its {name} {value!r} is not valid"
                    verifier.unreadable(row[12], str(stored), problem)
                    break
            else:
                try:
                    payload = entry_payload(values)
                except ValueError:
                    problem = f"entry {row[12]} was changed: its detail is not JSON"
                    verifier.unreadable(row[12], str(stored), problem)
                    continue
                verifier.entry(payload, values["hash"])


def _head_seq(engine: Engine) -> int:
    with session_scope(engine) as session:
        return session.exec(select(sa.func.max(AuditEntry.seq))).one() or 0


def verify_store(
    *,
    engine: Engine,
    public_key: Ed25519PublicKey | None,
    every: int | None = None,
    anchor: Anchor | None = None,
) -> VerifyReport:
    """Verify the whole chain, every checkpoint, the schedule and the outside copy.

    Args:
        engine: The store; read in short transactions, so appends continue meanwhile.
        public_key: The checkpoint key; ``None`` checks the chain only (signatures unchecked).
        every: The checkpoint interval the configuration promises; defaults to the one attached
            to ``engine`` (:func:`governance.checkpoints.attach_signer`), if any.
        anchor: The outside copy to compare with; defaults to the engine's attached anchor.
    """
    policy = policy_for(engine)
    if policy is not None:
        every = every or policy.every
        anchor = anchor or policy.anchor
    # Order matters, because appends go on meanwhile. The anchor is written after commit, so
    # reading it before the head never sees a checkpoint whose entry is not read. Checkpoints
    # are read between two reads of the head: those at or below the first head are complete
    # (entries and checkpoints commit together), those past the second were there before the
    # entries they pin vanished (truncation); those in between are new, and left for next time.
    anchored = anchor.read() if anchor is not None else None
    up_to = _head_seq(engine)
    stored = _stored_checkpoints(engine)
    later = _head_seq(engine)
    verifier = ChainVerifier(
        [c for c in stored if c.seq <= up_to or c.seq > later],
        public_key,
        every=every,
        anchored=anchored,
        anchor=anchor.location if anchor is not None else None,
    )
    _verify_parts(engine, verifier, up_to=up_to)
    return verifier.finish()


# A chain at least this long is split into as many parts as there are CPUs: the parent verifies
# the first while spawned workers hash and link the others. A worker costs about a second of
# start-up (a fresh interpreter importing the store), so a small log stays in one process.
PARALLEL_FROM = 200_000


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_WORKER = "from governance.audit_verify import _worker; _worker()"


def _worker() -> None:
    """A worker interpreter's entry: a part's request on stdin, its :class:`LinkedRun` out."""
    asked = json.load(sys.stdin)
    run = _hash_range(asked["url"], asked["after"], asked["up_to"], frozenset(asked["pins"]))
    json.dump(asdict(run), sys.stdout)


def _hash_elsewhere(url: str, after: int, up_to: int, pins: frozenset[int]) -> LinkedRun | None:
    """Run :func:`_hash_range` in a fresh interpreter; ``None`` when that failed.

    A fresh interpreter, not a fork (the caller may be a threaded server) nor
    :mod:`multiprocessing` (which re-imports the caller's main script). The request, with the
    database URL and its password, goes through a pipe, not the command line.
    """
    request = json.dumps({"url": url, "after": after, "up_to": up_to, "pins": sorted(pins)})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    done = subprocess.run(
        [sys.executable, "-c", _WORKER], input=request, capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        _log.warning(
            "an audit verification worker failed; verifying its part here: %s", done.stderr[-2000:]
        )
        return None
    found = json.loads(done.stdout)
    return LinkedRun(
        first=tuple(found["first"]) if found["first"] else None,
        count=found["count"],
        last_seq=found["last_seq"],
        last_hash=found["last_hash"],
        pinned={int(seq): value for seq, value in found["pinned"].items()},
    )


def _verify_parts(engine: Engine, verifier: ChainVerifier, *, up_to: int) -> None:
    """Feed entries 1..``up_to`` to ``verifier``, the later parts hashed by worker processes.

    Each worker returns the run at the start of its part that hashes and links; the parent
    judges the first entry of each run against the entry before it (the boundary), takes the
    run, and verifies the rest of a part itself when the run stopped short (or the worker
    failed). The verifier thus sees what reading the chain in one process gives it: the same
    first break, message and counts. Each part is read in a snapshot of its own; entries at or
    below ``up_to`` do not change (the triggers refuse it), and a change the owner makes anyway
    while verification runs is found by the next one.
    """
    parts = min(_cpus(), up_to // (PARALLEL_FROM // 2))
    if parts < 2 or engine.url.database in (None, "", ":memory:"):
        _verify_entries(engine, verifier, up_to=up_to)
        return
    bounds = [up_to * part // parts for part in range(parts + 1)]
    url = engine.url.render_as_string(hide_password=False)
    pins = verifier.pins
    with ThreadPoolExecutor(parts - 1) as waiting:  # threads that wait on the workers
        runs = [
            waiting.submit(_hash_elsewhere, url, after, end, pins)
            for after, end in itertools.pairwise(bounds[1:])
        ]
        _verify_entries(engine, verifier, up_to=bounds[1])
        for future, (after, end) in zip(runs, itertools.pairwise(bounds[1:]), strict=True):
            run = future.result()
            if run is not None:
                verifier.linked_run(run)
                after = run.last_seq
            if after < end:
                _verify_entries(engine, verifier, after=after, up_to=end)


def _parse(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInput(
                f"line {number} of the export is not JSON ({error}); pass the file exactly as "
                "GET /api/v1/audit/export wrote it",
                field="file",
            ) from error
        if not isinstance(record, dict) or "record" not in record:
            raise InvalidInput(
                f"line {number} of the export has no 'record' kind; is this a Warden audit export?",
                field="file",
            )
        yield number, record


def verify_export(
    lines: Iterable[str],
    *,
    public_key: Ed25519PublicKey | None,
    every: int | None = None,
    anchored: list[CheckpointRecord] | None = None,
    anchor: str | None = None,
) -> VerifyReport:
    """Verify an exported JSONL file offline, without the database.

    A line that does not parse, or an entry whose fields are missing, is reported as broken at
    that entry. ``every`` and ``anchored`` are as for :func:`verify_store`; anchor records after
    the head its header declares are not judged (an export is a prefix of the log), and without a
    header all of them are.
    """
    records = list(_parse(lines))
    checkpoints: list[CheckpointRecord] = []
    declared_head: int | None = None
    for number, record in records:
        try:
            if record["record"] == "checkpoint":
                checkpoints.append(CheckpointRecord.parse(record))
            elif record["record"] == "header":
                declared_head = int(record["head_seq"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(
                f"line {number}: the {record['record']} record lacks or garbles {error}",
                field="file",
            ) from error
    verifier = ChainVerifier(
        checkpoints,
        public_key,
        every=every,
        anchored=anchored,
        anchor=anchor,
        anchor_up_to=declared_head,
    )
    for number, record in records:
        kind = record.pop("record")
        try:
            if kind == "entry":
                stored = str(record.pop("hash"))
                verifier.entry(record, stored)
            elif kind == "redacted":
                verifier.redacted(int(record["seq"]), str(record["prev_hash"]), str(record["hash"]))
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(
                f"line {number}: the {kind} record lacks or garbles {error}", field="file"
            ) from error
    verifier.expect_head(declared_head or 0)
    return verifier.finish()
