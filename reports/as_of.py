"""What served where at a moment, under which policies and baselines, and who changed them.

Serving comes from the deployments live at that moment; policies and baselines are replayed
from the audit log up to it (policy creation, versions, activation and switches; baseline
creation), so the answer is what was in force then, whatever the tables hold now.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.audit import AuditEntry
from lineage.deployments import live_deployments
from lineage.models import ModelVersion
from lineage.projects import Project
from lineage.tables import utcnow
from reports.document import iso, principal_names
from reports.sensitive import Sensitive
from retrain.champions import Promotion

__all__ = ["as_of"]


_POLICY_STATE_ACTIONS = (
    "policy.create",
    "policy.version",
    "policy.activate",
    "policy.enable",
    "policy.disable",
)


def _detail(entry: AuditEntry) -> dict[str, Any]:
    try:
        value = json.loads(entry.detail or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _policy_states(entries: Iterable[AuditEntry], hide: Sensitive) -> list[dict[str, Any]]:
    """Replay policy changes in order: each policy's name, active version and switch at the end."""
    states: dict[str, dict[str, Any]] = {}
    for entry in entries:
        detail = _detail(entry)
        state = states.setdefault(
            entry.target,
            {"target": entry.target, "name": None, "active_version": None, "enabled": True},
        )
        state["name"] = detail.get("name", state["name"])
        if entry.action == "policy.version":
            state["active_version"] = detail.get("active_version")
        elif entry.action == "policy.activate":
            state["active_version"] = detail.get("after")
        elif entry.action in ("policy.enable", "policy.disable"):
            state["enabled"] = bool(detail.get("after"))
        state.update(last_change=entry.action, at=iso(entry.created_at), by=hide(entry.actor_name))
    return sorted(states.values(), key=lambda s: (str(s["name"]), s["target"]))


def _baseline_states(entries: Iterable[AuditEntry], hide: Sensitive) -> list[dict[str, Any]]:
    """Return the newest baseline created for each deployment (the one monitor runs read)."""
    newest: dict[str, dict[str, Any]] = {}
    for entry in entries:
        after = _detail(entry).get("after") or {}
        deployment = str(after.get("deployment_id") or entry.target)
        newest[deployment] = {
            "deployment_id": deployment,
            "baseline": entry.target,
            "dataset_version_id": after.get("dataset_version_id"),
            "at": iso(entry.created_at),
            "by": hide(entry.actor_name),
        }
    return [newest[key] for key in sorted(newest)]


def as_of(*, session: Session, project_id: uuid.UUID, at: datetime, full: bool) -> dict[str, Any]:
    """Return what served where at ``at``, under which policies and baselines, and who changed them.

    Policies and baselines are replayed from the audit log up to ``at`` (policy creation,
    versions, activation and switches; baseline creation), so the answer is what was in force
    then, whatever the tables hold now, with who made each last change.

    Raises:
        InvalidInput: ``at`` is naive.
    """
    hide = Sensitive(full)
    live = live_deployments(session=session, project_id=project_id, as_of=at)
    versions = {
        v.id: v
        for v in session.exec(
            select(ModelVersion).where(col(ModelVersion.id).in_([d.model_version_id for d in live]))
        )
    }
    promotions = {
        p.lineage_deployment_id: p
        for p in session.exec(
            select(Promotion).where(col(Promotion.lineage_deployment_id).in_([d.id for d in live]))
        )
    }
    names = principal_names(session, [d.recorded_by for d in live])
    serving = []
    for deployment in live:
        version = versions.get(deployment.model_version_id)
        promotion = promotions.get(deployment.id)
        serving.append(
            {
                "deployment": deployment.name,
                "environment": deployment.environment,
                "model": version.name if version else None,
                "version": version.version if version else None,
                "live_from": iso(deployment.live_from),
                "imported": deployment.imported,
                "changed_by": hide(
                    promotion.actor_name
                    if promotion
                    else names.get(deployment.recorded_by)
                    if deployment.recorded_by
                    else None
                ),
                "change": promotion.kind if promotion else "recorded",
                "approval_id": str(promotion.approval_id)
                if promotion and promotion.approval_id
                else None,
            }
        )
    changes = session.exec(
        select(AuditEntry)
        .where(
            AuditEntry.project_id == project_id,
            col(AuditEntry.created_at) <= at,
            AuditEntry.outcome == "success",
            sa.or_(
                col(AuditEntry.action).startswith("policy."),
                col(AuditEntry.action).startswith("baseline."),
            ),
        )
        .order_by(sa.asc(col(AuditEntry.seq)))
    ).all()
    project = session.get(Project, project_id)
    return {
        "kind": "as_of",
        "generated_at": iso(utcnow()),
        "project": project.name if project else str(project_id),
        "redacted": not full,
        "at": iso(at),
        "serving": serving,
        "policies": _policy_states((e for e in changes if e.action in _POLICY_STATE_ACTIONS), hide),
        "baselines": _baseline_states((e for e in changes if e.action == "baseline.create"), hide),
    }
