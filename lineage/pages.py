"""Keyset pagination: one page of a query's rows after an opaque cursor.

Every list Warden serves is ordered by a unique key (``(name, created_at, id)``, a sequence
number, a slot); a cursor is the last row's key, and the next page is the rows strictly after
it. Unlike an offset, a page neither repeats nor skips a row when rows are added or removed
before it, and reading page *n* costs the same as page 1 (an index seek, not *n* skipped rows).
The cursor is URL-safe base64 of the typed key values; it is opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col

from lineage.errors import InvalidInput
from lineage.tables import Record

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "KeyValue",
    "Page",
    "SortKey",
    "keyset_page",
    "newest_first",
    "newest_first_page",
    "page_in_memory",
]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

T = TypeVar("T")
U = TypeVar("U")

KeyValue = datetime | uuid.UUID | str | int


@dataclass(frozen=True, slots=True)
class SortKey:
    """One column of a page's unique ordering and its direction."""

    column: Any
    direction: Literal["asc", "desc"] = "asc"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Up to ``limit`` items and the cursor of the next page (``None`` on the last page)."""

    items: list[T]
    next_cursor: str | None

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """Return the same page with each item converted (a row to its public view)."""
        return Page(items=[convert(item) for item in self.items], next_cursor=self.next_cursor)


_BAD = "cursor is not one this API returned; pass the next page's cursor as given"


def _encode_value(value: KeyValue) -> list[str | int]:
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["u", value.hex]
    if isinstance(value, bool):  # a bool is an int; no ordering key is one
        raise TypeError("a boolean cannot be a sort key")
    if isinstance(value, int):
        return ["i", value]
    return ["s", value]


def _decode_value(pair: Any) -> KeyValue:
    if not (isinstance(pair, list) and len(pair) == 2 and pair[0] in ("t", "u", "i", "s")):
        raise InvalidInput(_BAD, field="cursor")
    tag, raw = pair
    try:
        if tag == "t":
            when = datetime.fromisoformat(raw)
            if when.tzinfo is None:
                raise ValueError(raw)
            return when
        if tag == "u":
            return uuid.UUID(hex=raw)
        if tag == "i":
            if not isinstance(raw, int) or isinstance(raw, bool) or abs(raw) >= 2**63:
                raise ValueError(raw)
            return raw
        if not isinstance(raw, str):
            raise ValueError(raw)
        return raw
    except (TypeError, ValueError):
        raise InvalidInput(_BAD, field="cursor") from None


def encode_cursor(values: Sequence[KeyValue]) -> str:
    """Return the opaque cursor of a row's key values."""
    text = json.dumps([_encode_value(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, types: Sequence[type] | None) -> list[KeyValue]:
    """Return a cursor's key values, of ``types``; ``InvalidInput`` (``cursor``) if not ours.

    ``types=None`` checks only that it is a cursor (for an empty collection: nothing to match).
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        pairs = json.loads(text)
    except (binascii.Error, ValueError):
        raise InvalidInput(_BAD, field="cursor") from None
    if not isinstance(pairs, list) or not pairs or (types is not None and len(pairs) != len(types)):
        raise InvalidInput(_BAD, field="cursor")
    values = [_decode_value(pair) for pair in pairs]
    if types is not None and any(type(v) is not t for v, t in zip(values, types, strict=True)):
        raise InvalidInput(_BAD, field="cursor")
    return values


def _python_type(key: SortKey) -> type:
    column_type = key.column.type
    if isinstance(column_type, sa.types.TypeDecorator):  # AwareDateTime says "object"
        column_type = column_type.impl_instance
    python_type: type = column_type.python_type
    return datetime if issubclass(python_type, datetime) else python_type


def _after(keys: Sequence[SortKey], values: Sequence[KeyValue]) -> Any:
    """Return the condition "strictly after ``values`` in the order of ``keys``".

    The first column also gets a plain range bound, which lets the database seek its index.
    """
    tail: Any = None
    for key, value in reversed(list(zip(keys, values, strict=True))):
        beyond = key.column > value if key.direction == "asc" else key.column < value
        tail = beyond if tail is None else sa.or_(beyond, sa.and_(key.column == value, tail))
    first, start = keys[0], values[0]
    bound = first.column >= start if first.direction == "asc" else first.column <= start
    return sa.and_(bound, tail)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")


def page_in_memory(
    items: Sequence[T],
    *,
    key_of: Callable[[T], Sequence[KeyValue]],
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    descending: bool = False,
) -> Page[T]:
    """Return the page of ``items`` after ``cursor``, ordered by ``key_of`` (unique per item).

    For collections the size of a configuration (channels, rules, policies, keys), read whole:
    the same cursors and the same stability as :func:`keyset_page`, without a query per list.

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    _check_limit(limit)
    keyed = sorted(((tuple(key_of(item)), item) for item in items), key=lambda pair: pair[0])
    if descending:
        keyed.reverse()
    if cursor is not None and keyed:
        after = tuple(decode_cursor(cursor, types=[type(v) for v in keyed[0][0]]))
        keyed = [(key, item) for key, item in keyed if (key < after if descending else key > after)]
    elif cursor is not None:
        decode_cursor(cursor, types=None)  # nothing to page; still refuse what is not a cursor
    page = keyed[:limit]
    next_cursor = encode_cursor(page[-1][0]) if len(keyed) > limit else None
    return Page(items=[item for _, item in page], next_cursor=next_cursor)


def keyset_page(
    *,
    session: Session,
    query: Any,
    keys: Sequence[SortKey],
    key_of: Callable[[Any], Sequence[KeyValue]],
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[Any]:
    """Return the page of ``query``'s rows after ``cursor``, in the order of ``keys``.

    ``keys`` must order the rows uniquely (end with the primary key or a unique column);
    ``key_of`` reads those values from a result row, to make the next cursor.

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    _check_limit(limit)
    if cursor is not None:
        values = decode_cursor(cursor, types=[_python_type(k) for k in keys])
        query = query.where(_after(keys, values))
    order = [k.column.asc() if k.direction == "asc" else k.column.desc() for k in keys]
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)).all())
    page = rows[:limit]
    next_cursor = encode_cursor(key_of(page[-1])) if len(rows) > limit else None
    return Page(items=page, next_cursor=next_cursor)


def newest_first(query: Any, record: type[Record]) -> Any:
    """Order ``query`` the way every growing log is listed: newest first, the id breaking ties."""
    return query.order_by(col(record.created_at).desc(), col(record.id).desc())


def newest_first_page(
    *,
    session: Session,
    query: Any,
    record: type[Record],
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[Any]:
    """Return the page of ``query``'s ``record`` rows after ``cursor``, newest first.

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    return keyset_page(
        session=session,
        query=query,
        keys=(SortKey(col(record.created_at), "desc"), SortKey(col(record.id), "desc")),
        key_of=lambda row: (row.created_at, row.id),
        limit=limit,
        cursor=cursor,
    )
