"""Paging of list routes: ``limit`` and ``cursor`` in, the next page's link out.

Every list route takes ``limit`` (1..1000, default 100) and ``cursor`` (the audit log and its
checkpoints: ``after``, a sequence number), and answers one page:
its usual body, and, when more rows follow, ``Link: <…?cursor=…>; rel="next"`` (RFC 8288),
the same URL with the next cursor. A client that needs everything follows ``rel="next"``
until it is absent. Cursors are keyset positions (:mod:`lineage.pages`): stable while rows
are added, and as cheap on the last page as on the first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from lineage import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, KeyValue, Page, page_in_memory

__all__ = ["PageDep", "PageParams", "next_link"]

T = TypeVar("T")


def next_link(request: Request, next_cursor: str, *, param: str = "cursor") -> str:
    """Return the ``Link`` header value pointing at the next page of this request.

    ``param`` is the query parameter carrying the position (``after`` for the audit log, whose
    cursor is a sequence number).
    """
    params = [(k, v) for k, v in request.query_params.multi_items() if k != param]
    params.append((param, next_cursor))
    return f'<{request.url.path}?{urlencode(params)}>; rel="next"'


@dataclass(frozen=True, slots=True)
class PageParams:
    """The page a list request asked for, and where to announce the next one."""

    limit: int
    cursor: str | None
    request: Request
    response: Response

    def answer(self, page: Page[T]) -> list[T]:
        """Return the page's items, linking the next page in the response headers."""
        self.link(page.next_cursor)
        return page.items

    def answer_all(
        self,
        items: Sequence[T],
        *,
        key_of: Callable[[T], Sequence[KeyValue]],
        descending: bool = False,
    ) -> list[T]:
        """Page a collection read whole (configuration-sized), ordered by ``key_of``."""
        return self.answer(
            page_in_memory(
                items,
                key_of=key_of,
                limit=self.limit,
                cursor=self.cursor,
                descending=descending,
            )
        )

    def link(self, next_cursor: str | None) -> None:
        """Announce the next page (nothing on the last page)."""
        if next_cursor is not None:
            self.response.headers["Link"] = next_link(self.request, next_cursor)


def _page_params(
    request: Request,
    response: Response,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page (1..1000).")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=1024,
            description='The next page: taken from the previous answer\'s `Link: …; rel="next"`.',
        ),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor, request=request, response=response)


PageDep = Annotated[PageParams, Depends(_page_params)]
