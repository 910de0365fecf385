"""Prices: which price applies, exact nano-dollar costs, "pricing missing", versioned rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.projects import Project
from lineage.store import session_scope
from monitors.traces.pricing import (
    Price,
    PriceBook,
    PriceCreate,
    add_price,
    close_price,
    list_prices,
    load_price_book,
    price_span,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _price(
    pattern: str,
    *,
    provider: str = "openai",
    input_price: int = 2_500_000_000,
    output_price: int = 10_000_000_000,
    cached: int | None = None,
    start: datetime = T0,
    end: datetime | None = None,
) -> Price:
    return Price(uuid.uuid4(), provider, pattern, input_price, output_price, cached, start, end)


def _cost(book: PriceBook, model: str, at: datetime = T0, **tokens: int) -> int | None:
    return book.price_span(
        provider="openai",
        request_model=model,
        response_model=None,
        at=at,
        input_tokens=tokens.get("input_tokens"),
        output_tokens=tokens.get("output_tokens"),
        cache_read_tokens=tokens.get("cache_read_tokens"),
    )


def test_cost_is_exact_nano_dollars_with_cached_input_at_its_own_price() -> None:
    # $2.50 / M input, $10 / M output, $1.25 / M cached input
    book = PriceBook((_price("gpt-4o*", cached=1_250_000_000),))
    cost = _cost(
        book, "gpt-4o-2024-08-06", input_tokens=1000, output_tokens=200, cache_read_tokens=400
    )
    assert cost == 600 * 2_500 + 400 * 1_250 + 200 * 10_000  # = 4_000_000 nano-dollars
    assert _cost(book, "gpt-4o", input_tokens=1000, output_tokens=0) == 2_500_000


def test_cached_tokens_cost_the_input_price_when_no_cached_price_is_set() -> None:
    book = PriceBook((_price("gpt-4o"),))
    assert _cost(book, "gpt-4o", input_tokens=10, cache_read_tokens=10) == 25_000


def test_fractions_of_a_nano_dollar_round_half_up() -> None:
    book = PriceBook((_price("tiny", input_price=150_000, output_price=600_000),))
    assert _cost(book, "tiny", input_tokens=3) == 0  # 0.45 nano-dollars
    assert _cost(book, "tiny", input_tokens=4) == 1  # 0.6
    assert _cost(book, "tiny", input_tokens=10, output_tokens=1) == 2  # 1.5 + 0.6 = 2.1
    half = PriceBook((_price("half", input_price=100_000),))
    assert _cost(half, "half", input_tokens=5) == 1  # 0.5 rounds up


def test_no_price_or_no_tokens_is_pricing_missing_never_zero() -> None:
    book = PriceBook((_price("gpt-4o*"),))
    assert _cost(book, "claude-3-5-sonnet", input_tokens=10) is None
    assert _cost(book, "gpt-4o") is None
    assert (
        book.price_span(
            provider=None,
            request_model="gpt-4o",
            response_model=None,
            at=T0,
            input_tokens=5,
            output_tokens=5,
        )
        is None
    )
    assert _cost(PriceBook(), "gpt-4o", input_tokens=10) is None


def test_exact_beats_glob_and_the_response_model_beats_the_request_model() -> None:
    book = PriceBook(
        (_price("gpt-4o*", input_price=1_000_000), _price("gpt-4o-mini", input_price=7_000_000))
    )
    assert _cost(book, "gpt-4o-mini", input_tokens=1_000_000) == 7_000_000
    assert _cost(book, "GPT-4O-2024", input_tokens=1_000_000) == 1_000_000
    by_response = book.price_span(
        provider="OpenAI",
        request_model="gpt-4o",
        response_model="gpt-4o-mini",
        at=T0,
        input_tokens=1_000_000,
        output_tokens=None,
    )
    assert by_response == 7_000_000


def test_the_price_valid_at_the_span_start_applies() -> None:
    change = T0 + timedelta(days=30)
    prices = [
        _price("gpt-4o", input_price=5_000_000, end=change),
        _price("gpt-4o", input_price=2_000_000, start=change),
    ]
    at = {"input_tokens": 1_000_000}
    assert (
        price_span(
            prices=prices,
            provider="openai",
            request_model="gpt-4o",
            response_model=None,
            at=T0 - timedelta(seconds=1),
            input_tokens=1,
            output_tokens=1,
        )
        is None
    )
    assert _cost(PriceBook(tuple(prices)), "gpt-4o", T0, **at) == 5_000_000
    assert _cost(PriceBook(tuple(prices)), "gpt-4o", change, **at) == 2_000_000


def test_a_new_price_closes_the_open_one_and_overlaps_are_refused(
    engine: Engine, make_project: Callable[[str], Project]
) -> None:
    project = make_project("acme")
    spec = {"provider": "OpenAI", "model_pattern": "gpt-4o*"}
    with session_scope(engine) as session:
        first, closed = add_price(
            session=session,
            project_id=project.id,
            spec=PriceCreate(
                **spec, input_nano_usd_per_mtok=5, output_nano_usd_per_mtok=6, valid_from=T0
            ),
            created_by="ann",
        )
        assert closed is None
        later = T0 + timedelta(days=10)
        second, closed = add_price(
            session=session,
            project_id=project.id,
            spec=PriceCreate(
                **spec, input_nano_usd_per_mtok=3, output_nano_usd_per_mtok=4, valid_from=later
            ),
            created_by="ann",
        )
        assert closed is not None
        assert closed.id == first.id
        assert first.valid_to == later
        with pytest.raises(Conflict, match="already covers") as caught:
            add_price(
                session=session,
                project_id=project.id,
                spec=PriceCreate(
                    **spec,
                    input_nano_usd_per_mtok=1,
                    output_nano_usd_per_mtok=1,
                    valid_from=T0 + timedelta(days=1),
                ),
                created_by="ann",
            )
        assert caught.value.field == "valid_from"
        book = load_price_book(session=session, project_id=project.id)
        assert len(book.prices) == 2
        assert [p.id for p in list_prices(session=session, project_id=project.id, at=later)] == [
            second.id
        ]


def test_closing_a_price_ends_it(engine: Engine, make_project: Callable[[str], Project]) -> None:
    project = make_project("acme")
    with session_scope(engine) as session:
        row, _ = add_price(
            session=session,
            project_id=project.id,
            spec=PriceCreate(
                provider="anthropic",
                model_pattern="claude-*",
                input_nano_usd_per_mtok=3_000_000_000,
                output_nano_usd_per_mtok=15_000_000_000,
                valid_from=T0,
            ),
            created_by="ann",
        )
        end = T0 + timedelta(days=2)
        close_price(session=session, project_id=project.id, price_id=row.id, at=end)
        assert row.valid_to == end
        with pytest.raises(InvalidInput, match="closed already"):
            close_price(session=session, project_id=project.id, price_id=row.id, at=end)
        with pytest.raises(NotFound):
            close_price(session=session, project_id=uuid.uuid4(), price_id=row.id)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_nano_usd_per_mtok": -1}, "greater than or equal"),
        ({"valid_from": datetime(2026, 1, 1)}, "time zone"),
        ({"valid_to": T0 - timedelta(days=1), "valid_from": T0}, "after valid_from"),
        ({"provider": "  "}, "printable"),
        ({"price": 1}, "Extra inputs"),
    ],
)
def test_bad_prices_are_refused(changes: dict[str, object], message: str) -> None:
    spec: dict[str, object] = {
        "provider": "openai",
        "model_pattern": "gpt-4o",
        "input_nano_usd_per_mtok": 1,
        "output_nano_usd_per_mtok": 1,
    }
    with pytest.raises(ValueError, match=message):
        PriceCreate.model_validate(spec | changes)
