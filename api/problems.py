"""Map Warden's error taxonomy to RFC 9457 ``application/problem+json`` responses, in one place.

Domain code raises :mod:`lineage.errors`; this module is the only one that knows HTTP statuses.
Request-validation errors from FastAPI are reshaped so that ``field`` names the offending input
and ``detail`` says how to fix it. Nothing a client sends can produce a 500 with a stack trace:
unexpected exceptions become a bare 500 problem and are logged server-side.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lineage.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    NotInstalled,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
    WardenError,
)

__all__ = ["PROBLEM_JSON", "install_problem_handlers", "problem_response", "status_for"]

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("warden.api")

# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[WardenError], int], ...] = (
    (PayloadTooLarge, 413),
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (RateLimited, 429),
    (Unavailable, 503),
    (NotInstalled, 501),
)


def status_for(error: WardenError) -> int:
    """Return the HTTP status for a domain error."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400


def problem_response(
    *,
    status: int,
    title: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """Build one problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "status": status, "title": title}
    body["detail"] = detail
    if field is not None:
        body["field"] = field
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# Errors of a discriminated union: pydantic locates them at the union, not at its discriminator.
_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


def _loc_to_field(loc: Sequence[Any]) -> str:
    parts = [str(p) or "''" for p in loc]  # an empty key is still a field the client can find
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts)


def _without_union_tags(loc: Sequence[Any], body: Any) -> list[Any]:
    """Drop the tags pydantic inserts into the location of an error inside a discriminated union.

    ``{"kind": "webhook", "id": 1}`` fails at ``("body", "webhook", "id")``; the client sent ``id``.
    A part is a tag when it is not the last, not a key of the object at that point, but one of
    its values.
    """
    kept: list[Any] = list(loc[:1])
    node = body
    for position, part in enumerate(loc[1:], start=2):
        tag = position < len(loc) and isinstance(node, dict) and part not in node
        if tag and part in node.values():
            continue
        kept.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return kept


def _error_field(error: dict[str, Any], body: Any = None) -> str:
    """Name the offending field; for a discriminated union, the discriminator (e.g. ``kind``)."""
    loc = list(error.get("loc", ("body",)))
    if loc[:1] == ["body"]:
        loc = _without_union_tags(loc, body)
    if error.get("type") in _TAG_ERRORS:
        tag = str(error.get("ctx", {}).get("discriminator", "")).strip("'\"")
        if tag.isidentifier():
            loc.append(tag)
    return _loc_to_field(loc)


def _validation_detail(error: dict[str, Any], field: str) -> str:
    kind = error.get("type", "")
    message = str(error.get("msg", "is invalid"))
    if kind == "union_tag_not_found":
        return f"field {field!r} is required to tell which kind of object this is; add it"
    if kind == "extra_forbidden":
        return (
            f"field {field!r} is not accepted here; remove it "
            "(ids, owners and timestamps are set by Warden)"
        )
    if kind == "missing":
        return f"field {field!r} is required; add it"
    if kind == "json_invalid":
        reason = error.get("ctx", {}).get("error", message)
        return f"the body is not valid JSON ({reason}); send a JSON document"
    return f"field {field!r}: {message}; correct the value and retry"


def install_problem_handlers(app: FastAPI) -> None:
    """Register the exception handlers that turn every error into problem+json."""

    @app.exception_handler(WardenError)
    async def _warden(_request: Request, error: WardenError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(error, Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(error, RateLimited):
            headers["Retry-After"] = str(error.retry_after_seconds)
        return problem_response(
            status=status_for(error),
            title=error.title,
            detail=error.detail,
            field=error.field,
            headers=headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = list(error.errors())
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = _error_field(first, error.body)
        invalid = [
            {"field": _error_field(e, error.body), "message": str(e.get("msg", ""))} for e in errors
        ]
        return problem_response(
            status=422,
            title="Invalid input",
            detail=_validation_detail(first, field),
            field=field,
            extra={"errors": invalid},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            status=error.status_code,
            title=str(error.detail) if error.status_code != 404 else "Not found",
            detail=str(error.detail)
            if error.status_code != 404
            else "no such route; see /docs for the API",
            headers=dict(error.headers) if error.headers else None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            status=500,
            title="Internal error",
            detail="Warden failed unexpectedly; the error is logged. Retry, or report it.",
        )
