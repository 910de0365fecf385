"""Signed, chained checkpoints of the audit chain: "the head was entry *seq* with hash *h*".

A hash chain alone proves that entries were not changed *relative to each other*; whoever can
write the database can rewrite the whole chain. A checkpoint pins the head with an Ed25519
signature made by a key the database does not hold, so a rewrite before a checkpoint is detected
by anyone holding the public key.

Schedule. Once a signer is attached to the engine (:func:`attach_signer`, done by every Warden
process at start-up), :func:`governance.audit.append` signs a checkpoint at exactly every
``every``-th entry after the previous checkpoint, catching up at those exact positions when a
process without the key appended meanwhile; :func:`governance.audit.checkpoint` adds one at the
head on demand. So a verifier knows where checkpoints must be: never more than ``every`` entries
apart, and fewer than ``every`` entries after the last one. A missing checkpoint is a break.

Chain. Each checkpoint signs the digest (SHA-256 of the signed message) of the checkpoint before
it (``prev``, 64 zeros for the first) and the interval in force (``every``): deleting one breaks
its successor's link, and nobody without the key can stretch the interval. The signed message is
the canonical JSON of ``{"at", "every", "hash", "key_id", "prev", "seq", "type":
"warden.audit.checkpoint/v2"}``. Checkpoints signed before chaining existed (``v1``: no ``prev``,
no ``every``) are still verified with their original message.

Each checkpoint is also published outside the database (:mod:`governance.anchors`), where the
database's owner cannot silently rewrite it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, col, select

from governance.signing import Signer
from lineage.tables import Record, utcnow

if TYPE_CHECKING:
    from governance.anchors import Anchor, ChannelRef

__all__ = [
    "CHECKPOINT_TYPE",
    "CHECKPOINT_TYPE_V1",
    "GENESIS_DIGEST",
    "AuditCheckpoint",
    "CheckpointPolicy",
    "CheckpointRecord",
    "attach_signer",
    "checkpoint_message",
    "detach_signer",
    "format_time",
    "last_checkpoint",
    "list_checkpoints",
    "policy_for",
    "sign_heads",
]

CHECKPOINT_TYPE = "warden.audit.checkpoint/v2"
CHECKPOINT_TYPE_V1 = "warden.audit.checkpoint/v1"
GENESIS_DIGEST = "0" * 64

_POLICIES: WeakKeyDictionary[Engine, CheckpointPolicy] = WeakKeyDictionary()


class AuditCheckpoint(Record, table=True):
    """A signature over the audit chain's head at one sequence number (append-only).

    ``prev_hash`` and ``every`` are ``None`` on checkpoints signed before checkpoints were
    chained (``v1``).
    """

    __tablename__ = "governance_audit_checkpoint"

    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, unique=True))
    entry_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    key_id: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    signature: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    prev_hash: str | None = Field(default=None, sa_column=sa.Column(sa.String(64), nullable=True))
    every: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, nullable=True))


def format_time(value: datetime) -> str:
    """Return ``value`` as ISO 8601 UTC with microseconds and ``Z``, the only form hashed."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in the audit log; use an aware UTC value")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def checkpoint_message(
    *,
    seq: int,
    entry_hash: str,
    key_id: str,
    at: str,
    prev: str | None = None,
    every: int | None = None,
) -> bytes:
    """Return the exact bytes a checkpoint signature covers (canonical JSON, UTF-8).

    Without ``prev`` this is the unchained ``v1`` message of older checkpoints.
    """
    body: dict[str, Any] = {"at": at, "hash": entry_hash, "key_id": key_id, "seq": seq}
    if prev is None:
        body["type"] = CHECKPOINT_TYPE_V1
    else:
        body.update({"every": every, "prev": prev, "type": CHECKPOINT_TYPE})
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint as verifiers and anchors see it: the signed fields and the signature.

    The same record is stored in the database, exported, written to anchor files and sent in
    CloudEvents, so all copies can be compared field by field.
    """

    seq: int
    hash: str
    key_id: str
    at: str
    signature: str
    prev: str | None = None
    every: int | None = None

    @classmethod
    def of(cls, checkpoint: AuditCheckpoint) -> CheckpointRecord:
        """Return the record of a stored checkpoint."""
        return cls(
            seq=checkpoint.seq,
            hash=checkpoint.entry_hash,
            key_id=checkpoint.key_id,
            at=format_time(checkpoint.created_at),
            signature=checkpoint.signature,
            prev=checkpoint.prev_hash,
            every=checkpoint.every,
        )

    @classmethod
    def parse(cls, data: dict[str, Any]) -> CheckpointRecord:
        """Build a record from its JSON form (an export, anchor or CloudEvent line).

        Raises:
            KeyError, TypeError, ValueError: A field is missing or has the wrong type.
        """
        prev, every = data.get("prev"), data.get("every")
        return cls(
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            key_id=str(data["key_id"]),
            at=str(data["at"]),
            signature=str(data["signature"]),
            prev=None if prev is None else str(prev),
            every=None if every is None else int(every),
        )

    def message(self) -> bytes:
        """Return the bytes the signature covers."""
        return checkpoint_message(
            seq=self.seq,
            entry_hash=self.hash,
            key_id=self.key_id,
            at=self.at,
            prev=self.prev,
            every=self.every,
        )

    def digest(self) -> str:
        """Return the SHA-256 (hex) of the signed message: what the next checkpoint chains to."""
        return hashlib.sha256(self.message()).hexdigest()

    def fields(self) -> dict[str, Any]:
        """Return the record as JSON-ready data (``prev``/``every`` left out on ``v1``)."""
        data = asdict(self)
        if self.prev is None:
            del data["prev"], data["every"]
        return data

    def line(self) -> dict[str, Any]:
        """Return the export line of this checkpoint."""
        return {"record": "checkpoint", **self.fields()}


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """Who signs an engine's checkpoints, how often, and where each one is also published.

    Attributes:
        signer: The checkpoint key.
        every: Sign a checkpoint every this many entries.
        anchor: The append-only copy outside the database, written after each commit.
        announce_to: Alert channels that receive each checkpoint as a signed CloudEvent.
    """

    signer: Signer
    every: int
    anchor: Anchor | None = None
    announce_to: tuple[ChannelRef, ...] = ()


def attach_signer(
    engine: Engine,
    signer: Signer,
    *,
    every: int,
    anchor: Anchor | None = None,
    announce_to: tuple[ChannelRef, ...] = (),
) -> CheckpointPolicy:
    """Make appends through ``engine`` sign (and publish) a checkpoint every ``every`` entries.

    Raises:
        ValueError: ``every`` is not positive.
    """
    if every < 1:
        raise ValueError(f"checkpoint interval must be at least 1, got {every}")
    policy = CheckpointPolicy(signer=signer, every=every, anchor=anchor, announce_to=announce_to)
    _POLICIES[engine] = policy
    return policy


def detach_signer(engine: Engine) -> None:
    """Stop automatic checkpoints for ``engine`` (on shutdown)."""
    _POLICIES.pop(engine, None)


def policy_for(bind: Session | Engine) -> CheckpointPolicy | None:
    """Return the checkpoint policy of the engine a session writes to, if one is attached."""
    if isinstance(bind, Session):
        found = bind.get_bind()
        engine = found.engine if isinstance(found, sa.Connection) else found
    else:
        engine = bind
    return _POLICIES.get(engine)


def last_checkpoint(*, session: Session) -> AuditCheckpoint | None:
    """Return the checkpoint with the highest sequence number, if any."""
    query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq).desc()).limit(1)
    return session.exec(query).first()


def sign_heads(
    *, session: Session, heads: Sequence[tuple[int, str]], signer: Signer, every: int
) -> list[AuditCheckpoint]:
    """Sign each ``(seq, entry_hash)`` in order, each chained to the one before; add them all.

    The first is chained to the latest stored checkpoint, the others to the one just signed, so
    a batch that passes several checkpoint positions reads the latest once and flushes once.
    Call it under the chain lock (as :mod:`governance.audit` does), so "the latest checkpoint"
    cannot change before these are flushed.
    """
    previous = last_checkpoint(session=session)
    prev = CheckpointRecord.of(previous).digest() if previous is not None else GENESIS_DIGEST
    made: list[AuditCheckpoint] = []
    for seq, entry_hash in heads:
        at = utcnow()
        message = checkpoint_message(
            seq=seq,
            entry_hash=entry_hash,
            key_id=signer.key_id,
            at=format_time(at),
            prev=prev,
            every=every,
        )
        made.append(
            AuditCheckpoint(
                created_at=at,
                seq=seq,
                entry_hash=entry_hash,
                key_id=signer.key_id,
                signature=signer.sign(message),
                prev_hash=prev,
                every=every,
            )
        )
        prev = hashlib.sha256(message).hexdigest()  # this one's digest (CheckpointRecord.digest)
    session.add_all(made)
    session.flush()
    return made


def list_checkpoints(
    *, session: Session, after_seq: int = 0, limit: int = 100
) -> list[AuditCheckpoint]:
    """Return up to ``limit`` checkpoints after ``after_seq``, oldest first (for archiving)."""
    query = (
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.seq) > after_seq)
        .order_by(col(AuditCheckpoint.seq))
        .limit(limit)
    )
    return list(session.exec(query).all())
