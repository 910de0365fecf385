"""Generate a report as its reader may see it, and audit that it was generated.

The one path the API, the dashboard, the CLI and the render jobs share, so every generation is
redacted for its reader (:func:`reports.sensitive.sees_sensitive`) and audited alike, in the
caller's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session

from governance.actors import Actor
from governance.audit import append
from governance.audit_verify import VerifyReport
from reports.model_card import model_card
from reports.project_report import project_report
from reports.sensitive import sees_sensitive

__all__ = ["audit_generation", "generate_model_card", "generate_project_report"]


def audit_generation(
    *, session: Session, actor: Actor, project_id: uuid.UUID, report: str, target: str, fmt: str
) -> None:
    """Record in the audit log that ``actor`` generated a report (in the caller's transaction)."""
    append(
        session=session,
        actor=actor,
        action="report.generate",
        target=target,
        detail={"report": report, "format": fmt},
        project_id=project_id,
    )


def generate_model_card(
    *, session: Session, actor: Actor, project_id: uuid.UUID, name: str, version: str, fmt: str
) -> dict[str, Any]:
    """Build a version's model card as ``actor`` may see it, and audit that it was generated.

    The one path the API, the dashboard and the CLI share, so every generation is redacted and
    audited alike.
    """
    full = sees_sensitive(session=session, actor=actor, project_id=project_id)
    document = model_card(
        session=session, project_id=project_id, name=name, version=version, full=full
    )
    audit_generation(
        session=session,
        actor=actor,
        project_id=project_id,
        report="model",
        target=f"model:{name}:{version}",
        fmt=fmt,
    )
    return document


def generate_project_report(
    *,
    session: Session,
    actor: Actor,
    project_id: uuid.UUID,
    since: datetime,
    until: datetime,
    verification: VerifyReport,
    fmt: str,
) -> dict[str, Any]:
    """Build a project's audit report for ``[since, until)`` as ``actor`` may see it, audited."""
    full = sees_sensitive(session=session, actor=actor, project_id=project_id)
    document = project_report(
        session=session,
        project_id=project_id,
        since=since,
        until=until,
        verification=verification,
        full=full,
    )
    audit_generation(
        session=session,
        actor=actor,
        project_id=project_id,
        report="project",
        target=f"period:{since.isoformat()}..{until.isoformat()}",
        fmt=fmt,
    )
    return document
