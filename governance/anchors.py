"""Copies of the audit checkpoints outside the database, where its owner cannot rewrite them.

The design follows CloudTrail's digest files: the log lives in one place, and a signed, chained
summary of it is delivered somewhere its writer cannot silently change. Whoever holds the
database (and even the signing key) can rewrite the chain and re-sign it; they cannot make an
anchor that already holds the old head hashes forget them. Verification
(:mod:`governance.audit_verify`) compares the chain with the anchor and finds truncation and
re-signed rewrites.

Contract of an :class:`Anchor` (write a new one against this; the tests hand in fakes):

- :meth:`Anchor.publish` appends records durably before it returns and never rewrites or
  removes anything; several processes may publish at once, and the same record may arrive twice.
- :meth:`Anchor.read` returns every record ever published (duplicates and any order allowed).
- :meth:`Anchor.last_seq` returns the highest sequence number published, cheaply: a process
  re-publishes the checkpoints after it, so a crash between commit and publish loses nothing.

Warden publishes *after* the checkpoint's transaction commits (an anchor must never hold a
checkpoint the database rolled back). :class:`FileAnchor` is the implementation today: JSON
lines, opened ``O_APPEND``, ``fsync`` before returning; put it on another host's mount or make
it append-only (``chattr +a``). An S3 bucket with Object Lock (one object per checkpoint, under a
compliance-mode retention period) is the intended next implementation.

Each checkpoint can also be sent as a signed CloudEvent (``io.warden.audit.checkpoint``) to alert
channels (:func:`announce`), so a third party holds a copy too; the receiver may store the events
as they come, one per line, and pass that file as an anchor.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session, col, select

from governance.channels import Channel
from governance.checkpoints import AuditCheckpoint, CheckpointRecord
from governance.delivery import build_event, enqueue
from lineage.errors import InvalidInput, Unavailable
from lineage.projects import Project

__all__ = [
    "ANNOUNCE_EVENT_TYPE",
    "Anchor",
    "ChannelRef",
    "FileAnchor",
    "announce",
    "parse_anchor_lines",
    "publish_after_commit",
]

ANNOUNCE_EVENT_TYPE = "io.warden.audit.checkpoint"
_PENDING = "warden.audit.anchor_pending"
_TAIL_BYTES = 64 * 1024
_log = logging.getLogger(__name__)


@runtime_checkable
class Anchor(Protocol):
    """An append-only copy of the checkpoints outside the database (see the module contract)."""

    @property
    def location(self) -> str:
        """Say where the copy is, for reports and log lines."""
        ...

    def publish(self, records: Sequence[CheckpointRecord]) -> None:
        """Append ``records`` durably; raise ``OSError`` when they could not be kept."""
        ...

    def read(self) -> list[CheckpointRecord]:
        """Return every record ever published."""
        ...

    def last_seq(self) -> int:
        """Return the highest sequence number published (0 when none)."""
        ...


def _record_of(data: Any) -> CheckpointRecord:
    # An anchor line is a checkpoint record, an export's checkpoint line, or a CloudEvent
    # carrying one (what an alert channel's receiver stored).
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    if "specversion" in data:
        data = data["data"]["checkpoint"]
    return CheckpointRecord.parse(data)


def parse_anchor_lines(lines: Sequence[str], *, source: str) -> list[CheckpointRecord]:
    """Parse an anchor's JSON lines; a torn last line (a crash mid-write) is skipped.

    Raises:
        InvalidInput: A line is not a checkpoint record (naming the line).
    """
    records: list[CheckpointRecord] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            records.append(_record_of(json.loads(text)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            if number == len(lines) and not text.endswith("\n"):
                continue
            raise InvalidInput(
                f"line {number} of the anchor {source} is not a checkpoint record ({error}); "
                "pass the file Warden appends checkpoints to (WARDEN_AUDIT_ANCHOR_PATH)",
                field="anchor",
            ) from error
    return records


@dataclass(frozen=True, slots=True)
class FileAnchor:
    """An append-only JSON-lines file of checkpoint records (``O_APPEND``, ``fsync``)."""

    path: Path

    @property
    def location(self) -> str:
        """Return the file's path."""
        return str(self.path)

    def publish(self, records: Sequence[CheckpointRecord]) -> None:
        """Append one line per record in a single write, then ``fsync``."""
        if not records:
            return
        data = "".join(
            json.dumps(r.fields(), sort_keys=True, separators=(",", ":")) + "\n" for r in records
        ).encode("utf-8")
        created = not self.path.exists()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def read(self) -> list[CheckpointRecord]:
        """Return every record in the file (none when it does not exist yet).

        Raises:
            Unavailable: The file exists but cannot be read.
            InvalidInput: A line is not a checkpoint record.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as error:
            raise Unavailable(
                f"cannot read the audit anchor {self.path} ({error}); give this process read "
                "access to it (WARDEN_AUDIT_ANCHOR_PATH)"
            ) from error
        return parse_anchor_lines(text.splitlines(keepends=True), source=str(self.path))

    def last_seq(self) -> int:
        """Return the highest seq among the file's last 64 KiB of records."""
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - _TAIL_BYTES))
                tail = handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return 0
        lines = tail.splitlines(keepends=True)
        if size > _TAIL_BYTES:
            lines = lines[1:]  # the first line of the window may start mid-record
        best = 0
        for text in lines:
            try:
                best = max(best, _record_of(json.loads(text)).seq)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return best


def _publish_pending(session: Session) -> None:
    pending: list[tuple[AuditCheckpoint | None, CheckpointRecord, Anchor]] = session.info.pop(
        _PENDING, []
    )
    by_anchor: dict[int, tuple[Anchor, list[CheckpointRecord]]] = {}
    for row, record, anchor in pending:
        # A checkpoint added in a savepoint that was rolled back is no longer persistent.
        if row is not None and not sa.inspect(row).persistent:
            continue
        by_anchor.setdefault(id(anchor), (anchor, []))[1].append(record)
    for anchor, records in by_anchor.values():
        try:
            anchor.publish(records)
        except OSError as error:
            _log.error(
                "audit checkpoints %s are committed but not anchored at %s (%s); they are "
                "published again with the next checkpoint",
                [r.seq for r in records],
                anchor.location,
                error,
            )


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def publish_after_commit(
    *, session: Session, anchor: Anchor, made: Sequence[AuditCheckpoint]
) -> None:
    """Publish ``made`` (and any earlier checkpoint the anchor lacks) once ``session`` commits.

    Nothing is published if the transaction rolls back.
    """
    if not made:
        return
    try:
        published = anchor.last_seq()
    except (OSError, InvalidInput, Unavailable) as error:
        _log.error("cannot read the audit anchor at %s: %s", anchor.location, error)
        published = made[0].seq - 1
    queue: list[tuple[AuditCheckpoint | None, CheckpointRecord, Anchor]]
    queue = session.info.setdefault(_PENDING, [])
    published = max([published, *(r.seq for _, r, a in queue if a is anchor)])
    missed = session.exec(
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.seq) > published, col(AuditCheckpoint.seq) < made[0].seq)
        .order_by(col(AuditCheckpoint.seq))
    ).all()
    queue.extend((None, CheckpointRecord.of(row), anchor) for row in missed)
    queue.extend((row, CheckpointRecord.of(row), anchor) for row in made)
    if not event.contains(session, "after_commit", _publish_pending):
        event.listen(session, "after_commit", _publish_pending)
        event.listen(session, "after_rollback", _drop_pending)


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """An alert channel named ``project/channel`` (the form settings use)."""

    project: str
    channel: str

    @classmethod
    def parse(cls, text: str) -> ChannelRef:
        """Parse ``project/channel``.

        Raises:
            InvalidInput: The text is not two non-empty names joined by one slash.
        """
        project, _, channel = text.partition("/")
        if not project or not channel or "/" in channel:
            raise InvalidInput(
                f"audit anchor channel {text!r} is not 'project/channel'",
                field="audit_anchor_channels",
            )
        return cls(project=project, channel=channel)


def announce(
    *, session: Session, made: Sequence[AuditCheckpoint], channels: Sequence[ChannelRef]
) -> int:
    """Queue each checkpoint as a signed CloudEvent to ``channels``, in the caller's transaction.

    A channel that does not exist or is disabled is skipped with a warning (an audit append never
    fails for want of a receiver). Returns how many deliveries were queued.
    """
    queued = 0
    for ref in channels:
        found = session.exec(
            select(Project, Channel)
            .join(Channel, col(Channel.project_id) == col(Project.id))
            .where(Project.name == ref.project, Channel.name == ref.channel)
        ).first()
        if found is None:
            _log.warning(
                "audit checkpoints are not announced to %s/%s: no such channel",
                ref.project,
                ref.channel,
            )
            continue
        project, channel = found
        for row in made:
            record = CheckpointRecord.of(row)
            event_body = build_event(
                project=project,
                event_type=ANNOUNCE_EVENT_TYPE,
                subject=f"audit/checkpoints/{record.seq}",
                data={
                    "title": f"Audit checkpoint at entry {record.seq}",
                    "summary": (
                        f"Warden's audit chain had hash {record.hash} at entry {record.seq}. "
                        "Keep this event: it lets an auditor find a later rewrite of the log."
                    ),
                    "checkpoint": record.fields(),
                },
            )
            queued += len(
                enqueue(
                    session=session,
                    project_id=project.id,
                    channel_ids=[channel.id],
                    event=event_body,
                )
            )
    return queued
