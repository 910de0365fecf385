"""Cost of a span from the project's versioned price table, in integer nano-dollars.

Prices are integer nano-dollars (1e-9 USD) **per million tokens** — $0.15 per million input
tokens is ``150_000_000`` — so prices below a nano-dollar per token stay exact. A span's cost::

    uncached = max(input_tokens - cache_read_tokens, 0)
    cost = round_half_up((uncached * input + cache_read_tokens * cached_input
                          + output_tokens * output) / 1_000_000)

``input_tokens`` includes cached tokens (OpenTelemetry GenAI semantic conventions); the cached
price defaults to the input price when a row has none; reasoning tokens are part of the output.

Which price applies: the row whose provider matches (case-insensitive) and whose model pattern
(a glob, ``gpt-4o*``) matches the response model, else the request model, and whose interval
``[valid_from, valid_to)`` contains the span's start. Among several, an exact name beats a
glob, a longer pattern beats a shorter one, and a later ``valid_from`` wins. No row: ``None``,
"pricing missing", never $0. A cost the application sent is kept (``cost_source="ingested"``) and
never overwritten by a price.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import Session, col, select

from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.tables import utcnow
from monitors.traces.controls import PriceEntry
from monitors.traces.models import CostSource, Trace, TraceSpan

__all__ = [
    "MAX_PRICE_NANO_USD_PER_MTOK",
    "Price",
    "PriceBook",
    "PriceCreate",
    "PricePublic",
    "RecomputeCounts",
    "add_price",
    "close_price",
    "list_prices",
    "load_price_book",
    "price_span",
    "recompute_costs",
]

MAX_PRICE_NANO_USD_PER_MTOK = 10**15
"""The highest price accepted: one million dollars per million tokens."""
_PER = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """One price row as the pricing rule reads it."""

    id: uuid.UUID
    provider: str
    model_pattern: str
    input_nano_usd_per_mtok: int
    output_nano_usd_per_mtok: int
    cached_input_nano_usd_per_mtok: int | None
    valid_from: datetime
    valid_to: datetime | None = None

    def applies(self, provider: str, model: str, at: datetime) -> bool:
        """Return whether this price covers ``provider``/``model`` at instant ``at``."""
        return (
            self.provider.lower() == provider.lower()
            and fnmatch.fnmatchcase(model.lower(), self.model_pattern.lower())
            and self.valid_from <= at
            and (self.valid_to is None or at < self.valid_to)
        )

    def rank(self) -> tuple[bool, int, datetime]:
        """Return the sort key that picks one price among several that apply."""
        exact = not any(char in self.model_pattern for char in "*?[")
        return (exact, len(self.model_pattern), self.valid_from)

    def cost(
        self, *, input_tokens: int | None, output_tokens: int | None, cache_read_tokens: int | None
    ) -> int:
        """Return the cost in nano-dollars of these token counts at this price."""
        inputs, outputs, cached = input_tokens or 0, output_tokens or 0, cache_read_tokens or 0
        cached = min(cached, inputs) if inputs else cached
        cached_price = self.cached_input_nano_usd_per_mtok
        if cached_price is None:
            cached_price = self.input_nano_usd_per_mtok
        scaled = (
            max(inputs - cached, 0) * self.input_nano_usd_per_mtok
            + cached * cached_price
            + outputs * self.output_nano_usd_per_mtok
        )
        return (scaled + _PER // 2) // _PER

    @classmethod
    def of(cls, row: PriceEntry) -> Price:
        """Return the rule's view of a stored price row."""
        return cls(
            id=row.id,
            provider=row.provider,
            model_pattern=row.model_pattern,
            input_nano_usd_per_mtok=row.input_nano_usd_per_mtok,
            output_nano_usd_per_mtok=row.output_nano_usd_per_mtok,
            cached_input_nano_usd_per_mtok=row.cached_input_nano_usd_per_mtok,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
        )


@dataclass(frozen=True, slots=True)
class PriceBook:
    """A project's prices, loaded once per batch; :meth:`price_span` prices one span."""

    prices: tuple[Price, ...] = ()

    def find(
        self,
        *,
        provider: str | None,
        request_model: str | None,
        response_model: str | None,
        at: datetime,
    ) -> Price | None:
        """Return the price that applies (response model first), or ``None``."""
        if not provider:
            return None
        for model in (response_model, request_model):
            if not model:
                continue
            found = [price for price in self.prices if price.applies(provider, model, at)]
            if found:
                return max(found, key=Price.rank)
        return None

    def price_span(
        self,
        *,
        provider: str | None,
        request_model: str | None,
        response_model: str | None,
        at: datetime,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
    ) -> int | None:
        """Return the span's cost in nano-dollars, or ``None`` (no price, or no tokens)."""
        if input_tokens is None and output_tokens is None:
            return None
        price = self.find(
            provider=provider, request_model=request_model, response_model=response_model, at=at
        )
        if price is None:
            return None
        return price.cost(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
        )


def price_span(
    *,
    prices: Sequence[Price],
    provider: str | None,
    request_model: str | None,
    response_model: str | None,
    at: datetime,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None = None,
) -> int | None:
    """Return a span's cost in nano-dollars from ``prices``, or ``None`` ("pricing missing")."""
    return PriceBook(tuple(prices)).price_span(
        provider=provider,
        request_model=request_model,
        response_model=response_model,
        at=at,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
    )


_Nano = Field(ge=0, le=MAX_PRICE_NANO_USD_PER_MTOK)


class PriceCreate(BaseModel):
    """A new price: nano-dollars per million tokens, valid from an instant (default: now)."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=128)
    model_pattern: str = Field(min_length=1, max_length=256)
    input_nano_usd_per_mtok: int = _Nano
    output_nano_usd_per_mtok: int = _Nano
    cached_input_nano_usd_per_mtok: int | None = Field(
        default=None, ge=0, le=MAX_PRICE_NANO_USD_PER_MTOK
    )
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    @field_validator("provider", "model_pattern")
    @classmethod
    def _printable(cls, value: str) -> str:
        value = value.strip()
        if not value or not value.isprintable():
            raise ValueError("must be printable text")
        return value

    @field_validator("valid_from", "valid_to")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-01-01T00:00:00Z)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> PriceCreate:
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class PricePublic(BaseModel):
    """A price as clients see it."""

    id: uuid.UUID
    provider: str
    model_pattern: str
    input_nano_usd_per_mtok: int
    output_nano_usd_per_mtok: int
    cached_input_nano_usd_per_mtok: int | None
    valid_from: datetime
    valid_to: datetime | None
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, row: PriceEntry) -> PricePublic:
        """Return the public view of a stored price."""
        return cls.model_validate(row, from_attributes=True)


def list_prices(
    *, session: Session, project_id: uuid.UUID, at: datetime | None = None
) -> list[PriceEntry]:
    """Return the project's prices (those valid at ``at`` when given), by provider and pattern."""
    query = select(PriceEntry).where(PriceEntry.project_id == project_id)
    if at is not None:
        query = query.where(PriceEntry.valid_from <= at).where(
            (col(PriceEntry.valid_to).is_(None)) | (col(PriceEntry.valid_to) > at)
        )
    query = query.order_by(
        col(PriceEntry.provider), col(PriceEntry.model_pattern), col(PriceEntry.valid_from)
    )
    return list(session.exec(query).all())


def load_price_book(*, session: Session, project_id: uuid.UUID) -> PriceBook:
    """Return every price of the project, ready to price a batch of spans."""
    return PriceBook(
        tuple(Price.of(row) for row in list_prices(session=session, project_id=project_id))
    )


def _overlaps(row: PriceEntry, start: datetime, end: datetime | None) -> bool:
    row_end_after_start = row.valid_to is None or row.valid_to > start
    starts_before_end = end is None or row.valid_from < end
    return row_end_after_start and starts_before_end


def add_price(
    *, session: Session, project_id: uuid.UUID, spec: PriceCreate, created_by: str
) -> tuple[PriceEntry, PriceEntry | None]:
    """Add a price; return it and the open price of the same model it closed, if any.

    A new price of a (provider, pattern) whose current price is open and started earlier
    closes that one at the new ``valid_from`` — that is how a price changes. Any other overlap
    is refused, so at most one price of a (provider, pattern) applies at any instant.

    Raises:
        Conflict: The interval overlaps another price of the same provider and pattern.
    """
    start = spec.valid_from or utcnow()
    same = session.exec(
        select(PriceEntry).where(
            PriceEntry.project_id == project_id,
            PriceEntry.provider == spec.provider.lower(),
            PriceEntry.model_pattern == spec.model_pattern,
        )
    ).all()
    closed: PriceEntry | None = None
    for row in same:
        if row.valid_to is None and row.valid_from < start:
            closed = row
            continue
        if _overlaps(row, start, spec.valid_to):
            raise Conflict(
                f"a price of {spec.provider}/{spec.model_pattern} already covers part of that "
                f"interval (price {row.id}, from {row.valid_from.isoformat()}); close it first "
                "or choose another valid_from",
                field="valid_from",
            )
    if closed is not None:
        closed.valid_to = start
        session.add(closed)
    row = PriceEntry(
        project_id=project_id,
        provider=spec.provider.lower(),
        model_pattern=spec.model_pattern,
        input_nano_usd_per_mtok=spec.input_nano_usd_per_mtok,
        output_nano_usd_per_mtok=spec.output_nano_usd_per_mtok,
        cached_input_nano_usd_per_mtok=spec.cached_input_nano_usd_per_mtok,
        valid_from=start,
        valid_to=spec.valid_to,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return row, closed


def close_price(
    *, session: Session, project_id: uuid.UUID, price_id: uuid.UUID, at: datetime | None = None
) -> PriceEntry:
    """End a price at ``at`` (default now); spans after it show "pricing missing".

    Raises:
        NotFound: No such price in the project.
        InvalidInput: ``at`` is not after the price's start, or the price is closed already.
    """
    row = session.get(PriceEntry, price_id)
    if row is None or row.project_id != project_id:
        raise NotFound(f"no price {price_id} in this project")
    end = at or utcnow()
    if row.valid_to is not None and row.valid_to <= end:
        raise InvalidInput(
            f"the price is closed already (from {row.valid_to.isoformat()})", field="valid_to"
        )
    if end <= row.valid_from:
        raise InvalidInput("valid_to must be after the price's valid_from", field="valid_to")
    row.valid_to = end
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class RecomputeCounts:
    """What a recompute changed, for the audit log."""

    spans_checked: int
    spans_changed: int
    spans_missing: int
    traces_updated: int

    def to_dict(self) -> dict[str, Any]:
        """Return the counts as a dict."""
        return asdict(self)


_SPAN_CHUNK = 2000


def recompute_costs(
    *,
    session: Session,
    project_id: uuid.UUID,
    since: datetime | None = None,
    page_size: int = _SPAN_CHUNK,
) -> RecomputeCounts:
    """Price the project's spans again with today's price table; return what changed.

    Spans whose cost the application sent (``ingested``) keep it. The others get the cost of
    the price valid at their start, or none ("pricing missing"); the cost roll-ups of every
    trace touched follow. ``since`` limits it to spans that started at or after that instant;
    spans are read ``page_size`` at a time.
    """
    book = load_price_book(session=session, project_id=project_id)
    s = TraceSpan.__table__.c  # type: ignore[attr-defined]
    where = sa.and_(
        s.project_id == project_id,
        sa.or_(s.cost_source.is_(None), s.cost_source != CostSource.INGESTED.value),
    )
    if since is not None:
        where = sa.and_(where, s.start_at >= since)
    columns = (
        s.id,
        s.trace_id,
        s.provider,
        s.request_model,
        s.response_model,
        s.start_at,
        s.input_tokens,
        s.output_tokens,
        s.cache_read_tokens,
        s.cost_nano_usd,
    )
    update = (
        sa.update(TraceSpan.__table__)  # type: ignore[attr-defined]
        .where(s.id == sa.bindparam("row_id"))
        .values(cost_nano_usd=sa.bindparam("cost"), cost_source=sa.bindparam("source"))
    )
    touched: set[str] = set()
    checked = changed = missing = 0
    after: uuid.UUID | None = None
    while True:  # pages in id order, so memory stays bounded however many spans there are
        page = sa.select(*columns).where(where).order_by(s.id).limit(page_size)
        if after is not None:
            page = page.where(s.id > after)
        rows = session.execute(page).all()
        if not rows:
            break
        after = rows[-1].id
        changes: list[dict[str, Any]] = []
        for row in rows:
            cost = book.price_span(
                provider=row.provider,
                request_model=row.request_model,
                response_model=row.response_model,
                at=row.start_at,
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
                cache_read_tokens=row.cache_read_tokens,
            )
            has_tokens = row.input_tokens is not None or row.output_tokens is not None
            missing += cost is None and has_tokens
            if cost != row.cost_nano_usd:
                source = None if cost is None else CostSource.COMPUTED.value
                changes.append({"row_id": row.id, "cost": cost, "source": source})
                touched.add(row.trace_id)
        if changes:
            session.execute(update, changes)
        checked += len(rows)
        changed += len(changes)
    _roll_up_costs(session, project_id, sorted(touched))
    return RecomputeCounts(checked, changed, missing, len(touched))


def _roll_up_costs(session: Session, project_id: uuid.UUID, trace_ids: list[str]) -> None:
    """Set the cost sums of each trace in ``trace_ids`` from its spans (as ingest rolls up)."""
    s = TraceSpan.__table__.c  # type: ignore[attr-defined]
    has_tokens = sa.or_(s.input_tokens.is_not(None), s.output_tokens.is_not(None))
    for start in range(0, len(trace_ids), 400):
        chunk = trace_ids[start : start + 400]
        sums = session.execute(
            sa.select(
                s.trace_id,
                sa.func.sum(s.cost_nano_usd),
                sa.func.sum(sa.case((sa.and_(has_tokens, s.cost_nano_usd.is_(None)), 1), else_=0)),
            )
            .where(s.project_id == project_id, s.trace_id.in_(chunk))
            .group_by(s.trace_id)
        ).all()
        for trace_id, cost, missing in sums:
            session.execute(
                sa.update(Trace.__table__)  # type: ignore[attr-defined]
                .where(
                    Trace.__table__.c.project_id == project_id,  # type: ignore[attr-defined]
                    Trace.__table__.c.trace_id == trace_id,  # type: ignore[attr-defined]
                )
                .values(cost_nano_usd=cost, cost_missing_spans=missing, updated_at=utcnow())
            )
