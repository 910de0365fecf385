"""Name the targets of audit entries for people: ``monitor:3f2c…`` reads as ``income-drift``.

Entries keep the raw target (the chain hashes it; the search filters on it); the audit page
shows the name beside it, linked to its page. Targets are looked up per kind in one query
each, within the project for project-owned kinds, so a name from elsewhere is never shown.
A target whose object is gone (a deleted rule) keeps its raw form.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlmodel import Session, col, select

from governance.alerts import AlertRule
from governance.approvals import ApprovalRequest
from governance.channels import Channel
from governance.identity import Principal
from governance.incidents import Incident
from governance.policies import Policy
from lineage.models import Deployment, ModelVersion, VersionKind
from lineage.projects import Project
from monitors.models import Monitor
from retrain.pipelines import Pipeline

__all__ = ["TargetName", "target_names"]


@dataclass(frozen=True, slots=True)
class TargetName:
    """What a person reads for a target, and the page it opens (if any)."""

    label: str
    href: str | None


@dataclass(frozen=True, slots=True)
class _Kind:
    table: Any
    label: Callable[[Any], str]
    href: Callable[[str, Any], str | None]
    in_project: bool = True


_KINDS: dict[str, _Kind] = {
    "monitor": _Kind(Monitor, lambda m: m.name, lambda p, m: f"{p}/monitors/{m.id}"),
    "policy": _Kind(Policy, lambda x: x.name, lambda p, x: f"{p}/policies/{x.id}"),
    "alert_rule": _Kind(AlertRule, lambda r: r.name, lambda p, r: f"{p}/alerts?rule={r.id}"),
    "alert_channel": _Kind(Channel, lambda c: c.name, lambda p, c: f"{p}/alerts"),
    "pipeline": _Kind(Pipeline, lambda x: x.name, lambda p, x: f"{p}/pipelines"),
    "model_version": _Kind(
        ModelVersion,
        lambda v: f"{v.name} v{v.version}",
        lambda p, v: (
            f"{p}/{'prompts' if v.kind == VersionKind.PROMPT else 'models'}/{quote(v.name)}"
            f"/versions/{quote(v.version)}"
        ),
    ),
    "deployment": _Kind(
        Deployment,
        lambda d: f"{d.name} ({d.environment})",
        lambda p, d: f"{p}/deployments/{d.id}",
    ),
    "approval": _Kind(
        ApprovalRequest,
        lambda a: f"{a.action} request by {a.requested_by_name}",
        lambda p, a: f"{p}/approvals",
    ),
    "incident": _Kind(
        Incident,
        lambda i: f"incident ({i.severity}) of {i.source_kind}",
        lambda p, i: f"{p}/incidents?state=all",
    ),
    "principal": _Kind(Principal, lambda x: x.name, lambda p, x: None, in_project=False),
}


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def target_names(
    *, session: Session, project: Project, targets: Iterable[str]
) -> dict[str, TargetName]:
    """Return a name for each target of the known kinds whose object is found."""
    wanted: dict[str, dict[uuid.UUID, str]] = {}
    for target in set(targets):
        kind, _, raw = target.partition(":")
        found = _uuid(raw)
        if found is not None and (kind in _KINDS or kind == "project"):
            wanted.setdefault(kind, {})[found] = target
    base = f"/p/{quote(project.name)}"
    names: dict[str, TargetName] = {}
    if project.id in wanted.pop("project", {}):
        names[f"project:{project.id}"] = TargetName(project.name, base)
    for kind, ids in wanted.items():
        spec = _KINDS[kind]
        query = select(spec.table).where(col(spec.table.id).in_(list(ids)))
        if spec.in_project:
            query = query.where(spec.table.project_id == project.id)
        for row in session.exec(query).all():
            names[ids[row.id]] = TargetName(spec.label(row), spec.href(base, row))
    return names
