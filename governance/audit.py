"""The tamper-evident audit log: one append-only, hash-chained entry per governance action.

Contract for every other room::

    from governance import append

    def promote(*, session: Session, actor: Actor, version: ModelVersion) -> None:
        before = version.alias
        version.alias = "champion"
        append(session=session, actor=actor, action="model.promote",
               target=f"model_version:{version.id}", detail={"before": before, "after": "champion"})

:func:`append` writes into the caller's transaction and never commits, so the action and its
entry land together or not at all. A *denied* attempt must survive the request's rollback: write
it with :func:`append_in_own_transaction` (its own session, committed at once).

One rule for who writes: the service function that performs an action writes its entry, in the
same session (:func:`act_then_audit` is the helper); routes never append for actions, they write
only denials.

Chain. Entry *n* stores ``prev_hash`` (the hash of entry *n-1*, 64 zeros for entry 1) and
``hash = SHA-256(canonical_json(payload))`` where the payload holds every column of the entry
except ``hash`` itself (:func:`entry_payload`). Canonical JSON is RFC 8785-style: object keys
sorted, no whitespace, UTF-8 with non-ASCII characters as they are (no escapes), no NaN/Infinity;
timestamps are ISO 8601 UTC with exactly six fractional digits and ``Z``; UUIDs are lowercase
hyphenated strings. (Floats in ``detail`` use Python's shortest round-trip form, which agrees with
RFC 8785 except for exponents above 1e16; prefer strings or integers for such values.)

Serialisation. Appends must never fork the chain: on SQLite every writer begins with
``BEGIN IMMEDIATE`` (see :mod:`lineage.store`), so one transaction at a time reads the head; on
PostgreSQL :func:`append` takes a transaction-scoped advisory lock before reading the head (the
lock is released at commit, and under READ COMMITTED the next writer then sees the new head).
The unique ``seq`` column is the last line of defence: a fork would fail to insert, not persist.
Reading the head is one indexed ``ORDER BY seq DESC LIMIT 1``: append is O(1).

The database refuses UPDATE and DELETE on the entry and checkpoint tables (triggers created by
the ``audit`` migration branch), so even a bug in Warden cannot rewrite history. Its owner can
drop them; signed, chained checkpoints (:mod:`governance.checkpoints`) copied outside the
database (:mod:`governance.anchors`) are what find that.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, col, select

from governance.actors import Actor, PrincipalKind
from governance.anchors import announce, publish_after_commit
from governance.checkpoints import (
    AuditCheckpoint,
    CheckpointPolicy,
    format_time,
    last_checkpoint,
    policy_for,
    sign_heads,
)
from governance.signing import Signer
from lineage.errors import InvalidInput
from lineage.store import session_scope
from lineage.tables import AwareDateTime, Record, utcnow

__all__ = [
    "ADVISORY_LOCK_KEY",
    "DEFAULT_CHECKPOINT_EVERY",
    "GENESIS_HASH",
    "MAX_DETAIL_BYTES",
    "AuditEntry",
    "AuditFilter",
    "AuditTimeOrder",
    "ChainHead",
    "Outcome",
    "PendingEntry",
    "act_then_audit",
    "append",
    "append_in_own_transaction",
    "append_many",
    "canonical_json",
    "checkpoint",
    "entry_hash",
    "entry_payload",
    "head",
    "iter_entries",
    "list_entries",
    "payload_text",
]

GENESIS_HASH = "0" * 64
DEFAULT_CHECKPOINT_EVERY = 100
_COLUMNS = (
    "action",
    "actor_id",
    "actor_kind",
    "actor_name",
    "created_at",
    "detail",
    "id",
    "outcome",
    "prev_hash",
    "project_id",
    "reason",
    "request_id",
    "seq",
    "target",
)
MAX_DETAIL_BYTES = 64 * 1024
# pg_advisory_xact_lock key: the first 8 bytes of SHA-256("warden.audit"), as a signed bigint.
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"warden.audit").digest()[:8], "big", signed=True)


class Outcome(enum.StrEnum):
    """How an audited attempt ended: done, refused by a rule, or failed while being done."""

    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


class AuditEntry(Record, table=True):
    """One audited action or denied attempt, chained to its predecessor by ``prev_hash``.

    ``created_at`` (from :class:`Record`) is the time of the entry. ``project_id`` is ``None`` for
    global actions (bootstrap, global roles), which only global administrators may read.
    """

    __tablename__ = "governance_audit_entry"
    # The log's list filters with seq after them: a page is an index range, not a sort of every
    # matching entry (SQLite, without statistics, sorted a project's entries for each page).
    # A target is selective, so its index also takes the project, which auditors always filter;
    # so do the actor's and the outcome's (a rare one otherwise walked the project's entries).
    __table_args__ = (
        sa.Index("ix_governance_audit_entry_project_seq", "project_id", "seq"),
        sa.Index("ix_governance_audit_entry_action_seq", "action", "seq"),
        sa.Index("ix_governance_audit_entry_target_project_seq", "target", "project_id", "seq"),
        sa.Index(
            "ix_governance_audit_entry_actor_name_project_seq", "actor_name", "project_id", "seq"
        ),
        sa.Index("ix_governance_audit_entry_actor_id_project_seq", "actor_id", "project_id", "seq"),
        sa.Index("ix_governance_audit_entry_outcome_project_seq", "outcome", "project_id", "seq"),
        # ``?since=``/``?until=``: the first seq at a time (time rises with seq; AuditTimeOrder).
        sa.Index("ix_governance_audit_entry_created_at_seq", "created_at", "seq"),
    )

    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, unique=True))
    actor_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, nullable=True))
    actor_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    actor_kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    project_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(sa.Uuid, sa.ForeignKey("lineage_project.id"), nullable=True),
    )
    action: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    target: str = Field(sa_column=sa.Column(sa.String(300), nullable=False))
    outcome: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    reason: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    request_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(128), nullable=True))
    detail: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False))
    prev_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))

    def detail_object(self) -> dict[str, Any]:
        """Return ``detail`` parsed back from its canonical JSON text."""
        parsed: dict[str, Any] = json.loads(self.detail)
        return parsed


class AuditTimeOrder(Record, table=True):
    """The latest time before which the log's entries may be out of time order (one row at most).

    An entry takes its time under the chain lock, never earlier than the head's (:func:`append`),
    so time rises with ``seq`` and a time bound of :func:`list_entries` is a ``seq`` bound. Entries
    appended before ``audit_0005`` took their time before the lock, so two writers could store
    them out of order; that migration records here the latest time followed by an earlier one,
    if any. A bound at or before it is applied by reading entries, not translated.
    """

    __tablename__ = "governance_audit_time_order"

    unordered_until: dt.datetime = Field(sa_type=AwareDateTime, nullable=False)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last entry's sequence number and hash (``0`` and the genesis hash when empty)."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What a reader asks for; every field narrows the result (``None`` means "any").

    ``project_ids`` is the object-level restriction set by the caller's roles: ``None`` for a
    global administrator (everything, global entries included), otherwise only entries of those
    projects.
    """

    project_ids: frozenset[uuid.UUID] | None = None
    project_id: uuid.UUID | None = None
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: Outcome | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    after_seq: int = 0
    before_seq: int | None = None


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (sorted keys, no whitespace, no NaN).

    UUIDs become strings, aware datetimes ISO 8601 UTC with microseconds, enums their value,
    decimals strings; anything else non-JSON raises ``TypeError``/``ValueError``.
    """
    return _CANONICAL.encode(value)


# What ``json.dumps`` with these arguments builds on every call, built once (the same output).
_CANONICAL = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_json_default,
)


def entry_payload(entry: AuditEntry | Mapping[Any, Any]) -> dict[str, Any]:
    """Return what an entry's hash covers: every column but ``hash``, in canonical types.

    Accepts an :class:`AuditEntry` or a row mapping of its table (verification and export read
    plain rows: building ORM objects would cost more than hashing them).
    """
    row: Mapping[Any, Any] = (
        entry if isinstance(entry, Mapping) else {name: getattr(entry, name) for name in _COLUMNS}
    )
    actor_id, project_id = row["actor_id"], row["project_id"]
    return {
        "action": row["action"],
        "actor_id": str(actor_id) if actor_id else None,
        "actor_kind": row["actor_kind"],
        "actor_name": row["actor_name"],
        "created_at": format_time(row["created_at"]),
        "detail": json.loads(row["detail"]),
        "id": str(row["id"]),
        "outcome": row["outcome"],
        "prev_hash": row["prev_hash"],
        "project_id": str(project_id) if project_id else None,
        "reason": row["reason"],
        "request_id": row["request_id"],
        "seq": row["seq"],
        "target": row["target"],
    }


def entry_hash(payload: Mapping[str, Any]) -> str:
    """Return the SHA-256 (hex) of the canonical JSON of an entry payload."""
    return hashlib.sha256(canonical_json(dict(payload)).encode("utf-8")).hexdigest()


_quote: Callable[[str], str] = json.encoder.encode_basestring


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def payload_text(
    *,
    action: str,
    actor_id: str | None,
    actor_kind: str,
    actor_name: str,
    created_at: str,
    detail: str,
    id: str,
    outcome: str,
    prev_hash: str,
    project_id: str | None,
    reason: str,
    request_id: str | None,
    seq: int,
    target: str,
) -> str:
    """Return ``canonical_json(entry_payload(...))`` from fields already in canonical form.

    The same text, built by joining the fields in their sorted order (the string quoting is the
    one ``json.dumps`` uses), without a dict or a sort per entry: appends and verification hash
    every entry, so this is their hot path. ``detail`` is the canonical JSON text of the detail;
    ``created_at`` the formatted time; ids hyphenated lowercase strings.
    """
    return (
        f'{{"action":{_quote(action)},"actor_id":{_text(actor_id)},'
        f'"actor_kind":{_quote(actor_kind)},"actor_name":{_quote(actor_name)},'
        f'"created_at":{_quote(created_at)},"detail":{detail},"id":{_quote(id)},'
        f'"outcome":{_quote(outcome)},"prev_hash":{_quote(prev_hash)},'
        f'"project_id":{_text(project_id)},"reason":{_quote(reason)},'
        f'"request_id":{_text(request_id)},"seq":{seq},"target":{_quote(target)}}}'
    )


def _row_hash(row: Mapping[str, Any], created_at: str) -> str:
    """Return the hash of a row being appended (the documented one, without a dict round trip).

    ``row["detail"]`` is already canonical JSON text (:func:`_row` made it so), so it goes in
    as it is rather than parsed and serialised again.
    """
    actor_id, project_id = row["actor_id"], row["project_id"]
    text = payload_text(
        action=row["action"],
        actor_id=str(actor_id) if actor_id else None,
        actor_kind=row["actor_kind"],
        actor_name=row["actor_name"],
        created_at=created_at,
        detail=row["detail"],
        id=str(row["id"]),
        outcome=row["outcome"],
        prev_hash=row["prev_hash"],
        project_id=str(project_id) if project_id else None,
        reason=row["reason"],
        request_id=row["request_id"],
        seq=row["seq"],
        target=row["target"],
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lock_chain(session: Session) -> None:
    connection = session.connection()  # on SQLite this is BEGIN IMMEDIATE: the write lock
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        )


def head(*, session: Session) -> ChainHead:
    """Return the current head of the chain (read in the caller's transaction)."""
    row = session.exec(
        select(AuditEntry.seq, AuditEntry.hash).order_by(col(AuditEntry.seq).desc()).limit(1)
    ).first()
    if row is None:
        return ChainHead(seq=0, hash=GENESIS_HASH)
    return ChainHead(seq=row[0], hash=row[1])


def _check_text(value: str, *, field: str, limit: int, required: bool) -> None:
    if required and not value.strip():
        raise InvalidInput(f"audit {field} is empty; say what was done or to what", field=field)
    if len(value) > limit:
        raise InvalidInput(
            f"audit {field} is {len(value)} characters; keep it under {limit} and put the rest "
            "into detail",
            field=field,
        )


def _canonical_detail(detail: Mapping[str, Any] | None) -> str:
    try:
        text = canonical_json(dict(detail or {}))
    except (TypeError, ValueError) as error:
        raise InvalidInput(
            f"audit detail is not canonical JSON ({error}); pass str/int/bool/None, lists and "
            "dicts with string keys (UUIDs, datetimes, enums are converted)",
            field="detail",
        ) from error
    if len(text.encode("utf-8")) > MAX_DETAIL_BYTES:
        raise InvalidInput(
            f"audit detail is larger than {MAX_DETAIL_BYTES} bytes; record ids and a summary, "
            "not whole documents",
            field="detail",
        )
    return text


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """One action for :func:`append_many`: the fields of :func:`append` but the actor."""

    action: str
    target: str
    outcome: Outcome | Literal["success", "denied", "failure"] = Outcome.SUCCESS
    reason: str = ""
    detail: Mapping[str, Any] | None = None
    project_id: uuid.UUID | None = None


def _checked_actor(actor: Actor) -> str:
    _check_text(actor.name, field="actor.name", limit=200, required=True)
    _check_text(actor.request_id or "", field="actor.request_id", limit=128, required=False)
    return actor.kind.value if isinstance(actor.kind, PrincipalKind) else str(actor.kind)


def _row(actor: Actor, kind: str, pending: PendingEntry) -> dict[str, Any]:
    """Check one pending entry; return its row without id, time, seq and hashes (:func:`_chain`)."""
    _check_text(pending.action, field="action", limit=100, required=True)
    _check_text(pending.target, field="target", limit=300, required=True)
    _check_text(pending.reason, field="reason", limit=4000, required=False)
    try:
        outcome = Outcome(pending.outcome)
    except ValueError as error:
        raise InvalidInput(
            f"audit outcome {pending.outcome!r} is not one of success, denied, failure",
            field="outcome",
        ) from error
    return {
        "actor_id": actor.principal_id,
        "actor_name": actor.name,
        "actor_kind": kind,
        "project_id": pending.project_id or actor.project_id,
        "action": pending.action,
        "target": pending.target,
        "outcome": outcome.value,
        "reason": pending.reason,
        "request_id": actor.request_id,
        "detail": _canonical_detail(pending.detail),
    }


_TABLE: sa.Table = AuditEntry.__table__  # type: ignore[attr-defined]
_CHECKPOINTS: sa.Table = AuditCheckpoint.__table__  # type: ignore[attr-defined]
# The head and the last checkpoint's position in one indexed read (both are ``max(seq)``).
_HEAD_AND_SEALED = (
    sa.select(
        _TABLE.c.seq,
        _TABLE.c.hash,
        sa.select(sa.func.max(_CHECKPOINTS.c.seq)).scalar_subquery(),
        _TABLE.c.created_at,
    )
    .order_by(_TABLE.c.seq.desc())
    .limit(1)
)
_INSERT = sa.insert(_TABLE)


def _insert(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``; on SQLite straight to the driver, with SQLAlchemy's column conversions.

    SQLAlchemy's per-row parameter handling cost more than SQLite's insert itself. Values are
    converted a column at a time; a batch repeats its time, actor and projects, so each distinct
    value is converted once (the conversions are pure functions of the value).
    """
    dialect = connection.dialect
    if dialect.name != "sqlite" or len(rows) == 1:
        connection.execute(_INSERT, rows)
        return
    sql, converters = _driver_insert(dialect)
    columns: list[list[Any]] = []
    for name, process in converters:
        values = [row[name] for row in rows]
        if process is not None and name == "id":
            values = [process(value) for value in values]
        elif process is not None:
            done: dict[Any, Any] = {}
            values = [done[v] if v in done else done.setdefault(v, process(v)) for v in values]
        columns.append(values)
    connection.exec_driver_sql(sql, list(zip(*columns, strict=True)))


@lru_cache(maxsize=8)
def _driver_insert(
    dialect: sa.Dialect,
) -> tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]:
    """Return the driver's ``INSERT … VALUES (?, …)`` and each column's conversion, in order."""
    compiled = _INSERT.compile(dialect=dialect)
    return str(compiled), tuple(
        (name, _TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in compiled.positiontup or ()
    )


def _ordered_ids(at: dt.datetime, count: int) -> Iterator[uuid.UUID]:
    """``count`` rising ids for entries written at ``at``: UUIDv7 (RFC 9562), time then random.

    The id is the table's primary key: random (v4) ids put every insert at a random place in its
    index, which made an insert cost twice what it does at the index's end. The 74 bits after
    the time in milliseconds are one random start plus the entry's place in the batch (RFC 9562
    "monotonic random"), so a batch's ids rise with its ``seq`` and stay unguessable.
    """
    millis = int(at.timestamp() * 1000) & (2**48 - 1)
    start = secrets.randbits(73)
    for number in range(count):
        rand = start + number
        yield uuid.UUID(
            int=millis << 80 | 7 << 76 | (rand >> 62) << 64 | 2 << 62 | (rand & (2**62 - 1))
        )


def _chain(session: Session, rows: list[dict[str, Any]]) -> tuple[ChainHead, dict[int, str]]:
    """Lock the chain, number and hash ``rows`` after the head, insert them; return the new head.

    One head read and one multi-row INSERT whatever the number of rows; the hash of each row is
    the documented one (:func:`entry_hash` of :func:`entry_payload`). Also returns the hash at
    each new sequence number, so checkpoints due inside the batch need no read back.
    """
    session.flush()  # the action (and a project it created) first: the entry may point at it
    _lock_chain(session)
    connection = session.connection()
    found = connection.execute(_HEAD_AND_SEALED).first()
    seq, last_hash, sealed = (found[0], found[1], found[2] or 0) if found else (0, GENESIS_HASH, 0)
    # The time is taken under the lock and never before the head's, so it rises with seq (a
    # clock stepping back or a replica behind does not break that): see AuditTimeOrder.
    now = utcnow()
    at = max(now, found[3]) if found else now
    at_text = format_time(at)
    hashes: dict[int, str] = {}
    for row, entry_id in zip(rows, _ordered_ids(at, len(rows)), strict=True):
        seq += 1
        row["id"] = entry_id
        row["seq"] = seq
        row["prev_hash"] = last_hash
        row["created_at"] = at
        last_hash = row["hash"] = _row_hash(row, at_text)
        hashes[seq] = last_hash
    _insert(connection, rows)
    current = ChainHead(seq=seq, hash=last_hash)
    policy = policy_for(session)
    if policy is not None:
        _seal(session=session, policy=policy, current=current, sealed=sealed, known=hashes)
    return current, hashes


def append(
    *,
    session: Session,
    actor: Actor,
    action: str,
    target: str,
    outcome: Outcome | Literal["success", "denied", "failure"] = Outcome.SUCCESS,
    reason: str = "",
    detail: Mapping[str, Any] | None = None,
    project_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Append one entry to the audit chain in the caller's transaction (never commits).

    Args:
        session: The caller's session; the entry commits or rolls back with the action.
        actor: Who acted; its ``project_id`` and ``request_id`` are recorded.
        action: What was done, ``<object>.<verb>`` (e.g. ``model.promote``, ``role.grant``).
        target: What it was done to, ``<kind>:<id or name>`` (e.g. ``model_version:<uuid>``).
        outcome: ``success``, ``denied`` or ``failure``.
        reason: Why: the approver's reason, the rule that denied, the error that failed.
        detail: Structured context, ``{"before": …, "after": …}`` where it applies.
        project_id: The project, when it is not the actor's current one.

    Returns:
        The inserted entry, with its sequence number and hash (a copy: the row is written with
        one INSERT, not through the session's unit of work).

    Raises:
        InvalidInput: A field is empty, too long or not JSON-serialisable.
    """
    pending = PendingEntry(action, target, outcome, reason, detail, project_id)
    row = _row(actor, _checked_actor(actor), pending)
    _chain(session, [row])
    return AuditEntry(**row)


def append_many(*, session: Session, actor: Actor, entries: Iterable[PendingEntry]) -> ChainHead:
    """Append many entries by one actor in the caller's transaction (never commits).

    For internal bulk writers (imports, batch jobs): every entry is checked before any is
    written, then the chain head is read once and all entries go in with one multi-row INSERT,
    so the cost per entry is its hash, not a round trip. The entries are exactly those
    :func:`append` would write one by one (same fields, same chain, same checkpoints).

    Returns:
        The new head (the previous one when ``entries`` is empty).

    Raises:
        InvalidInput: An entry's field is empty, too long or not JSON-serialisable (nothing is
            written).
    """
    kind = _checked_actor(actor)
    rows = [_row(actor, kind, pending) for pending in entries]
    if not rows:
        return head(session=session)
    current, _hashes = _chain(session, rows)
    return current


def _hash_at(session: Session, seq: int) -> str:
    return session.exec(select(AuditEntry.hash).where(AuditEntry.seq == seq)).one()


def _seal(
    *,
    session: Session,
    policy: CheckpointPolicy,
    current: ChainHead,
    at_head: bool = False,
    sealed: int | None = None,
    known: Mapping[int, str] | None = None,
) -> list[AuditCheckpoint]:
    # Checkpoints fall at exact positions, every ``policy.every`` entries after the previous one,
    # so a verifier knows where they must be. A process without the key (a CLI command, a worker
    # not configured to sign) may have appended past such a position: the next process holding
    # the key signs the missed positions then, from the hashes already in the chain.
    # ``sealed`` (the last checkpoint's seq) and ``known`` (hashes just written) spare reads.
    if sealed is None:
        last = last_checkpoint(session=session)
        sealed = last.seq if last is not None else 0
    last_seq = sealed
    known = known or {}
    heads: list[tuple[int, str]] = []
    while current.seq - last_seq >= policy.every:
        target = last_seq + policy.every
        target_hash = known.get(target) or (
            current.hash if target == current.seq else _hash_at(session, target)
        )
        heads.append((target, target_hash))
        last_seq = target
    if at_head and last_seq < current.seq:
        heads.append((current.seq, current.hash))
    if not heads:
        return []
    made = sign_heads(session=session, heads=heads, signer=policy.signer, every=policy.every)
    if made and policy.anchor is not None:
        publish_after_commit(session=session, anchor=policy.anchor, made=made)
    if made and policy.announce_to:
        announce(session=session, made=made, channels=policy.announce_to)
    return made


def append_in_own_transaction(
    *,
    engine: Engine,
    actor: Actor,
    action: str,
    target: str,
    outcome: Outcome | Literal["success", "denied", "failure"] = Outcome.DENIED,
    reason: str = "",
    detail: Mapping[str, Any] | None = None,
    project_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Append one entry in a transaction of its own, committed before returning.

    Use it for denials and failed authentications: the request that was refused rolls back, but
    the record that it was attempted must survive. Arguments are those of :func:`append`;
    ``outcome`` defaults to ``denied``.

    Call it while the calling thread holds no open write transaction on the same store: on
    SQLite the request's own ``BEGIN IMMEDIATE`` lock, and on PostgreSQL an uncommitted
    :func:`append` (the chain lock), would make it wait for itself. Do the gate's reads in a
    short transaction of their own (as ``api.security`` does), then audit, then raise.
    """
    with session_scope(engine) as session:
        return append(
            session=session,
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            reason=reason,
            detail=detail,
            project_id=project_id,
        )


def checkpoint(
    *, session: Session, signer: Signer, every: int | None = None
) -> AuditCheckpoint | None:
    """Sign the current head now (on demand), in the caller's transaction.

    Positions the schedule missed (entries appended by a process without the key) are signed
    first, so the checkpoints stay where verification expects them. The checkpoint is anchored
    and announced as the policy attached to the engine says (when it uses the same key).

    Args:
        session: The caller's session.
        signer: The checkpoint key.
        every: The interval to record; defaults to the attached policy's, else 100.

    Returns:
        The checkpoint at the head (the existing one when the head is already signed), or
        ``None`` when the log is empty (there is nothing to pin yet).
    """
    _lock_chain(session)
    current = head(session=session)
    if current.seq == 0:
        return None
    attached = policy_for(session)
    if attached is not None and attached.signer.key_id == signer.key_id:
        policy = attached if every is None else replace(attached, every=every)
    else:
        fallback = attached.every if attached is not None else DEFAULT_CHECKPOINT_EVERY
        policy = CheckpointPolicy(signer=signer, every=every or fallback)
    made = _seal(session=session, policy=policy, current=current, at_head=True)
    if made:
        return made[-1]
    return session.exec(select(AuditCheckpoint).where(AuditCheckpoint.seq == current.seq)).one()


_T = TypeVar("_T")


def act_then_audit(
    act: Callable[[], _T],
    *,
    session: Session,
    actor: Actor,
    action: str,
    target: str | Callable[[_T], str],
    detail: Mapping[str, Any] | Callable[[_T], Mapping[str, Any]] | None = None,
    reason: str = "",
    project_id: uuid.UUID | Callable[[_T], uuid.UUID] | None = None,
    when: Callable[[_T], bool] | None = None,
) -> _T:
    """Do ``act`` and, only if it succeeds, write its audit entry in the same transaction.

    The one rule for audit: the service function that performs an action writes its entry,
    in the caller's session, after the action is flushed (so ids exist and a constraint that
    refuses the action raises before anything is recorded). Routes never append for actions;
    they record only denials (:func:`append_in_own_transaction`). ``target`` and ``detail`` may
    be functions of the action's result, and so may ``project_id`` (a project being created);
    ``when`` says which results are actions at all (a replayed event that stored nothing is not)::

        grant = act_then_audit(
            lambda: _add_grant(session, ...),
            session=session, actor=actor, action="role.grant",
            target=lambda g: f"principal:{g.principal_id}",
            detail=lambda g: {"after": {"role": g.role}},
        )
    """
    result = act()
    session.flush()
    if when is not None and not when(result):
        return result
    # append's entry, without building the ORM object append returns (a third of its cost).
    pending = PendingEntry(
        action=action,
        target=target(result) if callable(target) else target,
        reason=reason,
        detail=detail(result) if callable(detail) else detail,
        project_id=project_id(result) if callable(project_id) else project_id,
    )
    _chain(session, [_row(actor, _checked_actor(actor), pending)])
    return result


def _filtered(query: Any, where: AuditFilter) -> Any:
    if where.project_ids is not None:
        query = query.where(col(AuditEntry.project_id).in_(where.project_ids))
    if where.project_id is not None:
        query = query.where(AuditEntry.project_id == where.project_id)
    if where.actor is not None:
        try:
            actor_id = uuid.UUID(where.actor)
        except ValueError:
            query = query.where(AuditEntry.actor_name == where.actor)
        else:
            query = query.where(AuditEntry.actor_id == actor_id)
    if where.action is not None:
        query = query.where(AuditEntry.action == where.action)
    if where.target is not None:
        query = query.where(AuditEntry.target == where.target)
    if where.outcome is not None:
        query = query.where(AuditEntry.outcome == where.outcome.value)
    if where.since is not None:
        query = query.where(col(AuditEntry.created_at) >= where.since)
    if where.until is not None:
        query = query.where(col(AuditEntry.created_at) < where.until)
    if where.after_seq:
        query = query.where(col(AuditEntry.seq) > where.after_seq)
    if where.before_seq is not None:
        query = query.where(col(AuditEntry.seq) < where.before_seq)
    return query


def _first_seq_at(bound: dt.datetime) -> Any:
    """Return the seq of the first entry at or after ``bound``: one seek on (created_at, seq)."""
    return (
        select(AuditEntry.seq)
        .where(col(AuditEntry.created_at) >= bound)
        .order_by(col(AuditEntry.created_at), col(AuditEntry.seq))
        .limit(1)
        .scalar_subquery()
    )


def _in_seq(session: Session, where: AuditFilter) -> AuditFilter:
    """Return ``where`` with its time bounds turned into seq bounds where time follows seq.

    Filtering on the time walked the project's entries in seq order up to the bound (a third of
    a second in the middle of a million); a seq bound is an index range. A bound at or before
    the log's :class:`AuditTimeOrder` time, if any, stays a time filter (exact, not fast).
    """
    if where.since is None and where.until is None:
        return where
    since_seq, until_seq, unordered_until = session.exec(
        select(
            sa.null() if where.since is None else _first_seq_at(where.since),
            sa.null() if where.until is None else _first_seq_at(where.until),
            select(sa.func.max(AuditTimeOrder.unordered_until)).scalar_subquery(),
        )
    ).one()

    def ordered(bound: dt.datetime | None) -> bool:
        return bound is not None and (unordered_until is None or bound > unordered_until)

    if ordered(where.since):
        after = where.after_seq if since_seq is None else max(where.after_seq, since_seq - 1)
        before = 0 if since_seq is None else where.before_seq  # nothing at or after ``since``
        where = replace(where, since=None, after_seq=after, before_seq=before)
    if ordered(where.until) and until_seq is not None:
        before = until_seq if where.before_seq is None else min(where.before_seq, until_seq)
        where = replace(where, until=None, before_seq=before)
    elif ordered(where.until):
        where = replace(where, until=None)  # every entry is before ``until``
    return where


def list_entries(*, session: Session, where: AuditFilter, limit: int = 100) -> list[AuditEntry]:
    """Return up to ``limit`` entries matching ``where``, oldest first, after ``where.after_seq``.

    Pagination is by cursor: pass the last ``seq`` you received as ``after_seq`` for the next
    page; it stays stable while new entries are appended.
    """
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be between 1 and 1000, got {limit}", field="limit")
    query = _filtered(select(AuditEntry), _in_seq(session, where))
    return list(session.exec(query.order_by(col(AuditEntry.seq)).limit(limit)).all())


def iter_entries(
    *, session: Session, where: AuditFilter | None = None, batch: int = 1000
) -> Iterator[AuditEntry]:
    """Yield every entry matching ``where`` in sequence order, reading ``batch`` rows at a time."""
    where = _in_seq(session, where or AuditFilter())
    after = where.after_seq
    while True:
        query = _filtered(select(AuditEntry), where).where(col(AuditEntry.seq) > after)
        rows = list(session.exec(query.order_by(col(AuditEntry.seq)).limit(batch)).all())
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq
