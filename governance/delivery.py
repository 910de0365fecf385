"""Outbound deliveries: one row per (event, channel), one row per attempt, retried with backoff.

Services enqueue deliveries in the caller's transaction (so an incident and the message about it
commit together); :func:`deliver_due` — run periodically by the worker process — sends what is
due, outside any transaction, and records each attempt. Several workers may run it at once: a
delivery is claimed by moving its ``next_attempt_at`` forward with a conditional update, so two
workers never send the same attempt.

How an attempt goes over the wire (CloudEvents webhooks signed the Standard Webhooks way, Slack,
e-mail; the outbound guard; URLs kept out of logs) is :mod:`governance.transports`. Attempts fail
permanently when the guard refuses the target or the receiver redirects; any other failure is
retried after ``backoff_base * 2**(attempt-1)`` seconds (capped) until ``max_attempts``.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import JSON, Session, col, select
from sqlmodel import Field as SQLField

from governance.channels import Channel, SecretBox
from governance.outbound import AllowEntry as _AllowEntry
from governance.outbound import Resolver
from governance.transports import (
    SENDERS,
    AttemptOutcome,
    DeliveryPolicy,
    Outgoing,
    SendResult,
)
from lineage.errors import Conflict, NotFound
from lineage.pages import DEFAULT_PAGE_SIZE, Page, SortKey, keyset_page
from lineage.projects import Project
from lineage.store import session_scope
from lineage.tables import AwareDateTime, Record, new_id, utcnow

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "Delivery",
    "DeliveryPolicy",
    "DeliveryState",
    "build_event",
    "deliver_due",
    "deliver_due_now",
    "delivery_view",
    "enqueue",
    "get_delivery",
    "list_attempts",
    "list_deliveries",
    "resend",
]


class DeliveryState(StrEnum):
    """Where a delivery stands: waiting for an attempt, delivered, or given up."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Delivery(Record, table=True):
    """One event to be delivered to one channel, with its retry state."""

    __tablename__ = "governance_delivery"

    project_id: uuid.UUID = SQLField(foreign_key="lineage_project.id", index=True)
    channel_id: uuid.UUID = SQLField(foreign_key="governance_alert_channel.id", index=True)
    incident_id: uuid.UUID | None = SQLField(
        default=None, foreign_key="governance_incident.id", index=True
    )
    resent_from: uuid.UUID | None = SQLField(default=None, foreign_key="governance_delivery.id")
    event_id: str = SQLField(sa_column=sa.Column(sa.String(64), nullable=False, index=True))
    event_type: str = SQLField(sa_column=sa.Column(sa.String(100), nullable=False))
    event: dict[str, Any] = SQLField(sa_column=sa.Column(JSON, nullable=False))
    state: str = SQLField(
        default=DeliveryState.PENDING, sa_column=sa.Column(sa.String(20), nullable=False)
    )
    attempts: int = SQLField(default=0, nullable=False)
    max_attempts: int = SQLField(default=6, nullable=False)
    next_attempt_at: datetime | None = SQLField(
        default=None, sa_column=sa.Column(AwareDateTime(), nullable=True, index=True)
    )
    last_status_code: int | None = SQLField(default=None)
    last_error: str = SQLField(default="", sa_column=sa.Column(sa.Text, nullable=False))
    delivered_at: datetime | None = SQLField(
        default=None, sa_column=sa.Column(AwareDateTime(), nullable=True)
    )


class Attempt(Record, table=True):
    """One try at sending a delivery: when, how long, what came back."""

    __tablename__ = "governance_delivery_attempt"

    delivery_id: uuid.UUID = SQLField(foreign_key="governance_delivery.id", index=True)
    number: int = SQLField(nullable=False)
    outcome: str = SQLField(sa_column=sa.Column(sa.String(20), nullable=False))
    status_code: int | None = SQLField(default=None)
    duration_ms: float = SQLField(default=0.0, nullable=False)
    error: str = SQLField(default="", sa_column=sa.Column(sa.Text, nullable=False))


def build_event(
    *,
    project: Project,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return a CloudEvents 1.0 event (structured mode) about ``subject`` in ``project``.

    ``data`` should carry a one-line ``title`` and a ``summary`` paragraph: Slack and e-mail show
    those, webhooks get everything.
    """
    return {
        "specversion": "1.0",
        "id": f"msg_{new_id().hex}",
        "source": f"/api/v1/projects/{project.name}",
        "type": event_type,
        "subject": subject,
        "time": (now or utcnow()).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }


def enqueue(
    *,
    session: Session,
    project_id: uuid.UUID,
    channel_ids: list[uuid.UUID],
    event: dict[str, Any],
    incident_id: uuid.UUID | None = None,
    now: datetime | None = None,
    policy: DeliveryPolicy | None = None,
) -> list[Delivery]:
    """Queue ``event`` for each enabled channel; the worker's :func:`deliver_due` sends it."""
    policy = policy or DeliveryPolicy()
    due = now or utcnow()
    queued: list[Delivery] = []
    for channel_id in channel_ids:
        channel = session.get(Channel, channel_id)
        if channel is None or channel.project_id != project_id or not channel.enabled:
            continue
        delivery = Delivery(
            project_id=project_id,
            channel_id=channel_id,
            incident_id=incident_id,
            event_id=str(event["id"]),
            event_type=str(event["type"]),
            event=event,
            max_attempts=policy.max_attempts,
            next_attempt_at=due,
        )
        session.add(delivery)
        queued.append(delivery)
    session.flush()
    return queued


def get_delivery(*, session: Session, project_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery:
    """Return the project's delivery or raise :class:`NotFound`."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.project_id != project_id:
        raise NotFound(f"no delivery {delivery_id} in this project; list deliveries first")
    return delivery


def list_deliveries(
    *,
    session: Session,
    project_id: uuid.UUID,
    state: DeliveryState | None = None,
    channel_id: uuid.UUID | None = None,
    incident_id: uuid.UUID | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[Delivery]:
    """Return a page of the project's deliveries, newest first, optionally filtered.

    Raises:
        InvalidInput: A cursor this API did not return.
    """
    query = select(Delivery).where(Delivery.project_id == project_id)
    if state is not None:
        query = query.where(Delivery.state == state)
    if channel_id is not None:
        query = query.where(Delivery.channel_id == channel_id)
    if incident_id is not None:
        query = query.where(Delivery.incident_id == incident_id)
    return keyset_page(
        session=session,
        query=query,
        keys=[SortKey(col(Delivery.created_at), "desc"), SortKey(col(Delivery.id), "desc")],
        key_of=lambda d: (d.created_at, d.id),
        limit=limit,
        cursor=cursor,
    )


def list_attempts(*, session: Session, delivery_id: uuid.UUID) -> list[Attempt]:
    """Return a delivery's attempts in order."""
    query = (
        select(Attempt)
        .where(Attempt.delivery_id == delivery_id)
        .order_by(col(Attempt.number).asc())
    )
    return list(session.exec(query).all())


def delivery_view(delivery: Delivery, attempts: list[Attempt] | None = None) -> dict[str, Any]:
    """Return a JSON-ready view of a delivery (and its attempts, when given)."""
    view: dict[str, Any] = {
        "id": str(delivery.id),
        "channel_id": str(delivery.channel_id),
        "incident_id": str(delivery.incident_id) if delivery.incident_id else None,
        "resent_from": str(delivery.resent_from) if delivery.resent_from else None,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "max_attempts": delivery.max_attempts,
        "next_attempt_at": delivery.next_attempt_at.isoformat()
        if delivery.next_attempt_at
        else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
        "created_at": delivery.created_at.isoformat(),
    }
    if attempts is not None:
        view["attempt_log"] = [
            {
                "number": a.number,
                "at": a.created_at.isoformat(),
                "outcome": a.outcome,
                "status_code": a.status_code,
                "duration_ms": round(a.duration_ms, 1),
                "error": a.error,
            }
            for a in attempts
        ]
    return view


def resend(
    *,
    session: Session,
    project_id: uuid.UUID,
    delivery_id: uuid.UUID,
    now: datetime | None = None,
    policy: DeliveryPolicy | None = None,
) -> Delivery:
    """Queue the same event again to the same channel, as a new delivery with fresh attempts.

    The event id is kept, so receivers that deduplicate on ``webhook-id`` can tell it is the
    same event; the original delivery's record stays as it was.
    """
    policy = policy or DeliveryPolicy()
    original = get_delivery(session=session, project_id=project_id, delivery_id=delivery_id)
    if original.state == DeliveryState.PENDING:
        raise Conflict(
            "this delivery is still being attempted; wait for it to succeed or fail, then re-send"
        )
    channel = session.get(Channel, original.channel_id)
    if channel is None or not channel.enabled:
        raise Conflict("the channel of this delivery is disabled; enable it, then re-send")
    copy = Delivery(
        project_id=project_id,
        channel_id=original.channel_id,
        incident_id=original.incident_id,
        resent_from=original.id,
        event_id=original.event_id,
        event_type=original.event_type,
        event=original.event,
        max_attempts=policy.max_attempts,
        next_attempt_at=now or utcnow(),
    )
    session.add(copy)
    session.flush()
    return copy


def _claim(
    *, engine: Engine, box: SecretBox, now: datetime, policy: DeliveryPolicy
) -> list[Outgoing]:
    jobs: list[Outgoing] = []
    with session_scope(engine) as session:
        due = session.exec(
            select(Delivery)
            .where(Delivery.state == DeliveryState.PENDING)
            .where(col(Delivery.next_attempt_at) <= now)
            .order_by(col(Delivery.next_attempt_at).asc())
            .limit(policy.batch)
        ).all()
        hidden_until = now + timedelta(seconds=policy.claim_seconds)
        for delivery in due:
            claimed = session.execute(
                sa.update(Delivery)
                .where(col(Delivery.id) == delivery.id)
                .where(col(Delivery.state) == DeliveryState.PENDING)
                .where(col(Delivery.next_attempt_at) == delivery.next_attempt_at)
                .values(next_attempt_at=hidden_until)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            channel = session.get(Channel, delivery.channel_id)
            assert channel is not None
            allowlist = session.exec(
                select(_AllowEntry.target).where(_AllowEntry.project_id == delivery.project_id)
            ).all()
            jobs.append(
                Outgoing(
                    delivery_id=delivery.id,
                    number=delivery.attempts + 1,
                    kind=channel.kind,
                    config=dict(channel.config),
                    secrets=box.open(channel.sealed),
                    event=dict(delivery.event),
                    allowlist=list(allowlist),
                )
            )
    return jobs


def _record(
    *,
    engine: Engine,
    job: Outgoing,
    result: SendResult,
    duration_ms: float,
    now: datetime,
    policy: DeliveryPolicy,
) -> None:
    with session_scope(engine) as session:
        delivery = session.get(Delivery, job.delivery_id)
        assert delivery is not None
        session.add(
            Attempt(
                delivery_id=delivery.id,
                number=job.number,
                outcome=result.outcome,
                status_code=result.status_code,
                duration_ms=duration_ms,
                error=result.error,
            )
        )
        delivery.attempts = job.number
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error
        if result.outcome == AttemptOutcome.SUCCEEDED:
            delivery.state = DeliveryState.SUCCEEDED
            delivery.delivered_at = utcnow()
            delivery.next_attempt_at = None
        elif result.outcome == AttemptOutcome.RETRY and job.number < delivery.max_attempts:
            delivery.next_attempt_at = now + policy.backoff(job.number)
        else:
            delivery.state = DeliveryState.FAILED
            delivery.next_attempt_at = None
        session.add(delivery)


def deliver_due_now(
    *,
    engine: Engine,
    key_file: Path,
    timeout_seconds: float = 10.0,
    ca_file: Path | None = None,
    now: datetime | None = None,
) -> int:
    """Send the deliveries due now; what the worker process calls every few seconds.

    Args:
        engine: The store.
        key_file: The key that sealed the channels' secrets (created on first use).
        timeout_seconds: Connect/read timeout of one attempt.
        ca_file: Extra certificate authorities to trust (receivers behind an internal CA).
        now: The current time (tests pass a clock).
    """
    policy = DeliveryPolicy(
        timeout_seconds=timeout_seconds, ca_file=None if ca_file is None else str(ca_file)
    )
    box = SecretBox.from_key_file(key_file)
    return deliver_due(engine=engine, box=box, now=now, policy=policy)


def deliver_due(
    *,
    engine: Engine,
    box: SecretBox,
    now: datetime | None = None,
    policy: DeliveryPolicy | None = None,
    resolver: Resolver | None = None,
) -> int:
    """Send every delivery due at ``now`` and record each attempt; return how many were tried.

    Call it periodically from a worker (every few seconds); it opens its own short
    transactions and sends outside them, so a slow receiver never holds a database lock.

    Args:
        engine: The store.
        box: Opens the channels' secrets (the same key that sealed them).
        now: The current time (tests pass a clock to step through backoff).
        policy: Attempts, backoff and timeouts.
        resolver: Host resolver for the outbound guard (the system's by default).
    """
    policy = policy or DeliveryPolicy()
    at = now or utcnow()
    jobs = _claim(engine=engine, box=box, now=at, policy=policy)
    for job in jobs:
        started = time.perf_counter()
        sender = SENDERS.get(job.kind)
        if sender is None:
            result = SendResult(AttemptOutcome.GAVE_UP, error=f"unknown channel kind {job.kind!r}")
        else:
            try:
                result = sender(job, policy=policy, resolver=resolver)
            except Exception as error:  # one bad delivery must not stop the batch
                result = SendResult(AttemptOutcome.RETRY, error=f"{type(error).__name__}: {error}")
        duration_ms = (time.perf_counter() - started) * 1000
        _record(
            engine=engine, job=job, result=result, duration_ms=duration_ms, now=at, policy=policy
        )
    return len(jobs)
