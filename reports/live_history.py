"""What happened to a model version once live, for its model card.

Its deployments (with the promotion or rollback that made each), every run of the monitors on
those deployments, the incidents they raised, and the fairness and global explanations the
newest computed monitor runs measured. Each fact is read from a stored row.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.incidents import Incident
from lineage.models import Deployment, ModelVersion
from monitors.findings import RunSummary, run_status
from monitors.models import Monitor
from monitors.run_jobs import read_runs
from reports.document import iso, principal_names
from reports.sensitive import Sensitive
from retrain.champions import Promotion

__all__ = [
    "deployment_history",
    "global_explanations",
    "monitor_history",
    "monitored_fairness",
]


def deployment_history(
    session: Session, model_version: ModelVersion, hide: Sensitive
) -> tuple[list[Deployment], list[dict[str, Any]]]:
    """Return a version's deployments, oldest first, and their rows (who changed what, why)."""
    deployments = list(
        session.exec(
            select(Deployment)
            .where(
                Deployment.project_id == model_version.project_id,
                Deployment.model_version_id == model_version.id,
            )
            .order_by(sa.asc(col(Deployment.live_from)))
        ).all()
    )
    promotions = {
        p.lineage_deployment_id: p
        for p in session.exec(
            select(Promotion).where(
                Promotion.project_id == model_version.project_id,
                col(Promotion.lineage_deployment_id).in_([d.id for d in deployments]),
            )
        ).all()
    }
    replaced_ids = [p.previous_version_id for p in promotions.values() if p.previous_version_id]
    replaced = {
        v.id: v.version
        for v in session.exec(select(ModelVersion).where(col(ModelVersion.id).in_(replaced_ids)))
    }
    recorders = principal_names(session, [d.recorded_by for d in deployments])
    rows = []
    for deployment in deployments:
        promotion = promotions.get(deployment.id)
        rows.append(
            {
                "deployment": deployment.name,
                "environment": deployment.environment,
                "live_from": iso(deployment.live_from),
                "imported": deployment.imported,
                "live_until": iso(deployment.live_until),
                "change": promotion.kind if promotion else "recorded",
                "replaced_version": (
                    replaced.get(promotion.previous_version_id)
                    if promotion and promotion.previous_version_id
                    else None
                ),
                "by": hide(
                    promotion.actor_name
                    if promotion
                    else recorders.get(deployment.recorded_by)
                    if deployment.recorded_by
                    else None
                ),
                "reason": hide(promotion.reason) if promotion else None,
                "approval_id": str(promotion.approval_id)
                if promotion and promotion.approval_id
                else None,
            }
        )
    return deployments, rows


def monitor_history(
    session: Session,
    model_version: ModelVersion,
    deployments: Sequence[Deployment],
    hide: Sensitive,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the monitors on the deployments with every run, and the incidents they raised."""
    deployment_ids = [d.id for d in deployments]
    monitors = list(
        session.exec(
            select(Monitor)
            .where(
                Monitor.project_id == model_version.project_id,
                col(Monitor.deployment_id).in_(deployment_ids),
            )
            .order_by(sa.asc(col(Monitor.created_at)))
        ).all()
    )
    runs = read_runs(session=session, monitor_ids=[m.id for m in monitors], newest_first=False)
    by_id = {m.id: m for m in monitors}
    states = Counter(str(run.state) for run in runs)
    history = {
        "since": iso(deployments[0].live_from) if deployments else None,
        "monitors": [
            {"name": m.name, "kind": m.kind, "window": m.window, "paused": m.paused}
            for m in monitors
        ],
        "runs": [
            {
                "monitor": by_id[run.monitor_id].name,
                "kind": by_id[run.monitor_id].kind,
                "scheduled_for": iso(run.scheduled_for),
                "state": str(run.state),
                "window_start": iso(run.window_start),
                "window_end": iso(run.window_end),
                "status": _verdict(run.summary),
                "summary": run.summary,
                "error": run.error,
            }
            for run in runs
        ],
        "run_states": dict(sorted(states.items())),
    }
    sources = {str(m.id) for m in monitors} | {str(d) for d in deployment_ids}
    sources.add(str(model_version.id))
    incidents = session.exec(
        select(Incident)
        .where(
            Incident.project_id == model_version.project_id,
            col(Incident.source_id).in_(sorted(sources)),
        )
        .order_by(sa.asc(col(Incident.first_seen_at)))
    ).all()
    incident_rows = [
        {
            "id": str(incident.id),
            "source": f"{incident.source_kind}:{incident.source_id}",
            "monitor": by_id[uuid.UUID(incident.source_id)].name
            if _is_uuid(incident.source_id) and uuid.UUID(incident.source_id) in by_id
            else None,
            "state": incident.state,
            "severity": incident.severity,
            "count": incident.count,
            "first_seen_at": iso(incident.first_seen_at),
            "last_seen_at": iso(incident.last_seen_at),
            "acknowledged_by": hide(incident.acknowledged_by),
            "resolved_at": iso(incident.resolved_at),
            "resolved_by": hide(incident.resolved_by),
            "note": hide(incident.note),
        }
        for incident in incidents
    ]
    return history, incident_rows


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _verdict(summary: dict[str, Any] | None) -> str | None:
    """Return a run's verdict by the monitors' one rule (``None`` when it has none)."""
    verdict = run_status(RunSummary.from_json(summary))
    return None if verdict is None else verdict.value


def _latest_findings(history: dict[str, Any], kind: str) -> tuple[dict[str, Any], list[Any]]:
    """Return the newest computed run of a monitor kind and its findings (``{}, []`` if none)."""
    for run in reversed(history["runs"]):
        summary = run.get("summary") or {}
        if run["kind"] == kind and summary.get("computed") and summary.get("findings"):
            return run, list(summary["findings"])
    return {}, []


def global_explanations(history: dict[str, Any]) -> dict[str, Any] | None:
    """Return the global SHAP importance of the newest explanations run that computed one.

    Each feature's share of the total mean |SHAP| comes from the run's findings
    (``attribution_share`` without a reference, ``attribution_share_shift`` with one), with the
    attribution NDCG against the training baseline when there was a reference.
    """
    run, findings = _latest_findings(history, "explanations")
    shares: dict[str, float] = {}
    ndcg = None
    for finding in findings:
        scope = str(finding.get("scope", ""))
        detail = finding.get("detail") or {}
        if finding.get("metric") == "attribution_ndcg":
            ndcg = finding.get("value")
        elif scope.startswith("feature:"):
            share = detail.get("share", finding.get("value"))
            if isinstance(share, int | float):
                shares[scope.removeprefix("feature:")] = float(share)
    if not shares:
        return None
    return {
        "source": f"monitor {run['monitor']}, run scheduled for {run['scheduled_for']}",
        "importance": dict(sorted(shares.items(), key=lambda item: -item[1])),
        "attribution_ndcg": ndcg,
    }


def monitored_fairness(history: dict[str, Any]) -> dict[str, Any] | None:
    """Return per-group rates with intervals from the newest computed fairness run."""
    run, findings = _latest_findings(history, "fairness")
    rows = []
    for finding in findings:
        scope = str(finding.get("scope", ""))
        detail = finding.get("detail") or {}
        if not scope.startswith("group:") or finding.get("value") is None:
            continue
        row: dict[str, Any] = {
            "type": finding["metric"],
            "slice": scope.removeprefix("group:"),
            "value": finding["value"],
            "status": finding.get("status"),
        }
        if detail.get("low") is not None and detail.get("high") is not None:
            row["confidence_interval"] = {
                "lower_bound": detail["low"],
                "upper_bound": detail["high"],
            }
        rows.append(row)
    if not rows:
        return None
    return {
        "source": f"monitor {run['monitor']}, run scheduled for {run['scheduled_for']}",
        "groups": sorted(rows, key=lambda r: (r["type"], r["slice"])),
    }
