"""Reading the audit log out: who may read what, the JSONL export, and chain verification.

Export format (``warden.audit.export/v1``), one canonical JSON object per line, in sequence order:

- ``{"record": "header", "format": "warden.audit.export/v1", "exported_at": …, "head_seq": n,
  "key_id": …}`` first;
- ``{"record": "entry", …every column…, "hash": …}`` for each entry the reader may see: the
  fields hashed by :func:`governance.audit.entry_payload` plus ``hash``;
- ``{"record": "redacted", "seq": …, "prev_hash": …, "hash": …}`` for entries of projects the
  reader may not see, so the chain still links from 1 to n and an auditor of one project can
  prove their entries belong to the one chain without learning anything else about the others;
- ``{"record": "checkpoint", "seq", "hash", "key_id", "at", "signature"}`` right after the entry
  it pins.

Verification (:class:`ChainVerifier`, used by :func:`verify_store` on the database and by
:func:`verify_export` on a file, offline) checks, entry by entry: sequence numbers run 1..n
without gaps; each entry's hash is the SHA-256 of its canonical payload; each ``prev_hash`` is the
previous entry's hash. Then every checkpoint: signed by the given public key, and pinning the hash
the chain actually has at that sequence number (so a chain rewritten and re-hashed from entry k
on is caught by the first checkpoint at or after k, and a truncated chain by a checkpoint beyond
its end). It reports the first broken sequence number, or that chain and checkpoints are intact.

When entry *n*'s own hash is right but its ``prev_hash`` disagrees with entry *n-1*, entry *n-1*
was rewritten and re-hashed (its successor still vouches for the original), so *n-1* is reported.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance.actors import Actor
from governance.audit import (
    GENESIS_HASH,
    AuditEntry,
    canonical_json,
    entry_hash,
    entry_payload,
)
from governance.checkpoints import AuditCheckpoint, checkpoint_message, format_time
from governance.permissions import Permission
from governance.roles import ROLE_PERMISSIONS, Role, RoleGrant
from governance.signing import key_id_of, verify_signature
from lineage.errors import InvalidInput
from lineage.store import session_scope
from lineage.tables import utcnow

__all__ = [
    "EXPORT_FORMAT",
    "ChainVerifier",
    "CheckpointRecord",
    "VerifyReport",
    "export_lines",
    "readable_project_ids",
    "verify_export",
    "verify_store",
]

EXPORT_FORMAT = "warden.audit.export/v1"


def readable_project_ids(*, session: Session, actor: Actor) -> frozenset[uuid.UUID] | None:
    """Return the projects whose audit entries ``actor`` may read; ``None`` means all.

    Global administrators read everything, global entries included; anyone else reads the
    entries of projects where one of their roles grants ``audit:read`` (auditor, project admin).
    """
    if actor.is_admin:
        return None
    if actor.principal_id is None:
        return frozenset()
    grants = session.exec(
        select(RoleGrant.project_id, RoleGrant.role).where(
            RoleGrant.principal_id == actor.principal_id
        )
    ).all()
    return frozenset(
        project_id
        for project_id, role in grants
        if Permission.AUDIT_READ in ROLE_PERMISSIONS[Role(role)]
    )


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint as the verifier sees it (from the database or an export line)."""

    seq: int
    hash: str
    key_id: str
    at: str
    signature: str

    @classmethod
    def of(cls, checkpoint: AuditCheckpoint) -> CheckpointRecord:
        """Return the verifier's view of a stored checkpoint."""
        return cls(
            seq=checkpoint.seq,
            hash=checkpoint.entry_hash,
            key_id=checkpoint.key_id,
            at=format_time(checkpoint.created_at),
            signature=checkpoint.signature,
        )

    def line(self) -> dict[str, Any]:
        """Return the export line of this checkpoint."""
        return {"record": "checkpoint", **asdict(self)}


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

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (API and ``--json``)."""
        return asdict(self)


@dataclass
class ChainVerifier:
    """Check a stream of entries against the chain rules, then the checkpoints against it.

    Feed entries in sequence order with :meth:`entry` (or :meth:`redacted`), then call
    :meth:`finish`. Checkpoints are given up front so their sequence numbers can be remembered.
    """

    checkpoints: list[CheckpointRecord]
    public_key: Ed25519PublicKey | None
    _expected: int = 1
    _last_hash: str = GENESIS_HASH
    _entries: int = 0
    _redacted: int = 0
    _broken: tuple[int, str] | None = None
    _max_seq: int = 0
    _pinned: dict[int, str] = field(default_factory=dict)
    _seqs: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        self._seqs = frozenset(c.seq for c in self.checkpoints)

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

    def finish(self) -> VerifyReport:
        """Check the checkpoints against the chain read so far and return the report."""
        verified = 0
        expected_key = key_id_of(self.public_key) if self.public_key is not None else None
        for checkpoint in sorted(self.checkpoints, key=lambda c: c.seq):
            message = checkpoint_message(
                seq=checkpoint.seq,
                entry_hash=checkpoint.hash,
                key_id=checkpoint.key_id,
                at=checkpoint.at,
            )
            if expected_key is not None and checkpoint.key_id != expected_key:
                self._break(
                    checkpoint.seq,
                    f"the checkpoint at {checkpoint.seq} names key {checkpoint.key_id}, not the "
                    f"given public key {expected_key}",
                )
                continue
            if self.public_key is not None and not verify_signature(
                self.public_key, message, checkpoint.signature
            ):
                self._break(
                    checkpoint.seq,
                    f"the checkpoint at {checkpoint.seq} has an invalid signature: it was forged "
                    "or altered",
                )
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
        )


def _stored_checkpoints(engine: Engine, *, up_to: int | None = None) -> list[CheckpointRecord]:
    with session_scope(engine) as session:
        query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq))
        if up_to is not None:
            query = query.where(col(AuditCheckpoint.seq) <= up_to)
        return [CheckpointRecord.of(row) for row in session.exec(query).all()]


def _entries_in_order(
    engine: Engine, *, up_to: int | None = None, batch: int = 1000
) -> Iterator[sa.RowMapping]:
    # Plain rows, one short transaction per batch: the log is append-only, so batches read at
    # different moments still form one consistent prefix, and no reader holds SQLite's write
    # lock for long.
    table: sa.Table = AuditEntry.__table__  # type: ignore[attr-defined]
    after = 0
    while True:
        query = sa.select(table).where(table.c.seq > after)
        if up_to is not None:
            query = query.where(table.c.seq <= up_to)
        with engine.connect() as connection:
            rows = list(connection.execute(query.order_by(table.c.seq).limit(batch)).mappings())
            connection.rollback()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1]["seq"]


def verify_store(*, engine: Engine, public_key: Ed25519PublicKey | None) -> VerifyReport:
    """Verify the whole chain and every checkpoint in the database.

    Args:
        engine: The store; read in short transactions, so appends continue meanwhile.
        public_key: The checkpoint key; ``None`` checks the chain only (signatures unchecked).
    """
    verifier = ChainVerifier(_stored_checkpoints(engine), public_key)
    for row in _entries_in_order(engine):
        verifier.entry(entry_payload(row), row["hash"])
    return verifier.finish()


def export_lines(
    *,
    engine: Engine,
    readable: frozenset[uuid.UUID] | None,
    key_id: str | None,
    up_to: int,
) -> Iterator[str]:
    """Yield the export of entries 1..``up_to``, one canonical JSON line at a time.

    Entries outside ``readable`` (``None`` means all) are redacted to their seq and hashes;
    global entries are readable by global administrators only. Lines end with a newline.
    """
    checkpoints = {c.seq: c for c in _stored_checkpoints(engine, up_to=up_to)}
    header = {
        "exported_at": format_time(utcnow()),
        "format": EXPORT_FORMAT,
        "head_seq": up_to,
        "key_id": key_id,
        "record": "header",
    }
    yield canonical_json(header) + "\n"
    for row in _entries_in_order(engine, up_to=up_to):
        if readable is None or row["project_id"] in readable:
            line = {"record": "entry", **entry_payload(row), "hash": row["hash"]}
        else:
            line = {
                "hash": row["hash"],
                "prev_hash": row["prev_hash"],
                "record": "redacted",
                "seq": row["seq"],
            }
        yield canonical_json(line) + "\n"
        pinned = checkpoints.get(row["seq"])
        if pinned is not None:
            yield canonical_json(pinned.line()) + "\n"


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


def verify_export(lines: Iterable[str], *, public_key: Ed25519PublicKey | None) -> VerifyReport:
    """Verify an exported JSONL file offline, without the database.

    ``lines`` must be re-iterable (a list, or a file read twice): checkpoints are collected in a
    first pass. A line that does not parse, or an entry whose fields are missing, is reported as
    broken at that entry.
    """
    records = list(_parse(lines))
    checkpoints: list[CheckpointRecord] = []
    for number, record in records:
        if record["record"] == "checkpoint":
            try:
                checkpoints.append(
                    CheckpointRecord(
                        seq=int(record["seq"]),
                        hash=str(record["hash"]),
                        key_id=str(record["key_id"]),
                        at=str(record["at"]),
                        signature=str(record["signature"]),
                    )
                )
            except (KeyError, TypeError, ValueError) as error:
                raise InvalidInput(
                    f"line {number}: checkpoint lacks {error}", field="file"
                ) from error
    verifier = ChainVerifier(checkpoints, public_key)
    declared_head = 0
    for number, record in records:
        kind = record.pop("record")
        try:
            if kind == "entry":
                stored = str(record.pop("hash"))
                verifier.entry(record, stored)
            elif kind == "redacted":
                verifier.redacted(int(record["seq"]), str(record["prev_hash"]), str(record["hash"]))
            elif kind == "header":
                declared_head = int(record["head_seq"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(
                f"line {number}: the {kind} record lacks or garbles {error}", field="file"
            ) from error
    verifier.expect_head(declared_head)
    return verifier.finish()
