"""Who is acting: the identity every service call and audit entry carries.

An :class:`Actor` is resolved once per request (from an API key or a session cookie) or built by
automation (scheduler, worker) from its service account; services never look up the caller
themselves. ``project_id`` is the project the action is scoped to, when there is one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = ["Actor", "PrincipalKind"]


class PrincipalKind(StrEnum):
    """People sign in; service accounts automate; ``system`` is Warden acting on its own."""

    PERSON = "person"
    SERVICE = "service"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """The principal behind an action, as recorded in the audit log.

    Attributes:
        principal_id: The principal's id; ``None`` only for ``SYSTEM``.
        name: Username or service-account name, as shown to auditors.
        kind: Person, service account or the system itself.
        is_admin: Whether the principal is a global administrator.
        project_id: The project the current action is scoped to, if any.
        request_id: The HTTP request (or job) id that ties log lines and audit entries together.
    """

    principal_id: uuid.UUID | None
    name: str
    kind: PrincipalKind
    is_admin: bool = False
    project_id: uuid.UUID | None = None
    request_id: str | None = None

    def in_project(self, project_id: uuid.UUID) -> Actor:
        """Return the same actor scoped to ``project_id``."""
        return replace(self, project_id=project_id)

    @classmethod
    def system(cls, *, request_id: str | None = None) -> Actor:
        """Return the actor for actions Warden takes on its own (migrations, bootstrap)."""
        return cls(
            principal_id=None, name="warden", kind=PrincipalKind.SYSTEM, request_id=request_id
        )
