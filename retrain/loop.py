"""The one place that chains findings → alerting and policies → actions.

:func:`handle_run_findings` is where a monitor run's findings go (the worker binds it as the
``monitors.execute.FindingsCallback`` of every monitor run). In the run's transaction it:

1. routes the findings through the project's alert rules
   (:func:`governance.incidents.route_findings`, source ``monitor:<monitor id>``): one open
   incident per (monitor, alert rule), updated while the findings keep firing;
2. hands them to the project's policies (:func:`on_findings`, also the entry point for anyone
   else holding a run's findings):

   a. records the run's findings (:class:`governance.decisions.FindingBatch`); a run seen before
      (a retried job) decides nothing again;
   b. evaluates the project's active policies (:func:`governance.policy_evaluation.evaluate`)
      over the monitor's recent runs, the decisions that fired before (cooldowns) and the time;
   c. stores each decision and executes the actions of those that fire, each in its own
      savepoint so one failing action (a pipeline that no longer exists) neither undoes nor
      stops the others:

   ==================  ========================================================================
   ``alert``,          route the triggering findings through the project's alert rules *as the
   ``open_incident``   monitor's findings*, so the policy attaches to the incident the alert
                       rule opened for that monitor (one incident per shift, not two)
   ``retrain``         :func:`retrain.pipelines.request_run` — one run per model even under a
                       storm: the active run is handed back, not a second one queued
   ``rollback``        ``request``: an approval request; ``perform``: roll back one version
                       (:func:`retrain.promotion.rollback`)
   ``rollback_prompt`` the same for an LLM deployment: back to the prompt version the live one
                       replaced, still approved (refused on a slot serving a model); the
                       prompt's alias moves back, nothing loads
   ``redeploy``        ``request``: an approval request; ``perform``: deploy the live version
                       again (:func:`retrain.promotion.redeploy`)
   ``block_promotion`` a :class:`governance.decisions.PromotionBlock` the promotion gate honours
   ==================  ========================================================================

   d. audits each decision as ``policy.decide`` with its inputs (run ids, finding ids, policy id
      and version) and every action's outcome.

Performing a rollback or redeploy needs the registry and deployer the app or worker runs with;
without them those actions fail with a message saying so (and ``request`` mode still works).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from governance import Actor, append
from governance.approvals import (
    ApprovalAction,
    ApprovalRequest,
    ApprovalStatus,
    request_approval,
)
from governance.decisions import (
    PolicyDecision,
    PromotionBlock,
    history,
    prior_decisions,
    record_batch,
    record_decision,
)
from governance.incidents import route_findings
from governance.policies import active_policies
from governance.policy_evaluation import Decision, RunFindings, evaluate
from governance.policy_language import (
    Action,
    AlertAction,
    BlockPromotionAction,
    OpenIncidentAction,
    RedeployAction,
    RetrainAction,
    RollbackAction,
    RollbackPromptAction,
)
from lineage.errors import InvalidInput, NotFound
from lineage.models import Deployment, ModelVersion, VersionKind
from lineage.tables import utcnow
from monitors.findings import Finding
from monitors.models import Monitor, MonitorRun
from retrain.deployers import Deployer, live_deployment
from retrain.mlflow_registry import Registry
from retrain.pipelines import get_pipeline, request_run
from retrain.promotion import redeploy, rollback

__all__ = ["MONITOR_SOURCE", "handle_run_findings", "on_findings", "run_findings"]

MONITOR_SOURCE = "monitor"
"""The source kind of a monitor's findings, for alert rules and policies alike."""
_MAX_LOOKBACK = 100
_MAX_COOLDOWN = timedelta(days=31)


def on_findings(
    *,
    session: Session,
    actor: Actor,
    project_id: uuid.UUID,
    run: RunFindings,
    now: datetime | None = None,
    registry: Registry | None = None,
    deployer: Deployer | None = None,
) -> list[PolicyDecision]:
    """Judge one monitor run's findings by the project's policies and act on the decisions.

    Returns the stored decisions (empty when the run was handled before or nothing applied).
    Never commits.
    """
    at = now or utcnow()
    if record_batch(session=session, project_id=project_id, run=run) is None:
        return []
    policies = active_policies(session=session, project_id=project_id)
    if not policies:
        return []
    lookback = (
        max(r.consecutive_runs for p in policies for r in p.document.rules)
        if any(p.document.rules for p in policies)
        else 1
    )
    runs = history(
        session=session,
        project_id=project_id,
        source_id=run.source_id,
        limit=min(lookback, _MAX_LOOKBACK),
    )
    prior = prior_decisions(session=session, project_id=project_id, since=at - _MAX_COOLDOWN)
    decisions = evaluate(history=runs, policies=policies, prior=prior, now=at)
    scoped = actor.in_project(project_id)
    stored = []
    for decision in decisions:
        row = record_decision(session=session, project_id=project_id, decision=decision, at=at)
        outcomes: list[dict[str, Any]] = []
        if decision.status == "fire":
            for action in decision.actions:
                outcomes.append(
                    _execute(
                        session=session,
                        actor=scoped,
                        project_id=project_id,
                        decision=decision,
                        row=row,
                        action=action,
                        at=at,
                        registry=registry,
                        deployer=deployer,
                    )
                )
        row.outcomes = outcomes
        session.add(row)
        session.flush()
        failed = any(o["outcome"] == "failed" for o in outcomes)
        append(
            session=session,
            actor=scoped,
            action="policy.decide",
            target=f"policy:{decision.policy_id}",
            outcome="failure" if failed else "success",
            reason=decision.reason[:4000],
            detail={
                "decision_id": str(row.id),
                "policy": decision.policy_name,
                "policy_version": decision.policy_version,
                "rule": decision.rule,
                "status": decision.status,
                "scope": decision.scope_key,
                "run_ids": list(decision.run_ids),
                "finding_ids": list(decision.finding_ids)[:50],
                "outcomes": outcomes,
            },
            project_id=project_id,
        )
        stored.append(row)
    return stored


def _execute(
    *,
    session: Session,
    actor: Actor,
    project_id: uuid.UUID,
    decision: Decision,
    row: PolicyDecision,
    action: Action,
    at: datetime,
    registry: Registry | None,
    deployer: Deployer | None,
) -> dict[str, Any]:
    reason = (
        f"policy {decision.policy_name!r} v{decision.policy_version}, rule {decision.rule!r}: "
        f"{decision.reason}"
    )[:2000]
    try:
        with session.begin_nested():
            result = _act(
                session=session,
                actor=actor,
                project_id=project_id,
                decision=decision,
                row=row,
                action=action,
                at=at,
                reason=reason,
                registry=registry,
                deployer=deployer,
            )
    except Exception as error:
        detail = getattr(error, "detail", None) or str(error) or type(error).__name__
        return {"type": action.type, "outcome": "failed", "error": detail[:1000]}
    return {"type": action.type, "outcome": "done", **result}


def _slot(
    action: RollbackAction | RollbackPromptAction | RedeployAction, decision: Decision
) -> tuple[str, str]:
    deployment = action.deployment or decision.deployment
    if deployment is None:
        raise InvalidInput(
            f"{action.type} needs a deployment: name one in the action, or scope the monitor "
            "to a deployment",
            field="deployment",
        )
    return deployment, action.environment


def _require_prompt(
    session: Session, project_id: uuid.UUID, deployment: str, environment: str
) -> None:
    """Refuse ``rollback_prompt`` on a slot that serves a model (``rollback`` is for those)."""
    try:
        _, live = live_deployment(
            session=session, project_id=project_id, deployment=deployment, environment=environment
        )
    except NotFound:
        return  # nothing live: the rollback itself says so
    if live.kind != VersionKind.PROMPT:
        raise InvalidInput(
            f"rollback_prompt: {deployment!r} ({environment}) serves model {live.name!r}, "
            "not a prompt; use the rollback action",
            field="type",
        )


def _act(
    *,
    session: Session,
    actor: Actor,
    project_id: uuid.UUID,
    decision: Decision,
    row: PolicyDecision,
    action: Action,
    at: datetime,
    reason: str,
    registry: Registry | None,
    deployer: Deployer | None,
) -> dict[str, Any]:
    if isinstance(action, AlertAction | OpenIncidentAction):
        incidents = route_findings(
            session=session,
            actor=actor,
            project_id=project_id,
            source_kind=MONITOR_SOURCE,
            source_id=decision.source_id,
            run_id=decision.run_ids[-1],
            findings=list(decision.findings),
            resolve=False,
            now=at,
        )
        return {"incident_ids": [str(i.id) for i in incidents]}
    if isinstance(action, RetrainAction):
        pipeline = get_pipeline(session=session, project_id=project_id, name=action.pipeline)
        requested = request_run(
            session=session,
            pipeline=pipeline,
            actor=actor,
            reason=reason,
            parameters=dict(action.parameters),
        )
        return {"pipeline_run_id": str(requested.run.id), "created": requested.created}
    if isinstance(action, RollbackAction | RollbackPromptAction | RedeployAction):
        deployment, environment = _slot(action, decision)
        rolling_back = isinstance(action, RollbackAction | RollbackPromptAction)
        if isinstance(action, RollbackPromptAction):
            _require_prompt(session, project_id, deployment, environment)
        if action.mode == "request":
            kind = ApprovalAction.ROLLBACK if rolling_back else ApprovalAction.REDEPLOY
            target = f"{deployment}/{environment}"
            pending = session.exec(
                select(ApprovalRequest).where(
                    ApprovalRequest.project_id == project_id,
                    ApprovalRequest.action == kind,
                    ApprovalRequest.target_kind == "deployment",
                    ApprovalRequest.target_id == target,
                    ApprovalRequest.status == ApprovalStatus.PENDING,
                )
            ).first()
            if pending is not None:  # a storm asks once; people decide the open request
                return {"approval_id": str(pending.id), "created": False}
            request = request_approval(
                session=session,
                actor=actor,
                action=kind,
                target_kind="deployment",
                target_id=target,
                reason=reason,
            )
            return {"approval_id": str(request.id), "created": True}
        if registry is None or deployer is None:
            raise InvalidInput(
                f"performing a {action.type} needs the registry and deployer of a worker or app; "
                "use mode 'request' or run the loop where they are configured"
            )
        if rolling_back:
            promotion = rollback(
                session=session,
                project_id=project_id,
                deployment=deployment,
                environment=environment,
                actor=actor,
                registry=registry,
                deployer=deployer,
                reason=reason,
            )
            return {"promotion_id": str(promotion.id)}
        redeployed = redeploy(
            session=session,
            project_id=project_id,
            deployment=deployment,
            environment=environment,
            actor=actor,
            deployer=deployer,
            reason=reason,
            registry=registry,
        )
        return {"model_version": redeployed.version}
    assert isinstance(action, BlockPromotionAction)
    model = action.model or decision.model
    if model is None:
        raise InvalidInput(
            "block_promotion needs a model: name one in the action, or scope the monitor to a "
            "deployment",
            field="model",
        )
    block = PromotionBlock(
        project_id=project_id,
        model_name=model,
        until=at + timedelta(seconds=action.duration_seconds),
        decision_id=row.id,
        reason=reason,
    )
    session.add(block)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="model.block_promotion",
        target=f"model:{model}",
        reason=reason,
        detail={"until": block.until.isoformat(), "decision_id": str(row.id)},
        project_id=project_id,
    )
    return {"model": model, "until": block.until.isoformat()}


def run_findings(
    *, session: Session, monitor: Monitor, run: MonitorRun, findings: Sequence[Finding]
) -> RunFindings:
    """Return a monitor run's findings with what it watches (model, deployment, environment).

    The run is placed in time by its slot (``scheduled_for``), so "N consecutive runs" follows
    the schedule even when a retried run finishes late.
    """
    model = deployment = environment = None
    if monitor.deployment_id is not None:
        slot = session.get(Deployment, monitor.deployment_id)
        if slot is not None:
            deployment, environment = slot.name, slot.environment
            version = session.get(ModelVersion, slot.model_version_id)
            model = version.name if version is not None else None
    return RunFindings(
        run_id=str(run.id),
        source_id=str(monitor.id),
        at=run.scheduled_for,
        findings=tuple(findings),
        model=model,
        deployment=deployment,
        environment=environment,
    )


def handle_run_findings(
    *,
    session: Session,
    monitor: Monitor,
    run: MonitorRun,
    findings: list[Finding],
    registry: Registry | None = None,
    deployer: Deployer | None = None,
) -> None:
    """Hand a monitor run's findings to the alert rules, then to the policies (one transaction).

    Both see the run as the monitor's (source ``monitor:<monitor id>``, the run's id), so an
    alert rule and a policy reacting to the same findings update one incident. ``registry`` and
    ``deployer`` are needed only to *perform* a rollback or redeploy.
    """
    actor = Actor.system(request_id=f"monitor-run:{run.id}")
    route_findings(
        session=session,
        actor=actor,
        project_id=run.project_id,
        source_kind=MONITOR_SOURCE,
        source_id=str(monitor.id),
        run_id=str(run.id),
        findings=findings,
    )
    on_findings(
        session=session,
        actor=actor,
        project_id=run.project_id,
        run=run_findings(session=session, monitor=monitor, run=run, findings=findings),
        registry=registry,
        deployer=deployer,
    )
