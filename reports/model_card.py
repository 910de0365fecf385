"""A model version's model card: the hand-filled fields (stored here) and the assembled document.

What a model is *for* and where it must not be used cannot be derived, so the team states it
through the API and Warden stores it in :class:`ModelCard`, one row per model version; every
change is audited in the caller's transaction. Everything else in the card is derived from what
Warden recorded (lineage, training run, evaluation, approvals, and — in
:mod:`reports.live_history` — deployments, monitors and incidents). :func:`model_card` flags
every field still empty under ``warden.missing`` rather than filling it with boilerplate.

The document's keys follow the Model Card Toolkit schema (``schema_version``,
``model_details``, ``model_parameters``, ``quantitative_analysis``, ``considerations``) so other
tools can read them; what the toolkit has no field for sits under ``warden``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlmodel import Field, Session, col, select

from governance.actors import Actor
from governance.approvals import ApprovalRequest, decisions_of
from governance.audit import append
from lineage.graph import model_provenance
from lineage.model_versions import get_model_version
from lineage.models import ModelVersion
from lineage.projects import Project
from lineage.tables import AwareDateTime, Record, utcnow
from reports.document import iso, principal_names
from reports.live_history import (
    deployment_history,
    global_explanations,
    monitor_history,
)
from reports.live_history import (
    monitored_fairness as monitored_fairness_of,
)
from reports.sensitive import Sensitive
from retrain.evaluation import Evaluation, latest_evaluation
from retrain.pipelines import Pipeline, PipelineRun

__all__ = [
    "CARD_FIELDS",
    "MODEL_CARD_SCHEMA_VERSION",
    "ModelCard",
    "ModelCardUpdate",
    "get_model_card",
    "model_card",
    "update_model_card",
]

MODEL_CARD_SCHEMA_VERSION = "0.0.2"
"""The Model Card Toolkit schema version the ``model_card`` document is shaped after."""

CARD_FIELDS = ("intended_use", "out_of_scope_use", "limitations", "ethical_considerations")
"""The hand-filled fields, in the order a report shows them."""

_Text = Annotated[str, PydanticField(max_length=20_000)]


class ModelCard(Record, table=True):
    """What the team says about one model version: its intended use and its limits."""

    __tablename__ = "reports_model_card"
    __table_args__ = (sa.UniqueConstraint("model_version_id"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    model_version_id: uuid.UUID = Field(foreign_key="lineage_model_version.id")
    intended_use: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    out_of_scope_use: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    limitations: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    ethical_considerations: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    updated_by_id: uuid.UUID | None = Field(default=None)
    updated_by_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))


class ModelCardUpdate(BaseModel):
    """The fields a client changes; a field left out keeps its stored value.

    Attributes:
        intended_use: Who should use the model, for what decisions.
        out_of_scope_use: Uses the model was not built or evaluated for.
        limitations: Known weaknesses: data gaps, populations it serves poorly, failure modes.
        ethical_considerations: Risks to people and how they are mitigated.
    """

    model_config = ConfigDict(extra="forbid")

    intended_use: _Text | None = None
    out_of_scope_use: _Text | None = None
    limitations: _Text | None = None
    ethical_considerations: _Text | None = None


def get_model_card(*, session: Session, model_version: ModelVersion) -> ModelCard | None:
    """Return the stored card fields of a model version, ``None`` if nobody filled any yet."""
    return session.exec(
        select(ModelCard).where(
            ModelCard.project_id == model_version.project_id,
            ModelCard.model_version_id == model_version.id,
        )
    ).first()


def update_model_card(
    *, session: Session, actor: Actor, model_version: ModelVersion, spec: ModelCardUpdate
) -> ModelCard:
    """Store the given card fields of a model version and audit the change (never commits).

    The audit entry names the fields changed, not their text, so the log stays small; the card
    row holds the current text and who wrote it last.
    """
    card = get_model_card(session=session, model_version=model_version)
    now = utcnow()
    if card is None:
        card = ModelCard(
            project_id=model_version.project_id,
            model_version_id=model_version.id,
            updated_at=now,
            updated_by_name=actor.name,
        )
    changed = sorted(
        name
        for name, value in spec.model_dump(exclude_none=True).items()
        if getattr(card, name) != value
    )
    for name in changed:
        setattr(card, name, getattr(spec, name))
    card.updated_at = now
    card.updated_by_id = actor.principal_id
    card.updated_by_name = actor.name
    session.add(card)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="model_card.update",
        target=f"model_version:{model_version.id}",
        detail={"fields": changed, "model": model_version.name, "version": model_version.version},
        project_id=model_version.project_id,
    )
    return card


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


def _lineage(session: Session, model_version: ModelVersion, hide: Sensitive) -> dict[str, Any]:
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
                "recorded_at": iso(version.created_at),
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
                "started_at": iso(run.started_at),
                "ended_at": iso(run.ended_at),
            }
        )
    return {"datasets": datasets, "runs": runs}


def _training(session: Session, model_version: ModelVersion, hide: Sensitive) -> dict[str, Any]:
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
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
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
        "evaluated_at": iso(evaluation.created_at),
        "holdout": evaluation.holdout,
        "rows": evaluation.rows,
        "sensitive_features": list(evaluation.sensitive_features),
        "performance": _metric_rows(
            evaluation.performance.get("candidate", {}), intervals.get("candidate", {})
        ),
        "fairness": _fairness_rows(evaluation.fairness.get("candidate", {})),
        "against_replaced_version": comparison,
    }


def _approvals(session: Session, model_version: ModelVersion, hide: Sensitive) -> list[Any]:
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
            "requested_at": iso(request.created_at),
            "reason": hide(request.reason),
            "decided_at": iso(request.decided_at),
            "decisions": [
                {
                    "by": hide(decision.principal_name),
                    "approve": decision.approve,
                    "at": iso(decision.created_at),
                    "reason": hide(decision.reason),
                }
                for decision in decisions_of(session=session, approval_id=request.id)
            ],
        }
        for request in requests
    ]


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
    hide = Sensitive(full)
    model_version = get_model_version(
        session=session, project_id=project_id, name=name, version=version
    )
    project = session.get(Project, project_id)
    training = _training(session, model_version, hide)
    owners = principal_names(session, [model_version.registered_by])
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
    deployments, deployment_rows = deployment_history(session, model_version, hide)
    history, incidents = monitor_history(session, model_version, deployments, hide)
    explanations = global_explanations(history)
    monitored_fairness = monitored_fairness_of(history)
    if explanations is None:
        missing.append("explanations")
    approvals = _approvals(session, model_version, hide)
    if not approvals:
        missing.append("approvals")
    return {
        "kind": "model_card",
        "schema_version": MODEL_CARD_SCHEMA_VERSION,
        "generated_at": iso(utcnow()),
        "project": project.name if project else str(project_id),
        "redacted": not full,
        "model_details": {
            "name": model_version.name,
            "overview": model_version.description,
            "version": {"name": model_version.version, "date": iso(model_version.created_at)},
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
            "updated_at": iso(card.updated_at) if card else None,
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
