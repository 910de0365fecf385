"""A project's audit report: every audited change in a period, grouped, with the chain's verdict.

Entries are grouped by what they changed (models, pipelines, policies, approvals, alerts,
monitors, access, reports); denials are listed again on their own. The report carries the
result of verifying the whole audit chain (taken by the caller before reading, so the verdict
covers at least the entries read), the signed checkpoint that covers the period, the incidents
open during it, and what served where at its end (:func:`reports.as_of.as_of`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.audit import AuditEntry, AuditFilter, iter_entries
from governance.audit_verify import VerifyReport
from governance.checkpoints import AuditCheckpoint
from governance.incidents import Incident
from lineage.errors import InvalidInput
from lineage.projects import Project
from lineage.tables import utcnow
from reports.as_of import as_of
from reports.document import iso
from reports.sensitive import Sensitive

__all__ = ["project_report"]

_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("models_and_deployments", ("model.", "model_version.", "model_card.", "deployment.")),
    ("pipelines", ("pipeline", "lineage.")),
    ("policies_and_decisions", ("policy.", "decision.", "gate.", "action.", "retrain.")),
    ("approvals", ("approval.", "approval_rule.")),
    ("alerts_and_incidents", ("incident.", "alert_", "delivery.")),
    ("monitors", ("monitor", "baseline.", "inference.")),
    ("access", ("role.", "principal.", "api_key.", "project.", "auth.", "access.")),
    ("reports_and_audit", ("report.", "audit.")),
)


def _group(action: str) -> str:
    for group, prefixes in _GROUPS:
        if action.startswith(prefixes):
            return group
    return "other"


def _checkpoint_covering(session: Session, seq: int) -> AuditCheckpoint | None:
    return session.exec(
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.seq) >= seq)
        .order_by(sa.asc(col(AuditCheckpoint.seq)))
    ).first()


def _entry_row(entry: AuditEntry, hide: Sensitive, broken_seq: int | None) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": iso(entry.created_at),
        "actor": entry.actor_name,
        "actor_kind": entry.actor_kind,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "reason": hide(entry.reason),
        "detail": hide(entry.detail if entry.detail != "{}" else ""),
        "request_id": hide(entry.request_id),
        "broken": broken_seq is not None and entry.seq == broken_seq,
    }


def project_report(
    *,
    session: Session,
    project_id: uuid.UUID,
    since: datetime,
    until: datetime,
    verification: VerifyReport,
    full: bool,
) -> dict[str, Any]:
    """Return the audit report of a project for ``[since, until)``.

    Args:
        session: A session to read with; nothing is written.
        project_id: The project.
        since: Start of the period (inclusive, timezone-aware).
        until: End of the period (exclusive, timezone-aware).
        verification: The result of verifying the whole chain
            (:func:`governance.audit_verify.verify_store`), taken by the caller before reading,
            so the verdict describes at least the entries read here.
        full: Whether the reader may see sensitive fields.

    Raises:
        InvalidInput: A bound is naive, or the period is empty.
    """
    for field, value in (("since", since), ("until", until)):
        if value.tzinfo is None:
            raise InvalidInput(
                f"{field} has no timezone; give an ISO 8601 time with an offset, e.g. "
                "2026-11-30T12:00Z",
                field=field,
            )
    if until <= since:
        raise InvalidInput("the period is empty: give 'to' after 'from'", field="until")
    hide = Sensitive(full)
    project = session.get(Project, project_id)
    entries = list(
        iter_entries(
            session=session,
            where=AuditFilter(project_id=project_id, since=since, until=until),
        )
    )
    broken = verification.first_broken_seq
    rows = [_entry_row(entry, hide, broken) for entry in entries]
    groups: dict[str, list[dict[str, Any]]] = {group: [] for group, _ in _GROUPS}
    groups["other"] = []
    for row in rows:
        groups[_group(row["action"])].append(row)
    first = entries[0].seq if entries else None
    last = entries[-1].seq if entries else None
    covering = _checkpoint_covering(session, last) if last is not None else None
    in_period = broken is not None and first is not None and last is not None and broken <= last
    incidents = session.exec(
        select(Incident)
        .where(
            Incident.project_id == project_id,
            col(Incident.first_seen_at) < until,
            sa.or_(col(Incident.resolved_at).is_(None), col(Incident.resolved_at) >= since),
        )
        .order_by(sa.asc(col(Incident.first_seen_at)))
    ).all()
    return {
        "kind": "project_audit",
        "generated_at": iso(utcnow()),
        "project": project.name if project else str(project_id),
        "period": {"from": iso(since), "to": iso(until)},
        "redacted": not full,
        "summary": {
            "entries": len(rows),
            "by_group": {group: len(items) for group, items in groups.items()},
            "denied": sum(1 for row in rows if row["outcome"] == "denied"),
            "first_seq": first,
            "last_seq": last,
        },
        "verification": {
            "intact": verification.intact,
            "entries_checked": verification.entries,
            "head_seq": verification.head_seq,
            "first_broken_seq": broken,
            "problem": verification.problem,
            "affects_period": in_period,
            "checkpoints": verification.checkpoints,
            "checkpoints_verified": verification.checkpoints_verified,
            "covering_checkpoint": (
                {
                    "seq": covering.seq,
                    "entry_hash": covering.entry_hash,
                    "key_id": covering.key_id,
                    "signed_at": iso(covering.created_at),
                    "signature": covering.signature,
                }
                if covering is not None
                else None
            ),
        },
        "groups": groups,
        "denied": [row for row in rows if row["outcome"] == "denied"],
        "incidents": [
            {
                "id": str(incident.id),
                "source": f"{incident.source_kind}:{incident.source_id}",
                "state": incident.state,
                "severity": incident.severity,
                "count": incident.count,
                "first_seen_at": iso(incident.first_seen_at),
                "resolved_at": iso(incident.resolved_at),
                "resolved_by": hide(incident.resolved_by),
            }
            for incident in incidents
        ],
        "as_of_end": as_of(session=session, project_id=project_id, at=until, full=full),
    }
