"""Budget checks: spend crossings → audit, alert rules, then the policies' actions.

:func:`check_budgets` is what the worker's ``budget_check`` job runs for one project (the
scheduler's leader queues one per project with budgets at most every
:data:`CHECK_EVERY`). For each level a budget's spend reached for the first time in its window
(:func:`governance.budgets.due_crossings`: once per window, whoever checks), in one transaction
(levels reached together, by a burst of spend, travel as one run):

1. audit ``budget.warn`` (a warning level) or ``budget.breach`` (the limit) with the spend;
2. route the crossing as a finding (monitor ``budget``, metric ``spend_share``, ``warn`` or
   ``alert``) through the project's alert rules, source ``budget:<budget id>``;
3. hand it to the project's policies (:func:`retrain.loop.on_findings`) with what the budget
   watches — its deployment slot (and the model live there) or its prompt — so a rule such as
   ``when: {monitor: budget, metric: spend_share, op: ">=", threshold: 1}`` runs its actions:
   ``alert``, ``block_promotion``, ``rollback`` (``request`` or ``perform``, the same approval
   rules as any rollback).

A breach also marks the budget ``over_budget`` until its window ends
(:class:`governance.budgets.BudgetPublic`). Warden observes calls and does not proxy them: a
budget cannot stop a call in flight.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from governance import Actor, append, route_findings
from governance.budgets import Budget, BudgetAlert, crossing_finding, due_crossings, list_budgets
from governance.policy_evaluation import RunFindings
from lineage.errors import NotFound
from lineage.runtime.handlers import HandlerRegistry, JobContext
from lineage.runtime.queue import JobState, RuntimeJob, enqueue
from lineage.store import session_scope
from lineage.tables import utcnow
from retrain.deployers import Deployer, live_deployment
from retrain.loop import on_findings
from retrain.mlflow_registry import Registry

__all__ = [
    "BUDGET_CHECK",
    "BUDGET_SOURCE",
    "CHECK_EVERY",
    "BudgetCheckHandler",
    "check_budgets",
    "queue_due_budget_checks",
    "register_budget_handler",
]

BUDGET_CHECK = "budget_check"
"""The job kind of one project's budget check."""
BUDGET_SOURCE = "budget"
"""The alert-rule source kind of a budget's crossings."""
CHECK_EVERY = timedelta(seconds=60)
"""At most one budget check per project is queued this often."""


def _watched(session: Session, budget: Budget) -> tuple[str | None, str | None, str | None]:
    """Return the model, deployment and environment a budget's findings are about."""
    if budget.prompt is not None:
        return budget.prompt, None, None
    if budget.deployment is None:
        return None, None, None
    try:
        _, version = live_deployment(
            session=session,
            project_id=budget.project_id,
            deployment=budget.deployment,
            environment=budget.environment,
        )
    except NotFound:
        return None, budget.deployment, budget.environment
    return version.name, budget.deployment, budget.environment


def check_budgets(
    *,
    session: Session,
    project_id: uuid.UUID,
    now: datetime | None = None,
    registry: Registry | None = None,
    deployer: Deployer | None = None,
) -> list[BudgetAlert]:
    """Act on every level the project's budgets reached for the first time in their windows.

    Returns the crossings recorded now (empty when nothing new was reached). Never commits.
    """
    at = now or utcnow()
    crossed: list[BudgetAlert] = []
    for budget in list_budgets(session=session, project_id=project_id):
        alerts = due_crossings(session=session, budget=budget, now=at)
        if not alerts:
            continue
        crossed.extend(alerts)
        actor = Actor.system(request_id=f"budget:{budget.id}").in_project(project_id)
        findings = [crossing_finding(budget, alert) for alert in alerts]
        for alert, finding in zip(alerts, findings, strict=True):
            append(
                session=session,
                actor=actor,
                action="budget.breach" if alert.level >= 1.0 else "budget.warn",
                target=f"budget:{budget.id}",
                reason=(
                    f"budget {budget.name!r} reached {alert.level:.0%} of its {budget.period} "
                    f"limit: ${alert.spend_nano_usd / 1e9:.4f} of ${alert.limit_nano_usd / 1e9:.4f}"
                ),
                detail={"alert_id": str(alert.id), **finding.detail, "level": alert.level},
                project_id=project_id,
            )
        # Levels crossed together (a burst of spend) are one run: the policies judge it once.
        run_id = f"budget-alert:{alerts[-1].id}"
        source_id = f"{BUDGET_SOURCE}:{budget.id}"
        route_findings(
            session=session,
            actor=actor,
            project_id=project_id,
            source_kind=BUDGET_SOURCE,
            source_id=source_id,
            run_id=run_id,
            findings=findings,
            now=at,
            resolve=False,
        )
        model, deployment, environment = _watched(session, budget)
        on_findings(
            session=session,
            actor=actor,
            project_id=project_id,
            run=RunFindings(
                run_id=run_id,
                source_id=source_id,
                at=at,
                findings=tuple(findings),
                model=model,
                deployment=deployment,
                environment=environment,
            ),
            now=at,
            registry=registry,
            deployer=deployer,
        )
    return crossed


def queue_due_budget_checks(*, session: Session, now: datetime | None = None) -> list[uuid.UUID]:
    """Queue a budget check for each project with budgets and none queued lately; return them.

    "Lately" is :data:`CHECK_EVERY`, or any check still queued or running, so a slow worker is
    never handed a pile of checks.
    """
    at = now or utcnow()
    with_budgets = set(session.exec(select(Budget.project_id).distinct()).all())
    busy = set(
        session.exec(
            select(RuntimeJob.project_id).where(
                RuntimeJob.kind == BUDGET_CHECK,
                (col(RuntimeJob.created_at) > at - CHECK_EVERY)
                | col(RuntimeJob.state).in_([JobState.QUEUED, JobState.RUNNING]),
            )
        ).all()
    )
    due = sorted(with_budgets - busy)
    for project_id in due:
        enqueue(
            session=session,
            project_id=project_id,
            kind=BUDGET_CHECK,
            payload={"queued_for": at.isoformat()},
            max_attempts=1,
        )
    return due


@dataclass(frozen=True)
class BudgetCheckHandler:
    """Run ``budget_check`` jobs: one project's budgets checked and acted on in one transaction."""

    registry: Registry | None = None
    deployer: Deployer | None = None

    def __call__(self, context: JobContext) -> dict[str, Any]:
        """Check the job's project now; return the crossings recorded (the job's result)."""
        with session_scope(context.engine) as session:
            crossed = check_budgets(
                session=session,
                project_id=context.project_id,
                registry=self.registry,
                deployer=self.deployer,
            )
            return {
                "crossings": [
                    {"budget_id": str(a.budget_id), "level": a.level, "alert_id": str(a.id)}
                    for a in crossed
                ]
            }


def register_budget_handler(
    registry: HandlerRegistry,
    *,
    model_registry: Registry | None = None,
    deployer: Deployer | None = None,
) -> HandlerRegistry:
    """Register the ``budget_check`` handler on a worker's registry and return it."""
    registry.register(BUDGET_CHECK, BudgetCheckHandler(registry=model_registry, deployer=deployer))
    return registry
