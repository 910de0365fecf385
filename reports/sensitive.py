"""What a reader who may not see sensitive fields sees instead: :data:`REDACTED`.

Sensitive fields are free-text reasons and notes, artifact and data URIs, audit details and
request ids, and the names of people other than owners. A reader sees them only with
``audit:read`` in the project (:func:`sees_sensitive`); every report document passes each such
field through a :class:`Sensitive` built for its reader.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

from governance.actors import Actor
from governance.permissions import Permission
from governance.roles import permissions_of

__all__ = ["REDACTED", "Sensitive", "sees_sensitive"]

REDACTED = "[redacted]"
"""What a reader without ``audit:read`` sees in place of a sensitive field."""


def sees_sensitive(*, session: Session, actor: Actor, project_id: uuid.UUID) -> bool:
    """Return whether ``actor`` may see sensitive report fields (holds ``audit:read`` there)."""
    return Permission.AUDIT_READ in permissions_of(
        session=session, actor=actor, project_id=project_id
    )


class Sensitive:
    """Hide sensitive values from readers who may not see them (empty values stay empty)."""

    def __init__(self, full: bool) -> None:
        self.full = full

    def __call__(self, value: Any) -> Any:
        """Return ``value`` for a full reader, :data:`REDACTED` for anyone else."""
        if self.full or value is None or value == "":
            return value
        return REDACTED
