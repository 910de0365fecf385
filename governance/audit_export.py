"""Reading the audit log out: who may read what, and the JSONL export.

Export format (``warden.audit.export/v1``), one canonical JSON object per line, in sequence order:

- ``{"record": "header", "format": "warden.audit.export/v1", "exported_at": …, "head_seq": n,
  "key_id": …}`` first;
- ``{"record": "entry", …every column…, "hash": …}`` for each entry the reader may see: the
  fields hashed by :func:`governance.audit.entry_payload` plus ``hash``;
- ``{"record": "redacted", "seq": …, "prev_hash": …, "hash": …}`` for entries of projects the
  reader may not see, so the chain still links from 1 to n and an auditor of one project can
  prove their entries belong to the one chain without learning anything else about the others;
- ``{"record": "checkpoint", "seq", "hash", "key_id", "at", "signature", "prev", "every"}``
  right after the entry it pins (``prev`` and ``every`` absent on unchained ``v1`` checkpoints).

Verifying the chain, in the database or in such a file, is :mod:`governance.audit_verify`'s job.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from governance.actors import Actor
from governance.audit import AuditEntry, canonical_json, entry_payload
from governance.checkpoints import AuditCheckpoint, CheckpointRecord, format_time
from governance.permissions import Permission
from governance.roles import ROLE_PERMISSIONS, Role, RoleGrant
from lineage.store import READ_ONLY
from lineage.tables import utcnow

__all__ = ["EXPORT_FORMAT", "export_lines", "readable_project_ids"]

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


def _stored_checkpoints(engine: Engine, *, up_to: int | None = None) -> list[CheckpointRecord]:
    # Plain rows, not ORM objects: a million-entry log has 10,000 checkpoints.
    table: sa.Table = AuditCheckpoint.__table__  # type: ignore[attr-defined]
    query = sa.select(
        table.c.seq,
        table.c.entry_hash,
        table.c.key_id,
        table.c.created_at,
        table.c.signature,
        table.c.prev_hash,
        table.c.every,
    ).order_by(table.c.seq)
    if up_to is not None:
        query = query.where(table.c.seq <= up_to)
    with engine.execution_options(**{READ_ONLY: True}).connect() as connection:
        return [
            CheckpointRecord(
                seq=seq,
                hash=entry_hash,
                key_id=key_id,
                at=format_time(at),
                signature=signature,
                prev=prev,
                every=every,
            )
            for seq, entry_hash, key_id, at, signature, prev, every in connection.execute(query)
        ]


_TABLE: sa.Table = AuditEntry.__table__  # type: ignore[attr-defined]
_CHUNK = 20_000


def _stream(engine: Engine, query: sa.Select[*tuple[Any, ...]]) -> Iterator[Sequence[sa.Row[Any]]]:
    # One read-only transaction, read in large chunks (a server-side cursor on PostgreSQL): a
    # consistent snapshot that takes no write lock, so appends go on meanwhile.
    reader = engine.execution_options(**{READ_ONLY: True})
    with reader.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=_CHUNK).execute(query)
        yield from result.partitions()
        connection.rollback()


def _raw_chunks(
    engine: Engine, query: sa.Select[*tuple[Any, ...]]
) -> Iterator[Sequence[Sequence[Any]]]:
    """Like :func:`_stream`, but plain tuples from the driver's cursor on SQLite.

    No Row objects: building them cost as much as hashing the entries.
    """
    if engine.dialect.name != "sqlite":
        yield from _stream(engine, query)
        return
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    reader = engine.execution_options(**{READ_ONLY: True})
    with reader.connect() as connection:
        connection.exec_driver_sql("SELECT 1")  # begins the read transaction (the snapshot)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(_CHUNK):
                yield rows
        finally:
            cursor.close()
            connection.rollback()


def _entries_in_order(engine: Engine, *, up_to: int | None = None) -> Iterator[sa.RowMapping]:
    query = sa.select(_TABLE)
    if up_to is not None:
        query = query.where(_TABLE.c.seq <= up_to)
    for rows in _stream(engine, query.order_by(_TABLE.c.seq)):
        for row in rows:
            yield row._mapping


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
