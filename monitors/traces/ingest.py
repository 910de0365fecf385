"""Store decoded spans of an LLM deployment or an evaluation run: map, redact, price, roll up.

:func:`ingest_spans` is the one pipeline every path that stores spans goes through (OTLP
protobuf, OTLP/JSON, later native REST and evaluation runs), so redaction happens before any
write whatever the path. It is idempotent on ``(trace id, span id)`` within a project: a span
sent twice (an exporter retrying) is stored once and counted as a duplicate, not rejected.
A span that cannot be stored is rejected alone with its reason; the rest of the batch is
stored. The trace roll-ups of every trace touched are recomputed from its spans, so a late
span updates its trace. Like every service, it takes the caller's session and never commits.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lineage.errors import InvalidInput, NotFound, PayloadTooLarge
from lineage.models import Deployment
from lineage.tables import new_id, utcnow
from monitors.traces.dialects import (
    GenAiFields,
    Message,
    is_content_key,
    is_message_key,
    map_attributes,
)
from monitors.traces.models import CostSource, Trace, TraceContent, TraceSpan
from monitors.traces.otlp import Attributes, OtlpSpan
from monitors.traces.pricing import PriceBook, load_price_book
from monitors.traces.redaction import Redacted, Redactor, build_redactor
from monitors.traces.redaction_rules import Sealer, project_redactor

__all__ = [
    "MAX_SPANS",
    "IngestOutcome",
    "Rejected",
    "TextRedactor",
    "default_redactor",
    "find_deployment",
    "ingest_spans",
]

MAX_SPANS = 50_000
"""The most spans one call stores; a larger batch is refused whole (split it)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY_CHUNK = 400
_PII_DIGITS = 10**6  # shorter integers hold no phone, card or account number
_ATTRIBUTE_TEXT_LIMIT = 64 * 1024
_SEEN_LIMIT = 10_000


TextRedactor = Callable[[str], Redacted]
"""Redacts one text (a project's :class:`~monitors.traces.redaction.Redactor`, or a test's)."""


@cache
def default_redactor() -> Redactor:
    """Return the redactor with every built-in detector on, in token mode (compiled once)."""
    return build_redactor()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A span that was not stored, and why (the reason never quotes the span's content)."""

    trace_id: str
    span_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What one call stored: spans accepted, duplicates not stored again, spans rejected."""

    accepted: int
    duplicates: int
    rejected: list[Rejected] = field(default_factory=list)
    traces: int = 0
    redactions: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the counts, for an audit entry (never the spans themselves)."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "traces": self.traces,
            "redactions": dict(sorted(self.redactions.items())),
        }


def find_deployment(
    *, session: Session, project_id: uuid.UUID, name: str, environment: str | None = None
) -> Deployment:
    """Return the deployment a trace names: by id, or by name (and environment) in the project.

    Among deployments of that name, the one live now wins, else the latest to have gone live.

    Raises:
        NotFound: No deployment of that name (in that environment) in the project.
        InvalidInput: The name is live in several environments and none was given.
    """
    try:
        by_id = session.get(Deployment, uuid.UUID(name))
    except ValueError:
        by_id = None
    if by_id is not None and by_id.project_id == project_id:
        return by_id
    query = select(Deployment).where(Deployment.project_id == project_id, Deployment.name == name)
    if environment:
        query = query.where(Deployment.environment == environment)
    rows = session.exec(query.order_by(sa.desc(col(Deployment.live_from)))).all()
    if not rows:
        where = f" in environment {environment!r}" if environment else ""
        raise NotFound(
            f"no deployment named {name!r}{where} in this project; record it first "
            "(POST /api/v1/projects/{project}/deployments) or name another with "
            "warden.deployment, service.name or X-Warden-Deployment"
        )
    live = [row for row in rows if row.live_until is None]
    if len({row.environment for row in live}) > 1:
        raise InvalidInput(
            f"deployment {name!r} is live in several environments; say which with the resource "
            "attribute deployment.environment.name",
            field="deployment.environment.name",
        )
    return live[0] if live else rows[0]


def _at(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _clip(text: str | None, limit: int) -> str | None:
    return None if text is None else text[:limit]


class _Scrubber:
    """Apply a redactor to every text of a span and keep the counts per kind."""

    def __init__(self, redactor: TextRedactor) -> None:
        self.redactor = redactor
        self.counts: Counter[str] = Counter()
        # A batch repeats texts (models, names, system prompts): redact each distinct one once.
        self.seen: dict[str, Redacted] = {}

    def text(self, value: str) -> str:
        if not value:
            return value
        result = self.seen.get(value)
        if result is None:
            result = self.redactor(value)
            if len(self.seen) < _SEEN_LIMIT:
                self.seen[value] = result
        if result.counts:
            self.counts.update(result.counts)
        return result.text

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value[:_ATTRIBUTE_TEXT_LIMIT])
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _PII_DIGITS:
            # A card or phone number sent as an OTLP intValue: redacted as its digits.
            digits = str(value)
            redacted = self.text(digits)
            return value if redacted == digits else redacted
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        return value

    def messages(self, messages: Iterable[Message]) -> list[Message]:
        return [self.value(message) for message in messages]

    def take(self) -> dict[str, int]:
        counts = dict(self.counts)
        self.counts.clear()
        return counts


def _split(attributes: Attributes, *, read: bool) -> tuple[Attributes, Attributes]:
    """Return ``(metrics attributes, content attributes)``.

    With ``read``, the attributes already read into messages, user and session are dropped,
    so each value is stored (and counted by redaction) once.
    """
    plain: Attributes = {}
    content: Attributes = {}
    for key, value in attributes.items():
        if read and is_message_key(key):
            continue
        (content if is_content_key(key) else plain)[key] = value
    return plain, content


def _search_text(messages: Iterable[Message], other: Attributes) -> str:
    parts = [str(message.get("content") or "") for message in messages]
    parts.extend(value if isinstance(value, str) else json.dumps(value) for value in other.values())
    return "\n".join(part for part in parts if part)


@dataclass(slots=True)
class _Rows:
    spans: list[dict[str, Any]] = field(default_factory=list)
    contents: list[dict[str, Any]] = field(default_factory=list)


def _rows_for(
    span: OtlpSpan,
    fields: GenAiFields,
    *,
    project_id: uuid.UUID,
    deployment_id: uuid.UUID | None,
    evaluation_run_id: uuid.UUID | None,
    resource: Attributes,
    scrub: _Scrubber,
    prices: PriceBook,
    now: datetime,
    rows: _Rows,
) -> dict[str, int]:
    """Append the span's row (and its content row, if it has content); return its redactions."""
    read = bool(fields.input_messages or fields.output_messages)
    plain, content = _split(span.attributes, read=read)
    for key in ("user.id", "enduser.id", "session.id", "gen_ai.conversation.id"):
        plain.pop(key, None)
    events = []
    for event in span.events:
        event_plain, event_content = _split(event.attributes, read=read)
        content.update({f"event.{event.name}.{k}": v for k, v in event_content.items()})
        events.append({"name": event.name, "time_ns": event.time_ns, "attributes": event_plain})
    start, end = _at(span.start_ns), _at(span.end_ns)
    cost, cost_source = fields.cost_nano_usd, None
    if cost is not None:
        cost_source = CostSource.INGESTED  # what the application sent is kept
    else:
        cost = prices.price_span(
            provider=fields.provider,
            request_model=fields.request_model,
            response_model=fields.response_model,
            at=start,
            input_tokens=fields.input_tokens,
            output_tokens=fields.output_tokens,
            cache_read_tokens=fields.cache_read_tokens,
        )
        cost_source = CostSource.COMPUTED if cost is not None else None
    row_id = new_id()
    rows.spans.append(
        {
            "id": row_id,
            "created_at": now,
            "project_id": project_id,
            "deployment_id": deployment_id,
            "evaluation_run_id": evaluation_run_id,
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            "parent_span_id": span.parent_span_id,
            "name": _clip(scrub.text(span.name), 512),
            "kind": span.kind,
            "operation": _clip(fields.operation, 64),
            "provider": _clip(fields.provider, 128),
            "request_model": _clip(fields.request_model, 256),
            "response_model": _clip(fields.response_model, 256),
            "finish_reasons": fields.finish_reasons,
            "input_tokens": fields.input_tokens,
            "output_tokens": fields.output_tokens,
            "cache_read_tokens": fields.cache_read_tokens,
            "cache_creation_tokens": fields.cache_creation_tokens,
            "reasoning_tokens": fields.reasoning_tokens,
            "start_at": start,
            "end_at": end,
            "latency_ms": (span.end_ns - span.start_ns) / 1_000_000,
            "ttft_ms": fields.ttft_ms,
            "status": span.status,
            "status_message": scrub.text(span.status_message) or None,
            "error_type": _clip(fields.error_type, 256),
            "prompt_name": _clip(fields.prompt_name, 256),
            "prompt_version": _clip(fields.prompt_version, 64),
            "session_id": _clip(scrub.text(fields.session_id or "") or None, 256),
            "user_id": _clip(scrub.text(fields.user_id or "") or None, 256),
            "cost_nano_usd": cost,
            "cost_source": cost_source,
            "dialect": fields.dialect,
            "scope": _clip(span.scope, 256),
            "attributes": scrub.value(plain),
            "resource": resource,
            "events": scrub.value(events),
        }
    )
    if not (fields.input_messages or fields.output_messages or content):
        rows.spans[-1]["redactions"] = scrub.take()
        return rows.spans[-1]["redactions"]  # type: ignore[no-any-return]
    inputs = scrub.messages(fields.input_messages)
    outputs = scrub.messages(fields.output_messages)
    other = scrub.value(content)
    counts = scrub.take()
    rows.spans[-1]["redactions"] = counts
    rows.contents.append(
        {
            "id": new_id(),
            "created_at": now,
            "span_row_id": row_id,
            "project_id": project_id,
            "trace_id": span.trace_id,
            "span_start_at": start,
            "input_messages": inputs,
            "output_messages": outputs,
            "other": other,
            "text": _search_text([*inputs, *outputs], other),
        }
    )
    return counts


def _stored_keys(
    session: Session, project_id: uuid.UUID, trace_ids: Sequence[str]
) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for start in range(0, len(trace_ids), _KEY_CHUNK):
        chunk = trace_ids[start : start + _KEY_CHUNK]
        rows = session.exec(
            select(TraceSpan.trace_id, TraceSpan.span_id).where(
                TraceSpan.project_id == project_id, col(TraceSpan.trace_id).in_(chunk)
            )
        ).all()
        found.update((trace_id, span_id) for trace_id, span_id in rows)
    return found


def ingest_spans(
    *,
    session: Session,
    project_id: uuid.UUID,
    deployment_id: uuid.UUID | None,
    spans: Sequence[OtlpSpan],
    evaluation_run_id: uuid.UUID | None = None,
    resource: Attributes | None = None,
    redactor: TextRedactor | None = None,
    sealer: Sealer | None = None,
    now: datetime | None = None,
) -> IngestOutcome:
    """Store ``spans`` of one resource as inference records of a deployment or calls of a run.

    Args:
        session: The caller's session (not committed here).
        project_id: The project the spans belong to.
        deployment_id: The deployment whose inferences they are (already checked by the caller);
            ``None`` for an evaluation run's calls.
        spans: Decoded spans; those with a ``problem`` are rejected with it.
        evaluation_run_id: The evaluation run that made the calls (then ``deployment_id`` is
            ``None``: they are not the slot's traffic).
        resource: The resource attributes the spans came with.
        redactor: Applied to every text before it is stored; by default the project's rules
            (:func:`~monitors.traces.redaction_rules.project_redactor`).
        sealer: Opens the project's hash key when its rules hash redacted values.
        now: The ingest time (for tests on a fixed clock).

    Raises:
        PayloadTooLarge: More than :data:`MAX_SPANS` spans.
        ValueError: Not exactly one of ``deployment_id`` and ``evaluation_run_id`` given.
    """
    if (deployment_id is None) == (evaluation_run_id is None):
        raise ValueError("spans belong to a deployment or to an evaluation run, exactly one")
    if len(spans) > MAX_SPANS:
        raise PayloadTooLarge(
            f"{len(spans)} spans in one request; send at most {MAX_SPANS}", field="resourceSpans"
        )
    now = now or utcnow()
    rejected: list[Rejected] = []
    fresh: dict[tuple[str, str], OtlpSpan] = {}
    duplicates = 0
    for span in spans:
        if span.problem is not None:
            rejected.append(Rejected(span.trace_id, span.span_id, span.problem))
        elif (span.trace_id, span.span_id) in fresh:
            duplicates += 1
        else:
            fresh[(span.trace_id, span.span_id)] = span
    trace_ids = sorted({trace_id for trace_id, _ in fresh})
    stored = _stored_keys(session, project_id, trace_ids)
    duplicates += sum(1 for key in fresh if key in stored)
    scrub = _Scrubber(
        redactor or project_redactor(session=session, project_id=project_id, sealer=sealer)
    )
    clean_resource = scrub.value(resource or {})
    totals: Counter[str] = Counter(scrub.take())
    rows = _Rows()
    prices = load_price_book(session=session, project_id=project_id) if fresh else PriceBook()
    for key, span in fresh.items():
        if key in stored:
            continue
        fields = map_attributes(span.attributes, events=span.events, start_ns=span.start_ns)
        counts = _rows_for(
            span,
            fields,
            project_id=project_id,
            deployment_id=deployment_id,
            evaluation_run_id=evaluation_run_id,
            resource=clean_resource,
            scrub=scrub,
            prices=prices,
            now=now,
            rows=rows,
        )
        totals.update(counts)
    if rows.spans:
        # Core inserts (one multi-row statement per chunk); the ORM path costs a statement a row.
        session.execute(TraceSpan.__table__.insert(), rows.spans)  # type: ignore[attr-defined]
    if rows.contents:
        session.execute(TraceContent.__table__.insert(), rows.contents)  # type: ignore[attr-defined]
    touched = sorted({row["trace_id"] for row in rows.spans})
    _roll_up(session, project_id, touched, now=now)
    return IngestOutcome(
        accepted=len(rows.spans),
        duplicates=duplicates,
        rejected=rejected,
        traces=len(touched),
        redactions=dict(totals),
    )


def _roll_up(
    session: Session, project_id: uuid.UUID, trace_ids: Sequence[str], *, now: datetime
) -> None:
    """Recompute the roll-up row of each trace in ``trace_ids`` from all its stored spans."""
    s = TraceSpan.__table__.c  # type: ignore[attr-defined]
    t = Trace.__table__  # type: ignore[attr-defined]
    has_tokens = sa.or_(s.input_tokens.is_not(None), s.output_tokens.is_not(None))
    for start in range(0, len(trace_ids), _KEY_CHUNK):
        chunk = list(trace_ids[start : start + _KEY_CHUNK])
        in_chunk = sa.and_(s.project_id == project_id, s.trace_id.in_(chunk))
        sums = session.execute(
            sa.select(
                s.trace_id,
                sa.func.min(s.start_at),
                sa.func.max(s.end_at),
                sa.func.count(),
                sa.func.sum(sa.case((s.status == "error", 1), else_=0)),
                sa.func.coalesce(sa.func.sum(s.input_tokens), 0),
                sa.func.coalesce(sa.func.sum(s.output_tokens), 0),
                sa.func.sum(s.cost_nano_usd),
                sa.func.sum(sa.case((sa.and_(has_tokens, s.cost_nano_usd.is_(None)), 1), else_=0)),
                sa.func.max(s.session_id),
                sa.func.max(s.user_id),
            )
            .where(in_chunk)
            .group_by(s.trace_id)
        ).all()
        # The root names the trace; until it arrives, the earliest span does.
        heads: dict[str, tuple[str | None, str, uuid.UUID | None, uuid.UUID | None]] = {}
        for trace_id, span_id, parent, name, deployment_id, run_id in session.execute(
            sa.select(
                s.trace_id,
                s.span_id,
                s.parent_span_id,
                s.name,
                s.deployment_id,
                s.evaluation_run_id,
            )
            .where(in_chunk)
            .order_by(s.trace_id, s.parent_span_id.is_not(None), s.start_at)
        ):
            if trace_id not in heads:
                root = span_id if parent is None else None
                heads[trace_id] = (root, name, deployment_id, run_id)
        existing = dict(
            session.execute(
                sa.select(t.c.trace_id, t.c.id).where(
                    t.c.project_id == project_id, t.c.trace_id.in_(chunk)
                )
            ).all()
        )
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for (
            trace_id,
            first,
            last,
            count,
            errors,
            tokens_in,
            tokens_out,
            cost,
            missing,
            sid,
            uid,
        ) in sums:
            root_span_id, name, deployment_id, run_id = heads[trace_id]
            values: dict[str, Any] = {
                "deployment_id": deployment_id,
                "evaluation_run_id": run_id,
                "root_span_id": root_span_id,
                "name": name,
                "start_at": first,
                "end_at": last,
                "duration_ms": (last - first).total_seconds() * 1000,
                "status": "error" if errors else "ok",
                "span_count": count,
                "error_count": errors,
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cost_nano_usd": cost,
                "cost_missing_spans": missing,
                "session_id": sid,
                "user_id": uid,
                "updated_at": now,
            }
            row_id = existing.get(trace_id)
            if row_id is None:
                inserts.append(
                    {
                        "id": new_id(),
                        "created_at": now,
                        "project_id": project_id,
                        "trace_id": trace_id,
                        **values,
                    }
                )
            else:
                updates.append({"row_id": row_id, **values})
        if inserts:
            session.execute(t.insert(), inserts)
        if updates:
            session.execute(t.update().where(t.c.id == sa.bindparam("row_id")), updates)
