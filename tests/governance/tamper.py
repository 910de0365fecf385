"""What an insider could do to the audit log, for tests that must catch it.

Each helper performs one step of an attack the way someone with the database owner's rights
(and, for :func:`resign_checkpoints`, the stolen signing key) would: rows written directly,
behind Warden's back, with the append-only triggers dropped first.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance.audit import AuditEntry, entry_hash, entry_payload
from governance.checkpoints import GENESIS_DIGEST, AuditCheckpoint, CheckpointRecord
from governance.signing import Signer
from lineage.tables import utcnow

__all__ = [
    "delete_checkpoints",
    "drop_triggers",
    "resign_checkpoints",
    "rewrite_entry",
    "truncate",
]

_TABLES = ("governance_audit_entry", "governance_audit_checkpoint")


def drop_triggers(engine: Engine) -> None:
    """Remove the append-only triggers (SQLite or PostgreSQL), as a database owner could."""
    with engine.begin() as connection:
        for table in _TABLES:
            if engine.dialect.name == "sqlite":
                for verb in ("update", "delete"):
                    connection.execute(sa.text(f"DROP TRIGGER {table}_no_{verb}"))
            else:
                connection.execute(sa.text(f"DROP TRIGGER {table}_append_only ON {table}"))


def rewrite_entry(engine: Engine, seq: int, **changes: Any) -> None:
    """Change entry ``seq`` and re-hash it and every entry after it: the chain links again."""
    table: sa.Table = AuditEntry.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        rows = [
            dict(row)
            for row in connection.execute(
                sa.select(table).where(table.c.seq >= seq).order_by(table.c.seq)
            ).mappings()
        ]
        previous_hash = rows[0]["prev_hash"]
        for row in rows:
            if row["seq"] == seq:
                row.update(changes)
            row["prev_hash"] = previous_hash
            row["hash"] = entry_hash(entry_payload(row))
            previous_hash = row["hash"]
            connection.execute(
                table.update()
                .where(table.c.seq == row["seq"])
                .values({name: row[name] for name in ("prev_hash", "hash", *changes)})
            )


def delete_checkpoints(engine: Engine, *, from_seq: int = 0, to_seq: int | None = None) -> None:
    """Delete the checkpoint rows from ``from_seq`` to ``to_seq`` (all of them by default)."""
    with engine.begin() as connection:
        connection.execute(
            sa.text("DELETE FROM governance_audit_checkpoint WHERE seq >= :f AND seq <= :t"),
            {"f": from_seq, "t": to_seq if to_seq is not None else 2**62},
        )


def truncate(engine: Engine, *, from_seq: int) -> None:
    """Cut the log at ``from_seq``: its entries and checkpoints from there on are deleted."""
    delete_checkpoints(engine, from_seq=from_seq)
    with engine.begin() as connection:
        connection.execute(
            sa.text("DELETE FROM governance_audit_entry WHERE seq >= :s"), {"s": from_seq}
        )


def resign_checkpoints(engine: Engine, signer: Signer, *, from_seq: int) -> None:
    """Re-sign the checkpoints at or after ``from_seq`` over the entries' current hashes.

    Each one is chained to the (re-signed) one before it, as Warden would have signed them had
    the rewritten chain been the true one: only a copy kept outside the database can tell.
    """
    with Session(engine) as session:
        checkpoints = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq)))
        previous: CheckpointRecord | None = None
        for checkpoint in checkpoints.all():
            if checkpoint.seq >= from_seq:
                entry = session.exec(select(AuditEntry).where(AuditEntry.seq == checkpoint.seq))
                checkpoint.entry_hash = entry.one().hash
                checkpoint.created_at = utcnow()
                checkpoint.key_id = signer.key_id
                checkpoint.prev_hash = previous.digest() if previous is not None else GENESIS_DIGEST
                checkpoint.signature = signer.sign(CheckpointRecord.of(checkpoint).message())
                session.add(checkpoint)
            previous = CheckpointRecord.of(checkpoint)
        session.commit()
