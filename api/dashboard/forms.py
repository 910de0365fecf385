"""What every authoring form shares: its gate (permission, then CSRF), and its errors per field.

A form route carries :func:`form_gate` instead of a bare gate: the route's permission is
checked first (refused and audited by :class:`api.security.Gate`), then the form's CSRF
token; a forged post (no token, another session's token) is refused with 403 and audited as
``access.denied`` in a transaction of its own, before the request's session does anything.

A form handler turns its fields into the REST route's body model and calls the REST route's
own handler, so a form and its API route share one code path (checks, service, audit). When
that raises, :func:`errors_of` names the form field to show the message beside, and the
handler rolls its session back before drawing the form again: nothing is left behind.
"""

# No ``from __future__ import annotations``: form_gate's dependency declares its gate in an
# annotation that must be evaluated where the closure can see ``permission``.

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated

from fastapi import Depends, Form, Request
from pydantic import ValidationError

from api.deps import EngineDep
from api.problems import status_for
from api.security import require
from api.web_session import check_csrf
from governance.actors import Actor
from governance.audit import append_in_own_transaction
from governance.permissions import Permission
from lineage.errors import InvalidInput, PermissionDenied, WardenError

__all__ = [
    "FORM_ERROR",
    "errors_of",
    "form_fields",
    "form_gate",
    "lines",
    "pairs",
    "status_of",
]

FORM_ERROR = "form"
"""The key of an error that belongs to no one field (shown above the form)."""


def form_gate(permission: Permission) -> Callable[..., Actor]:
    """Return the dependency admitting a form post: ``permission`` held, CSRF token valid."""

    def checked(
        request: Request,
        actor: Annotated[Actor, Depends(require(permission))],
        engine: EngineDep,
        csrf_token: Annotated[str | None, Form(max_length=128)] = None,
    ) -> Actor:
        try:
            check_csrf(request, csrf_token)
        except PermissionDenied as denied:
            route = request.scope.get("route")
            action = f"{request.method} {getattr(route, 'path', request.url.path)}"
            append_in_own_transaction(
                engine=engine,
                actor=actor,
                action="access.denied",
                target=f"route:{action}",
                reason=f"{action}: {denied.detail}",
                project_id=actor.project_id,
            )
            raise
        return actor

    return checked


def lines(text: str) -> list[str]:
    """Split a text box or comma list into its non-empty, stripped items."""
    return [item.strip() for item in text.replace(",", "\n").splitlines() if item.strip()]


def pairs(text: str, *, field: str) -> dict[str, str]:
    """Read ``key = value`` lines (or ``key: value``) into a mapping.

    Raises:
        InvalidInput: A line has no ``=`` or ``:`` (``field`` names the text box).
    """
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.replace(":", "=", 1).partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"line {number}: write 'name = value'", field=field)
        found[key.strip()] = value.strip()
    return found


def _field_of(path: str, fields: Mapping[str, str]) -> str:
    """Return the form field showing an error at body ``path`` (longest matching prefix)."""
    for prefix in sorted(fields, key=len, reverse=True):
        if path == prefix or path.startswith(f"{prefix}.") or path.startswith(f"{prefix}["):
            return fields[prefix]
    return FORM_ERROR


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text = f"{text}[{part}]" if isinstance(part, int) else (f"{text}.{part}" if text else part)
    return text


def errors_of(error: ValidationError | WardenError, fields: Mapping[str, str]) -> dict[str, str]:
    """Return the messages of ``error`` by form field; ``fields`` maps body paths to fields."""
    if isinstance(error, WardenError):
        return {_field_of(error.field or "", fields): error.detail}
    found: dict[str, str] = {}
    for item in error.errors():
        path = _path(tuple(p for p in item["loc"] if isinstance(p, int | str)))
        message = str(item["msg"]).removeprefix("Value error, ")
        found.setdefault(_field_of(path, fields), f"{path}: {message}" if path else message)
    return found


def status_of(error: ValidationError | WardenError) -> int:
    """Return the status a form answers with when ``error`` refused it (as the API would)."""
    return 422 if isinstance(error, ValidationError) else status_for(error)


def form_fields(*names: str, max_length: int = 20_000) -> Callable[..., Awaitable[dict[str, str]]]:
    """Return a dependency reading the text fields ``names`` of a posted form ("" if absent).

    Starlette keeps the parsed form on the request, so the gate's ``csrf_token`` and the
    handler's own ``Form`` parameters read the same body.

    Raises:
        InvalidInput: A field is longer than ``max_length`` or is a file.
    """

    async def read(request: Request) -> dict[str, str]:
        form = await request.form()
        found: dict[str, str] = {}
        for name in names:
            value = form.get(name, "")
            if not isinstance(value, str):
                raise InvalidInput(f"{name} must be text, not a file", field=name)
            if len(value) > max_length:
                raise InvalidInput(f"{name} is longer than {max_length} characters", field=name)
            found[name] = value
        return found

    return read
