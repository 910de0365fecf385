"""What policies saw and decided: findings history, decision rows and promotion blocks.

- :class:`FindingBatch` keeps the findings of each monitor run handed to the loop, so a rule
  "for N consecutive runs" can look back, and ``:dry-run`` can replay the last runs. The same run
  recorded twice (a retried job) is refused by a unique key, so it is judged once.
- :class:`PolicyDecision` is one decision of one rule (fired or held back by a cooldown) with its
  inputs (run ids, finding ids, policy id and version) and each action's outcome; cooldowns count
  from the fired ones.
- :class:`PromotionBlock` is a ``block_promotion`` action in force: the promotion gate refuses
  the model until ``until``.

Services here never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, col, select

from governance.policy_evaluation import Decision, PolicyRef, PriorDecision, RunFindings, evaluate
from lineage.tables import AwareDateTime, Record
from monitors.findings import Finding, FindingList

__all__ = [
    "FindingBatch",
    "PolicyDecision",
    "PromotionBlock",
    "active_block",
    "batch_findings",
    "history",
    "prior_decisions",
    "record_batch",
    "record_decision",
    "replay",
]

_COOLDOWN_LOOKBACK = timedelta(days=31)
"""How far back fired decisions are read for cooldowns (longer than the longest cooldown)."""


class FindingBatch(Record, table=True):
    """The findings of one monitor run as policies judged them, with what the monitor watches."""

    __tablename__ = "governance_finding_batch"
    __table_args__ = (sa.UniqueConstraint("project_id", "source_id", "run_id"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    source_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    run_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    observed_at: datetime = Field(sa_type=AwareDateTime, nullable=False)
    model_name: str | None = Field(default=None, sa_column=sa.Column(sa.String(256)))
    deployment: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    environment: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    findings: list[Finding] = Field(
        default_factory=list, sa_column=sa.Column(FindingList(), nullable=False)
    )


class PolicyDecision(Record, table=True):
    """One decision of one policy rule, its inputs and the outcome of each action."""

    __tablename__ = "governance_policy_decision"

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    policy_id: uuid.UUID = Field(foreign_key="governance_policy.id", index=True)
    policy_version: int = Field(nullable=False)
    rule: str = Field(sa_column=sa.Column(sa.String(63), nullable=False))
    scope_key: str = Field(sa_column=sa.Column(sa.String(400), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    decided_at: datetime = Field(sa_type=AwareDateTime, nullable=False)
    source_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    run_ids: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    finding_ids: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    outcomes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    reason: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))


class PromotionBlock(Record, table=True):
    """A model whose promotions a policy refused until a time."""

    __tablename__ = "governance_promotion_block"

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    model_name: str = Field(sa_column=sa.Column(sa.String(256), nullable=False))
    until: datetime = Field(sa_type=AwareDateTime, nullable=False)
    decision_id: uuid.UUID = Field(foreign_key="governance_policy_decision.id")
    reason: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))


def batch_findings(batch: FindingBatch) -> RunFindings:
    """Return a stored batch as the evaluation input."""
    return RunFindings(
        run_id=batch.run_id,
        source_id=batch.source_id,
        at=batch.observed_at,
        findings=tuple(batch.findings),
        model=batch.model_name,
        deployment=batch.deployment,
        environment=batch.environment,
    )


def record_batch(
    *, session: Session, project_id: uuid.UUID, run: RunFindings
) -> FindingBatch | None:
    """Store one run's findings; return ``None`` when that run was recorded already."""
    seen = session.exec(
        select(FindingBatch).where(
            FindingBatch.project_id == project_id,
            FindingBatch.source_id == run.source_id,
            FindingBatch.run_id == run.run_id,
        )
    ).first()
    if seen is not None:
        return None
    batch = FindingBatch(
        project_id=project_id,
        source_id=run.source_id,
        run_id=run.run_id,
        observed_at=run.at,
        model_name=run.model,
        deployment=run.deployment,
        environment=run.environment,
        findings=list(run.findings),
    )
    try:
        with session.begin_nested():
            session.add(batch)
            session.flush()
    except sa.exc.IntegrityError:
        return None  # the same run, recorded by a concurrent attempt
    return batch


def history(
    *, session: Session, project_id: uuid.UUID, source_id: str | None = None, limit: int = 100
) -> list[RunFindings]:
    """Return the latest ``limit`` runs (of one monitor, or of all), oldest first."""
    query = select(FindingBatch).where(FindingBatch.project_id == project_id)
    if source_id is not None:
        query = query.where(FindingBatch.source_id == source_id)
    rows = session.exec(query.order_by(sa.desc(col(FindingBatch.observed_at))).limit(limit)).all()
    return [batch_findings(b) for b in reversed(rows)]


def prior_decisions(
    *, session: Session, project_id: uuid.UUID, since: datetime
) -> list[PriorDecision]:
    """Return the decisions that fired since ``since`` (what cooldowns count from)."""
    rows = session.exec(
        select(PolicyDecision).where(
            PolicyDecision.project_id == project_id,
            PolicyDecision.status == "fire",
            col(PolicyDecision.decided_at) >= since,
        )
    ).all()
    return [
        PriorDecision(policy_id=r.policy_id, rule=r.rule, scope_key=r.scope_key, at=r.decided_at)
        for r in rows
    ]


def replay(
    *,
    session: Session,
    project_id: uuid.UUID,
    policy: PolicyRef,
    now: datetime,
    runs: list[RunFindings] | None = None,
    last_runs: int = 20,
    with_cooldowns: bool = True,
) -> tuple[int, list[Decision]]:
    """Evaluate one policy version on given runs, or the project's last ``last_runs``; act on none.

    The dry-run of the REST API and of the dashboard's policy editor (a document not yet
    saved is a :class:`PolicyRef` too). Cooldowns count from the decisions this policy already
    fired, unless ``with_cooldowns`` is off. Returns how many runs were judged and the decisions.
    """
    judged = (
        runs
        if runs is not None
        else history(session=session, project_id=project_id, limit=last_runs)
    )
    prior = (
        [
            p
            for p in prior_decisions(
                session=session, project_id=project_id, since=now - _COOLDOWN_LOOKBACK
            )
            if p.policy_id == policy.policy_id
        ]
        if with_cooldowns
        else []
    )
    return len(judged), evaluate(history=judged, policies=[policy], prior=prior, now=now)


def record_decision(
    *, session: Session, project_id: uuid.UUID, decision: Decision, at: datetime
) -> PolicyDecision:
    """Store a decision (outcomes are filled in by whoever executes it)."""
    row = PolicyDecision(
        project_id=project_id,
        policy_id=decision.policy_id,
        policy_version=decision.policy_version,
        rule=decision.rule,
        scope_key=decision.scope_key[:400],
        status=decision.status,
        decided_at=at,
        source_id=decision.source_id,
        run_ids=list(decision.run_ids),
        finding_ids=list(decision.finding_ids),
        reason=decision.reason,
    )
    session.add(row)
    session.flush()
    return row


def active_block(
    *, session: Session, project_id: uuid.UUID, model_name: str, now: datetime
) -> PromotionBlock | None:
    """Return the block in force on a model's promotions, if any (the latest-ending one)."""
    return session.exec(
        select(PromotionBlock)
        .where(
            PromotionBlock.project_id == project_id,
            PromotionBlock.model_name == model_name,
            col(PromotionBlock.until) > now,
        )
        .order_by(sa.desc(col(PromotionBlock.until)))
    ).first()
