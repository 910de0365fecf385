"""The one error taxonomy of Warden, raised by domain code and mapped to HTTP once, in ``api``.

Every error carries a message that says what was wrong and what to do about it.

    WardenError
    ├── InvalidInput            a request or document is malformed (names the offending field)
    │   └── PayloadTooLarge     a body or batch exceeds a documented bound
    ├── NotFound                no such object in a project the caller may see
    ├── Conflict                the object exists already or is in the wrong state
    ├── Unauthenticated         no or bad credentials
    ├── PermissionDenied        credentials are fine, the permission is missing
    │   └── SeparationOfDuties  the actor is barred from this action by a duty rule
    ├── RateLimited             too many attempts; retry after a pause
    ├── Unavailable             a dependency (database, artifact store) cannot be reached
    └── NotInstalled            an optional feature whose extra this install lacks
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "InvalidInput",
    "NotFound",
    "NotInstalled",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "SeparationOfDuties",
    "Unauthenticated",
    "Unavailable",
    "WardenError",
]


class WardenError(Exception):
    """Base of every error Warden raises on purpose.

    Attributes:
        title: A short, stable summary of the kind of problem.
        detail: What exactly went wrong and how to fix it.
        field: The dotted path of the offending input field, when there is one.
    """

    title = "Warden error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidInput(WardenError):
    """Raise when a request, event or document is malformed."""

    title = "Invalid input"


class PayloadTooLarge(InvalidInput):
    """Raise when a body or batch exceeds a documented size bound."""

    title = "Payload too large"


class NotFound(WardenError):
    """Raise when an object does not exist in a project the caller may see."""

    title = "Not found"


class Conflict(WardenError):
    """Raise when an object exists already or is in a state that forbids the action."""

    title = "Conflict"


class Unauthenticated(WardenError):
    """Raise when credentials are missing, unknown, expired or revoked."""

    title = "Authentication required"


class PermissionDenied(WardenError):
    """Raise when an authenticated actor lacks the permission for an action."""

    title = "Permission denied"


class SeparationOfDuties(PermissionDenied):
    """Raise when a separation-of-duty rule bars the actor from this action."""

    title = "Separation of duties"


class RateLimited(WardenError):
    """Raise when an actor or address made too many failed attempts."""

    title = "Too many attempts"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(WardenError):
    """Raise when a dependency Warden needs cannot be reached."""

    title = "Service unavailable"


class NotInstalled(WardenError):
    """Raise when a feature needs an optional extra this install lacks (the message names it)."""

    title = "Not installed"
