"""Incidents: an alert that keeps firing is one open incident, not a message per run.

:func:`route_findings` is the entry point for whoever has a run's findings (the worker, after a
monitor run). For each enabled rule of the project that watches the source:

- findings reach the rule's ``min_status`` → the open incident keyed by
  (project, source kind, source id, rule) is updated (count, last seen, latest findings) or, if
  there is none, opened; people are told when it opens and when it escalates from ``warn`` to
  ``alert`` — not on every run;
- findings in the rule's scope were judged and none reaches it → the open incident is resolved
  (and people are told);
- nothing in scope was judged (no findings, or only ``insufficient``) → nothing changes, since
  "too little data" is not "back to normal".

The same run routed twice (a retried job) counts once. Acknowledging an incident says someone is
on it; it stays open, keeps counting and still resolves by itself. Every state change is audited
in the caller's transaction, alongside the deliveries it queues.

At most one incident per key is open: ``open_key`` holds the key while open and ``NULL`` after,
under a unique constraint — portable across SQLite and PostgreSQL, and race-proof.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field as SQLField
from sqlmodel import Session, col, select

from governance.actors import Actor
from governance.alerts import AlertRule, judged_in_scope, list_rules, rule_channel_ids, triggering
from governance.audit import act_then_audit, append
from governance.delivery import DeliveryPolicy, build_event, enqueue
from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.pages import DEFAULT_PAGE_SIZE, Page, SortKey, keyset_page
from lineage.projects import Project
from lineage.tables import AwareDateTime, Record, utcnow
from monitors.findings import Finding, FindingList, Status, worst_status

__all__ = [
    "Incident",
    "IncidentState",
    "acknowledge_incident",
    "get_incident",
    "incident_view",
    "list_incidents",
    "page_incidents",
    "resolve_incident",
    "route_findings",
]


class IncidentState(StrEnum):
    """Open (nobody on it yet), acknowledged (someone is), resolved."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Incident(Record, table=True):
    """One continuing problem of one source under one rule."""

    __tablename__ = "governance_incident"

    project_id: uuid.UUID = SQLField(foreign_key="lineage_project.id", index=True)
    rule_id: uuid.UUID = SQLField(foreign_key="governance_alert_rule.id", index=True)
    source_kind: str = SQLField(sa_column=sa.Column(sa.String(50), nullable=False))
    source_id: str = SQLField(sa_column=sa.Column(sa.String(100), nullable=False))
    open_key: str | None = SQLField(
        default=None, sa_column=sa.Column(sa.String(300), nullable=True, unique=True)
    )
    state: str = SQLField(
        default=IncidentState.OPEN, sa_column=sa.Column(sa.String(20), nullable=False, index=True)
    )
    severity: str = SQLField(sa_column=sa.Column(sa.String(10), nullable=False))
    count: int = SQLField(default=1, nullable=False)
    first_seen_at: datetime = SQLField(sa_column=sa.Column(AwareDateTime(), nullable=False))
    last_seen_at: datetime = SQLField(sa_column=sa.Column(AwareDateTime(), nullable=False))
    last_run_id: str | None = SQLField(
        default=None, sa_column=sa.Column(sa.String(100), nullable=True)
    )
    findings: list[Finding] = SQLField(
        default_factory=list, sa_column=sa.Column(FindingList(), nullable=False)
    )
    acknowledged_at: datetime | None = SQLField(
        default=None, sa_column=sa.Column(AwareDateTime(), nullable=True)
    )
    acknowledged_by: str | None = SQLField(
        default=None, sa_column=sa.Column(sa.String(200), nullable=True)
    )
    resolved_at: datetime | None = SQLField(
        default=None, sa_column=sa.Column(AwareDateTime(), nullable=True)
    )
    resolved_by: str | None = SQLField(
        default=None, sa_column=sa.Column(sa.String(200), nullable=True)
    )
    note: str = SQLField(default="", sa_column=sa.Column(sa.Text, nullable=False))


def _key(project_id: uuid.UUID, source_kind: str, source_id: str, rule_id: uuid.UUID) -> str:
    return f"{project_id}:{source_kind}:{source_id}:{rule_id}"


def incident_view(incident: Incident, *, rule_name: str | None = None) -> dict[str, Any]:
    """Return a JSON-ready view of an incident."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(incident.id),
        "rule_id": str(incident.rule_id),
        "rule_name": rule_name,
        "source_kind": incident.source_kind,
        "source_id": incident.source_id,
        "state": incident.state,
        "severity": incident.severity,
        "count": incident.count,
        "first_seen_at": iso(incident.first_seen_at),
        "last_seen_at": iso(incident.last_seen_at),
        "last_run_id": incident.last_run_id,
        "findings": [finding.to_dict() for finding in incident.findings],
        "acknowledged_at": iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "resolved_at": iso(incident.resolved_at),
        "resolved_by": incident.resolved_by,
        "note": incident.note,
    }


def _summary(incident: Incident, rule: AlertRule, verb: str) -> tuple[str, str]:
    title = (
        f"{incident.severity.upper()}: {rule.name} {verb} for "
        f"{incident.source_kind} {incident.source_id}"
    )
    lines = [
        f"- {f.monitor} {f.metric} ({f.scope}) = {f.value} [threshold {f.threshold}, {f.status}]"
        for f in incident.findings[:10]
    ]
    more = len(incident.findings) - 10
    if more > 0:
        lines.append(f"- … and {more} more")
    summary = f"Seen {incident.count} time(s) since {incident.first_seen_at.isoformat()}."
    return title, "\n".join([summary, *lines])


def _notify(
    *,
    session: Session,
    project: Project,
    incident: Incident,
    rule: AlertRule,
    event: str,
    verb: str,
    run_id: str | None,
    now: datetime,
    policy: DeliveryPolicy | None,
) -> None:
    title, summary = _summary(incident, rule, verb)
    data = {
        "title": title,
        "summary": summary,
        "project": project.name,
        "run_id": run_id,
        "incident": incident_view(incident, rule_name=rule.name),
    }
    cloud_event = build_event(
        project=project,
        event_type=f"io.warden.incident.{event}",
        subject=f"incidents/{incident.id}",
        data=data,
        now=now,
    )
    enqueue(
        session=session,
        project_id=project.id,
        channel_ids=rule_channel_ids(session=session, rule_id=rule.id),
        event=cloud_event,
        incident_id=incident.id,
        now=now,
        policy=policy,
    )


def _open_incident(*, session: Session, key: str) -> Incident | None:
    return session.exec(select(Incident).where(Incident.open_key == key)).first()


def route_findings(
    *,
    session: Session,
    actor: Actor,
    project_id: uuid.UUID,
    source_kind: str,
    source_id: str,
    run_id: str | None,
    findings: list[Finding],
    now: datetime | None = None,
    policy: DeliveryPolicy | None = None,
    resolve: bool = True,
) -> list[Incident]:
    """Evaluate the project's alert rules on one run's findings; open, update or resolve incidents.

    Args:
        session: The caller's session (not committed here).
        actor: Who routes (the worker's service account); recorded in the audit log.
        project_id: The project the findings belong to.
        source_kind: What produced them, e.g. ``monitor``.
        source_id: Which one, e.g. the monitor's id.
        run_id: The run, so the same run routed twice counts once.
        findings: The run's findings.
        now: The time of the run (defaults to now).
        policy: Retry policy for the deliveries queued.
        resolve: Whether findings back to normal resolve an incident. A policy's action passes
            ``False``: it hands in only the findings its rule held on, which say nothing about
            the others that keep an incident open, so they join the open incident instead.

    Returns:
        The incidents opened, updated or resolved by this run.
    """
    if not source_kind or not source_id:
        raise InvalidInput("source_kind and source_id are required", field="source_id")
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project {project_id}")
    at = now or utcnow()
    touched: list[Incident] = []
    for rule in list_rules(session=session, project_id=project_id, enabled_only=True):
        if not rule.covers(source_id):
            continue
        key = _key(project_id, source_kind, source_id, rule.id)
        incident = _open_incident(session=session, key=key)
        firing = triggering(rule, findings)
        if firing:
            severity = worst_status([f.status for f in firing])
            if incident is None:
                incident = Incident(
                    project_id=project_id,
                    rule_id=rule.id,
                    source_kind=source_kind,
                    source_id=source_id,
                    open_key=key,
                    severity=severity,
                    count=1,
                    first_seen_at=at,
                    last_seen_at=at,
                    last_run_id=run_id,
                    findings=list(firing),
                )
                session.add(incident)
                session.flush()
                _notify(
                    session=session,
                    project=project,
                    incident=incident,
                    rule=rule,
                    event="opened",
                    verb="firing",
                    run_id=run_id,
                    now=at,
                    policy=policy,
                )
                append(
                    session=session,
                    actor=actor,
                    action="incident.open",
                    target=f"incident:{incident.id}",
                    project_id=project_id,
                    detail={
                        "rule": rule.name,
                        "source": f"{source_kind}:{source_id}",
                        "severity": severity,
                        "run_id": run_id,
                    },
                )
            elif run_id is None or incident.last_run_id != run_id:
                escalated = severity == Status.ALERT and incident.severity == Status.WARN
                incident.count += 1
                incident.last_seen_at = at
                incident.last_run_id = run_id
                incident.findings = list(firing)
                if escalated:
                    incident.severity = Status.ALERT
                session.add(incident)
                session.flush()
                if escalated:
                    _notify(
                        session=session,
                        project=project,
                        incident=incident,
                        rule=rule,
                        event="escalated",
                        verb="escalated",
                        run_id=run_id,
                        now=at,
                        policy=policy,
                    )
            touched.append(incident)
        elif incident is not None and judged_in_scope(rule, findings):
            if not resolve:  # a policy's findings join the open incident, never close it
                touched.append(incident)
                continue
            incident.state = IncidentState.RESOLVED
            incident.open_key = None
            incident.resolved_at = at
            incident.resolved_by = "warden (findings back to normal)"
            incident.last_run_id = run_id
            session.add(incident)
            session.flush()
            _notify(
                session=session,
                project=project,
                incident=incident,
                rule=rule,
                event="resolved",
                verb="resolved",
                run_id=run_id,
                now=at,
                policy=policy,
            )
            append(
                session=session,
                actor=actor,
                action="incident.resolve",
                target=f"incident:{incident.id}",
                project_id=project_id,
                reason="findings returned to normal",
                detail={"run_id": run_id},
            )
            touched.append(incident)
    return touched


def get_incident(*, session: Session, project_id: uuid.UUID, incident_id: uuid.UUID) -> Incident:
    """Return the project's incident or raise :class:`NotFound`."""
    incident = session.get(Incident, incident_id)
    if incident is None or incident.project_id != project_id:
        raise NotFound(f"no incident {incident_id} in this project; list incidents first")
    return incident


def list_incidents(
    *,
    session: Session,
    project_id: uuid.UUID | None,
    state: IncidentState | None = None,
    open_only: bool = False,
    limit: int = 100,
) -> list[Incident]:
    """Return incidents, most recently seen first; all projects when ``project_id`` is ``None``."""
    return page_incidents(
        session=session, project_id=project_id, state=state, open_only=open_only, limit=limit
    ).items


def page_incidents(
    *,
    session: Session,
    project_id: uuid.UUID | None,
    state: IncidentState | None = None,
    open_only: bool = False,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[Incident]:
    """Return a page of incidents, most recently seen first.

    An incident seen again moves to the front: a client paging meanwhile meets it where it
    now is, which is what "most recently seen" means.

    Raises:
        InvalidInput: A cursor this API did not return.
    """
    query = select(Incident)
    if project_id is not None:
        query = query.where(Incident.project_id == project_id)
    if state is not None:
        query = query.where(Incident.state == state)
    if open_only:
        query = query.where(col(Incident.open_key).is_not(None))
    return keyset_page(
        session=session,
        query=query,
        keys=[SortKey(col(Incident.last_seen_at), "desc"), SortKey(col(Incident.id), "desc")],
        key_of=lambda i: (i.last_seen_at, i.id),
        limit=limit,
        cursor=cursor,
    )


def acknowledge_incident(
    *,
    session: Session,
    actor: Actor,
    project_id: uuid.UUID,
    incident_id: uuid.UUID,
    note: str = "",
    now: datetime | None = None,
) -> Incident:
    """Record that ``actor`` is on the incident (audited); it stays open until resolved."""
    incident = get_incident(session=session, project_id=project_id, incident_id=incident_id)
    if incident.state == IncidentState.RESOLVED:
        raise Conflict("this incident is resolved already; nothing to acknowledge")
    if incident.state == IncidentState.ACKNOWLEDGED:
        raise Conflict(f"this incident was acknowledged by {incident.acknowledged_by} already")

    def acknowledge() -> Incident:
        incident.state = IncidentState.ACKNOWLEDGED
        incident.acknowledged_at = now or utcnow()
        incident.acknowledged_by = actor.name
        if note:
            incident.note = note
        session.add(incident)
        return incident

    return act_then_audit(
        acknowledge,
        session=session,
        actor=actor,
        action="incident.acknowledge",
        target=f"incident:{incident.id}",
        project_id=project_id,
        reason=note,
        detail={"before": IncidentState.OPEN.value, "after": IncidentState.ACKNOWLEDGED.value},
    )


def resolve_incident(
    *,
    session: Session,
    actor: Actor,
    project_id: uuid.UUID,
    incident_id: uuid.UUID,
    note: str = "",
    now: datetime | None = None,
) -> Incident:
    """Close an incident by hand (audited); if the findings still fire, the next run reopens one."""
    incident = get_incident(session=session, project_id=project_id, incident_id=incident_id)
    if incident.state == IncidentState.RESOLVED:
        raise Conflict("this incident is resolved already")
    before = incident.state

    def resolve() -> Incident:
        incident.state = IncidentState.RESOLVED
        incident.open_key = None
        incident.resolved_at = now or utcnow()
        incident.resolved_by = actor.name
        if note:
            incident.note = note
        session.add(incident)
        return incident

    return act_then_audit(
        resolve,
        session=session,
        actor=actor,
        action="incident.resolve",
        target=f"incident:{incident.id}",
        project_id=project_id,
        reason=note,
        detail={"before": before, "after": IncidentState.RESOLVED.value},
    )
