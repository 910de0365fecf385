"""Bound the size of request bodies before any handler reads them.

Clients get a 413 problem that names the limit instead of the server buffering whatever arrives.
Decompressed sizes (gzip-encoded OpenLineage events and OTLP requests) are bounded by
:func:`gunzip`, which stops inflating one byte past the limit, so a gzip bomb costs at most that.
"""

from __future__ import annotations

import json
import zlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lineage.errors import InvalidInput, PayloadTooLarge

__all__ = ["MAX_SQL_BIGINT", "MAX_SQL_INTEGER", "BodySizeLimit", "gunzip"]

MAX_SQL_BIGINT = 2**63 - 1
"""The largest integer a SQL ``BIGINT`` holds: the bound of cursors over ``BIGINT`` columns and of
offsets, so a huge value is a 422, not a driver overflow."""

MAX_SQL_INTEGER = 2**31 - 1
"""The largest integer a SQL ``INTEGER`` holds (PostgreSQL's is 32-bit; SQLite's is not): the bound
of version numbers, which are ``INTEGER`` columns."""


def gunzip(body: bytes, *, limit: int, what: str = "body") -> bytes:
    """Inflate one gzip member, refusing more than ``limit`` bytes of output.

    Raises:
        PayloadTooLarge: The inflated body would exceed ``limit`` (413).
        InvalidInput: The body is not one complete gzip member.
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise InvalidInput(
            f"the body is not valid gzip ({error}); compress it with gzip or drop the "
            "Content-Encoding header",
            field="body",
        ) from None
    if len(out) > limit:
        raise PayloadTooLarge(
            f"the decompressed {what} exceeds {limit} bytes; send smaller ones",
            field="body",
        )
    if not inflater.eof or inflater.unused_data:
        raise InvalidInput(
            "the gzip stream is truncated or followed by extra bytes; send one complete gzip "
            "member",
            field="body",
        )
    return out


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware refusing bodies larger than ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reject over-long bodies with 413 problem+json; pass everything else through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "status": 413,
                "title": "Payload too large",
                "detail": f"the request body exceeds {self.max_bytes} bytes; "
                "split it into smaller batches",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
