"""How every report document writes a moment and names a person, so all reports read alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from governance.identity import Principal

__all__ = ["iso", "principal_names"]


def iso(value: datetime | None) -> str | None:
    """Return a moment as ISO 8601 text (``None`` stays ``None``: the fact was not recorded)."""
    return value.isoformat() if value is not None else None


def principal_names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Return the names of the principals with the given ids (unknown ids are left out)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(Principal).where(col(Principal.id).in_(wanted))).all()
    return {row.id: row.name for row in rows}
