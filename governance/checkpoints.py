"""Signed checkpoints of the audit chain: "the head was entry *seq* with hash *h*", signed.

A hash chain alone proves that entries were not changed *relative to each other*; whoever can
write the database can rewrite the whole chain. A checkpoint pins the head with an Ed25519
signature made by a key the database does not hold, so a rewrite before the latest checkpoint is
detected by anyone holding the public key, and a truncated log misses checkpointed entries.

Checkpoints are taken every N entries by :func:`governance.audit.append` once a signer is
attached to the engine (:func:`attach_signer`, done by the app at start-up), and on demand by
:func:`governance.audit.checkpoint`. The signed message is the canonical JSON of
``{"at", "hash", "key_id", "seq", "type": "warden.audit.checkpoint/v1"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, col, select

from governance.signing import Signer
from lineage.tables import Record, utcnow

__all__ = [
    "CHECKPOINT_TYPE",
    "AuditCheckpoint",
    "CheckpointPolicy",
    "attach_signer",
    "checkpoint_message",
    "detach_signer",
    "format_time",
    "list_checkpoints",
    "policy_for",
    "sign_head",
]

CHECKPOINT_TYPE = "warden.audit.checkpoint/v1"

_POLICIES: WeakKeyDictionary[Engine, CheckpointPolicy] = WeakKeyDictionary()


class AuditCheckpoint(Record, table=True):
    """A signature over the audit chain's head at one sequence number (append-only)."""

    __tablename__ = "governance_audit_checkpoint"

    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, unique=True))
    entry_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    key_id: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    signature: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """Who signs checkpoints for an engine's audit chain, and every how many entries."""

    signer: Signer
    every: int


def format_time(value: datetime) -> str:
    """Return ``value`` as ISO 8601 UTC with microseconds and ``Z``, the only form hashed."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in the audit log; use an aware UTC value")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def checkpoint_message(*, seq: int, entry_hash: str, key_id: str, at: str) -> bytes:
    """Return the exact bytes a checkpoint signature covers (canonical JSON, UTF-8)."""
    body: dict[str, Any] = {
        "at": at,
        "hash": entry_hash,
        "key_id": key_id,
        "seq": seq,
        "type": CHECKPOINT_TYPE,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def attach_signer(engine: Engine, signer: Signer, *, every: int) -> None:
    """Make appends through ``engine`` sign a checkpoint every ``every`` entries.

    Raises:
        ValueError: ``every`` is not positive.
    """
    if every < 1:
        raise ValueError(f"checkpoint interval must be at least 1, got {every}")
    _POLICIES[engine] = CheckpointPolicy(signer=signer, every=every)


def detach_signer(engine: Engine) -> None:
    """Stop automatic checkpoints for ``engine`` (on shutdown)."""
    _POLICIES.pop(engine, None)


def policy_for(session: Session) -> CheckpointPolicy | None:
    """Return the checkpoint policy of the engine ``session`` writes to, if one is attached."""
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, sa.Connection) else bind
    return _POLICIES.get(engine)


def sign_head(*, session: Session, seq: int, entry_hash: str, signer: Signer) -> AuditCheckpoint:
    """Sign the chain head (``seq``, ``entry_hash``) and add the checkpoint to the session."""
    at = utcnow()
    signature = signer.sign(
        checkpoint_message(seq=seq, entry_hash=entry_hash, key_id=signer.key_id, at=format_time(at))
    )
    checkpoint = AuditCheckpoint(
        created_at=at,
        seq=seq,
        entry_hash=entry_hash,
        key_id=signer.key_id,
        signature=signature,
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


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
