"""Reports assembled from what Warden recorded: model cards, project audit reports, "as of T".

This module lives in ``retrain`` because a report reads every room (lineage, monitors,
governance, retrain) and the layering ``api → retrain → governance → monitors → lineage`` lets
only ``retrain`` (or ``api``, which holds no business logic) import them all. Nothing here is
hand-written prose: each fact comes from a stored row, and what is missing is listed in the
document's ``missing`` section instead of being filled in.

Documents are plain JSON-ready dicts; :mod:`retrain.report_render` turns them into HTML and PDF.

* :func:`model_card` — one model version. Its keys follow the Model Card Toolkit schema
  (``schema_version``, ``model_details``, ``model_parameters``, ``quantitative_analysis``,
  ``considerations``) so other tools can read them; what the toolkit has no field for (lineage,
  approvals, deployments, monitor history, incidents) sits under ``warden``.
* :func:`project_report` — every audited change of a project in a period, grouped, with the
  result of verifying the audit chain and the signed checkpoint that covers the period.
* :func:`as_of` — which version served where at a moment, under which policies and baselines,
  and who changed them.

Sensitive fields (free-text reasons and notes, artifact and data URIs, audit details and
request ids, names of people other than owners) are replaced by :data:`REDACTED` unless the
reader may see them (``full=True``: the reader holds ``audit:read`` in the project).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.actors import Actor
from governance.approvals import ApprovalRequest, decisions_of
from governance.audit import AuditEntry, append
from governance.audit_export import VerifyReport
from governance.checkpoints import AuditCheckpoint
from governance.identity import Principal
from governance.incidents import Incident
from governance.permissions import Permission
from governance.roles import permissions_of
from lineage.deployments import live_deployments
from lineage.errors import InvalidInput
from lineage.graph import model_provenance
from lineage.models import Deployment, ModelVersion
from lineage.projects import Project
from lineage.registry import get_model_version
from lineage.tables import utcnow
from monitors.models import Monitor, MonitorRun
from retrain.evaluation import Evaluation, latest_evaluation
from retrain.model_cards import CARD_FIELDS, get_model_card
from retrain.pipelines import Pipeline, PipelineRun
from retrain.promotion import Promotion

__all__ = [
    "MODEL_CARD_SCHEMA_VERSION",
    "REDACTED",
    "as_of",
    "audit_generation",
    "generate_model_card",
    "generate_project_report",
    "model_card",
    "project_report",
    "sees_sensitive",
]

MODEL_CARD_SCHEMA_VERSION = "0.0.2"
"""The Model Card Toolkit schema version the ``model_card`` document is shaped after."""

REDACTED = "[redacted]"
"""What a reader without ``audit:read`` sees in place of a sensitive field."""

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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def sees_sensitive(*, session: Session, actor: Actor, project_id: uuid.UUID) -> bool:
    """Return whether ``actor`` may see sensitive report fields (holds ``audit:read`` there)."""
    return Permission.AUDIT_READ in permissions_of(
        session=session, actor=actor, project_id=project_id
    )


class _Sensitive:
    """Hide sensitive values from readers who may not see them."""

    def __init__(self, full: bool) -> None:
        self.full = full

    def __call__(self, value: Any) -> Any:
        if self.full or value is None or value == "":
            return value
        return REDACTED


def _names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(Principal).where(col(Principal.id).in_(wanted))).all()
    return {row.id: row.name for row in rows}


def _metric_rows(
    values: dict[str, Any], intervals: dict[str, Any], *, slice_name: str = ""
) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(values):
        value = values[name]
        if value is None:
            continue
        bounds = intervals.get(name) or [None, None]
        row: dict[str, Any] = {"type": name, "value": value, "slice": slice_name}
        if bounds[0] is not None and bounds[1] is not None:
            row["confidence_interval"] = {"lower_bound": bounds[0], "upper_bound": bounds[1]}
        rows.append(row)
    return rows


def _fairness_rows(fairness: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten an evaluation's fairness (per sensitive feature) into per-group rows."""
    rows: list[dict[str, Any]] = []
    for feature in sorted(fairness):
        entry = fairness[feature]
        if not isinstance(entry, dict):
            continue
        intervals = entry.get("intervals", {})
        for group, value in sorted(entry.get("selection_rate", {}).items()):
            bounds = intervals.get(group) if isinstance(intervals, dict) else None
            row: dict[str, Any] = {
                "type": "selection_rate",
                "slice": group,
                "value": value,
            }
            if bounds:
                row["confidence_interval"] = {"lower_bound": bounds[0], "upper_bound": bounds[1]}
            rows.append(row)
        metric_intervals = entry.get("metric_intervals", {})
        for metric, value in sorted(entry.get("metrics", {}).items()):
            if value is None:
                continue
            row = {"type": metric, "slice": feature, "value": value}
            bounds = metric_intervals.get(metric) if isinstance(metric_intervals, dict) else None
            if bounds:
                row["confidence_interval"] = {"lower_bound": bounds[0], "upper_bound": bounds[1]}
            rows.append(row)
    return rows


def _lineage(session: Session, model_version: ModelVersion, hide: _Sensitive) -> dict[str, Any]:
    provenance = model_provenance(
        session=session, project_id=model_version.project_id, model_version_id=model_version.id
    )
    datasets = []
    for version in provenance.dataset_versions:
        dataset = provenance.datasets.get(version.dataset_id)
        datasets.append(
            {
                "namespace": dataset.namespace if dataset else None,
                "name": dataset.name if dataset else None,
                "version": version.version,
                "row_count": version.row_count,
                "schema": list(version.schema_fields or []),
                "uri": hide(version.uri),
                "recorded_at": _iso(version.created_at),
            }
        )
    runs = []
    for run in provenance.runs:
        job = provenance.jobs.get(run.job_id)
        runs.append(
            {
                "run_id": str(run.run_id),
                "job": f"{job.namespace}:{job.name}" if job else None,
                "state": run.state,
                "started_at": _iso(run.started_at),
                "ended_at": _iso(run.ended_at),
            }
        )
    return {"datasets": datasets, "runs": runs}


def _training(session: Session, model_version: ModelVersion, hide: _Sensitive) -> dict[str, Any]:
    run = session.exec(
        select(PipelineRun).where(
            PipelineRun.project_id == model_version.project_id,
            PipelineRun.model_version_id == model_version.id,
        )
    ).first()
    if run is None:
        return {"pipeline": None}
    pipeline = session.get(Pipeline, run.pipeline_id)
    spec = pipeline.spec if pipeline else {}
    return {
        "pipeline": pipeline.name if pipeline else None,
        "run_id": str(run.id),
        "state": run.state,
        "requested_by": run.requested_by_name,
        "reason": hide(run.reason),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "mlflow_run_id": run.mlflow_run_id,
        "steps": [
            {"name": step.get("name"), "entrypoint": step.get("entrypoint")}
            for step in spec.get("steps", [])
        ],
        "parameters": dict(run.parameters),
    }


def _evaluation(
    session: Session, model_version: ModelVersion
) -> tuple[Evaluation | None, dict[str, Any]]:
    evaluation = latest_evaluation(
        session=session, project_id=model_version.project_id, model_version_id=model_version.id
    )
    if evaluation is None:
        return None, {}
    champion = (
        session.get(ModelVersion, evaluation.champion_version_id)
        if evaluation.champion_version_id
        else None
    )
    intervals = evaluation.performance.get("intervals", {})
    comparison: dict[str, Any] = {}
    if champion is not None:
        comparison = {
            "champion_version": champion.version,
            "champion": _metric_rows(
                evaluation.performance.get("champion", {}), intervals.get("champion", {})
            ),
            "difference": dict(evaluation.performance.get("difference", {})),
            "fairness_champion": _fairness_rows(evaluation.fairness.get("champion", {})),
        }
    return evaluation, {
        "evaluated_at": _iso(evaluation.created_at),
        "holdout": evaluation.holdout,
        "rows": evaluation.rows,
        "sensitive_features": list(evaluation.sensitive_features),
        "performance": _metric_rows(
            evaluation.performance.get("candidate", {}), intervals.get("candidate", {})
        ),
        "fairness": _fairness_rows(evaluation.fairness.get("candidate", {})),
        "against_replaced_version": comparison,
    }


def _approvals(session: Session, model_version: ModelVersion, hide: _Sensitive) -> list[Any]:
    requests = session.exec(
        select(ApprovalRequest)
        .where(
            ApprovalRequest.project_id == model_version.project_id,
            ApprovalRequest.target_kind == "model_version",
            ApprovalRequest.target_id == str(model_version.id),
        )
        .order_by(sa.asc(col(ApprovalRequest.created_at)))
    ).all()
    return [
        {
            "id": str(request.id),
            "action": request.action,
            "status": request.status,
            "requested_by": hide(request.requested_by_name),
            "requested_at": _iso(request.created_at),
            "reason": hide(request.reason),
            "decided_at": _iso(request.decided_at),
            "decisions": [
                {
                    "by": hide(decision.principal_name),
                    "approve": decision.approve,
                    "at": _iso(decision.created_at),
                    "reason": hide(decision.reason),
                }
                for decision in decisions_of(session=session, approval_id=request.id)
            ],
        }
        for request in requests
    ]


def _deployments(
    session: Session, model_version: ModelVersion, hide: _Sensitive
) -> tuple[list[Deployment], list[dict[str, Any]]]:
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
    recorders = _names(session, [d.recorded_by for d in deployments])
    rows = []
    for deployment in deployments:
        promotion = promotions.get(deployment.id)
        rows.append(
            {
                "deployment": deployment.name,
                "environment": deployment.environment,
                "live_from": _iso(deployment.live_from),
                "live_until": _iso(deployment.live_until),
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


def _monitoring(
    session: Session,
    model_version: ModelVersion,
    deployments: Sequence[Deployment],
    hide: _Sensitive,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
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
    runs = list(
        session.exec(
            select(MonitorRun)
            .where(col(MonitorRun.monitor_id).in_([m.id for m in monitors]))
            .order_by(sa.asc(col(MonitorRun.scheduled_for)))
        ).all()
    )
    by_id = {m.id: m for m in monitors}
    states = Counter(run.state for run in runs)
    history = {
        "since": _iso(deployments[0].live_from) if deployments else None,
        "monitors": [
            {"name": m.name, "kind": m.kind, "window": m.window, "paused": m.paused}
            for m in monitors
        ],
        "runs": [
            {
                "monitor": by_id[run.monitor_id].name,
                "kind": by_id[run.monitor_id].kind,
                "scheduled_for": _iso(run.scheduled_for),
                "state": run.state,
                "window_start": _iso(run.window_start),
                "window_end": _iso(run.window_end),
                "status": (run.summary or {}).get("status"),
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
            "first_seen_at": _iso(incident.first_seen_at),
            "last_seen_at": _iso(incident.last_seen_at),
            "acknowledged_by": hide(incident.acknowledged_by),
            "resolved_at": _iso(incident.resolved_at),
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


def _latest_findings(history: dict[str, Any], kind: str) -> tuple[dict[str, Any], list[Any]]:
    """Return the newest computed run of a monitor kind and its findings (``{}, []`` if none)."""
    for run in reversed(history["runs"]):
        summary = run.get("summary") or {}
        if run["kind"] == kind and summary.get("computed") and summary.get("findings"):
            return run, list(summary["findings"])
    return {}, []


def _explanations(history: dict[str, Any]) -> dict[str, Any] | None:
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


def _monitored_fairness(history: dict[str, Any]) -> dict[str, Any] | None:
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


def model_card(
    *, session: Session, project_id: uuid.UUID, name: str, version: str, full: bool
) -> dict[str, Any]:
    """Return the model card of one model version, from everything Warden recorded about it.

    Args:
        session: A session to read with; nothing is written.
        project_id: The project of the model.
        name: The registered model name.
        version: The version label.
        full: Whether the reader may see sensitive fields.

    Raises:
        NotFound: No such model version in the project.
    """
    hide = _Sensitive(full)
    model_version = get_model_version(
        session=session, project_id=project_id, name=name, version=version
    )
    project = session.get(Project, project_id)
    training = _training(session, model_version, hide)
    owners = _names(session, [model_version.registered_by])
    requester = training.get("requested_by")
    owner_names = sorted(set(owners.values()) | ({str(requester)} if requester else set()))
    card = get_model_card(session=session, model_version=model_version)
    considerations = {field: (getattr(card, field) if card else "") for field in CARD_FIELDS}
    missing = [f"considerations.{field}" for field, text in considerations.items() if not text]
    lineage = _lineage(session, model_version, hide)
    if not lineage["datasets"]:
        missing.append("model_parameters.data")
    if training["pipeline"] is None:
        missing.append("warden.training")
    evaluation, quantitative = _evaluation(session, model_version)
    if evaluation is None:
        missing.append("quantitative_analysis")
    elif not quantitative["fairness"]:
        missing.append("quantitative_analysis.fairness")
    deployments, deployment_rows = _deployments(session, model_version, hide)
    history, incidents = _monitoring(session, model_version, deployments, hide)
    explanations = _explanations(history)
    monitored_fairness = _monitored_fairness(history)
    if explanations is None:
        missing.append("explanations")
    approvals = _approvals(session, model_version, hide)
    if not approvals:
        missing.append("approvals")
    return {
        "kind": "model_card",
        "schema_version": MODEL_CARD_SCHEMA_VERSION,
        "generated_at": _iso(utcnow()),
        "project": project.name if project else str(project_id),
        "redacted": not full,
        "model_details": {
            "name": model_version.name,
            "overview": model_version.description,
            "version": {"name": model_version.version, "date": _iso(model_version.created_at)},
            "owners": [{"name": owner, "contact": ""} for owner in owner_names],
            "path": hide(model_version.artifact_uri),
            "artifact_sha256": model_version.artifact_sha256,
        },
        "model_parameters": {
            "model_architecture": training.get("pipeline") or "",
            "data": [
                {
                    "name": f"{d['namespace']}:{d['name']}",
                    "version": d["version"],
                    "row_count": d["row_count"],
                    "schema": d["schema"],
                    "link": d["uri"],
                }
                for d in lineage["datasets"]
            ],
            "input_format": dict(sorted(model_version.feature_schema.items())),
            "parameters": dict(sorted(model_version.parameters.items())),
        },
        "quantitative_analysis": {
            "performance_metrics": quantitative.get("performance", [])
            + quantitative.get("fairness", []),
            "training_metrics": dict(sorted(model_version.metrics.items())),
        },
        "considerations": {
            "use_cases": [{"description": considerations["intended_use"]}],
            "out_of_scope_uses": [{"description": considerations["out_of_scope_use"]}],
            "limitations": [{"description": considerations["limitations"]}],
            "ethical_considerations": [
                {"name": considerations["ethical_considerations"], "mitigation_strategy": ""}
            ],
            "updated_by": hide(card.updated_by_name) if card else None,
            "updated_at": _iso(card.updated_at) if card else None,
        },
        "warden": {
            "training": training,
            "lineage": lineage,
            "evaluation": quantitative,
            "explanations": explanations,
            "monitored_fairness": monitored_fairness,
            "approvals": approvals,
            "deployments": deployment_rows,
            "monitor_history": history,
            "incidents": incidents,
            "open_incidents": sum(1 for i in incidents if i["state"] != "resolved"),
            "missing": missing,
        },
    }


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


def _entry_row(entry: AuditEntry, hide: _Sensitive, broken_seq: int | None) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": _iso(entry.created_at),
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
            (:func:`governance.audit_export.verify_store`), taken by the caller before reading,
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
    hide = _Sensitive(full)
    project = session.get(Project, project_id)
    entries = list(
        session.exec(
            select(AuditEntry)
            .where(
                AuditEntry.project_id == project_id,
                col(AuditEntry.created_at) >= since,
                col(AuditEntry.created_at) < until,
            )
            .order_by(sa.asc(col(AuditEntry.seq)))
        ).all()
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
        "generated_at": _iso(utcnow()),
        "project": project.name if project else str(project_id),
        "period": {"from": _iso(since), "to": _iso(until)},
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
                    "signed_at": _iso(covering.created_at),
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
                "first_seen_at": _iso(incident.first_seen_at),
                "resolved_at": _iso(incident.resolved_at),
                "resolved_by": hide(incident.resolved_by),
            }
            for incident in incidents
        ],
        "as_of_end": as_of(session=session, project_id=project_id, at=until, full=full),
    }


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


def _policy_states(entries: Iterable[AuditEntry], hide: _Sensitive) -> list[dict[str, Any]]:
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
        state.update(last_change=entry.action, at=_iso(entry.created_at), by=hide(entry.actor_name))
    return sorted(states.values(), key=lambda s: (str(s["name"]), s["target"]))


def _baseline_states(entries: Iterable[AuditEntry], hide: _Sensitive) -> list[dict[str, Any]]:
    """Return the newest baseline created for each deployment (the one monitor runs read)."""
    newest: dict[str, dict[str, Any]] = {}
    for entry in entries:
        after = _detail(entry).get("after") or {}
        deployment = str(after.get("deployment_id") or entry.target)
        newest[deployment] = {
            "deployment_id": deployment,
            "baseline": entry.target,
            "dataset_version_id": after.get("dataset_version_id"),
            "at": _iso(entry.created_at),
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
    hide = _Sensitive(full)
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
    names = _names(session, [d.recorded_by for d in live])
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
                "live_from": _iso(deployment.live_from),
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
        "generated_at": _iso(utcnow()),
        "project": project.name if project else str(project_id),
        "redacted": not full,
        "at": _iso(at),
        "serving": serving,
        "policies": _policy_states((e for e in changes if e.action in _POLICY_STATE_ACTIONS), hide),
        "baselines": _baseline_states((e for e in changes if e.action == "baseline.create"), hide),
    }


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
