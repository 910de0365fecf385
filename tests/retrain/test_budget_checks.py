"""Budgets on a fixed clock: each level fires once per UTC window; a breach feeds the policies.

Spend comes from spans stored through the real trace ingest, each carrying the cost the
application reported (``gen_ai.usage.cost``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from governance.actors import Actor
from governance.approvals import ApprovalAction, ApprovalRequest, ApprovalStatus
from governance.audit import AuditEntry
from governance.budgets import (
    BudgetCreate,
    BudgetPeriod,
    BudgetScope,
    budget_status,
    create_budget,
    get_budget,
    period_window,
)
from governance.decisions import PromotionBlock
from governance.policies import create_policy
from governance.roles import Role
from lineage.models import Deployment
from lineage.projects import Project
from lineage.runtime.queue import RuntimeJob
from lineage.store import session_scope
from monitors.traces import ingest_spans
from retrain.budget_checks import BUDGET_CHECK, check_budgets, queue_due_budget_checks
from tests.monitors.llm.conftest import T0, Call, chat_spans
from tests.monitors.traces.conftest import make_llm_deployment, store_spans

MIDNIGHT = datetime(2025, 12, 6, tzinfo=UTC)
assert T0.date() == MIDNIGHT.date()


@pytest.fixture
def admin(person: Callable[..., Actor]) -> Actor:
    return person(Role.ADMIN)


class Spender:
    """Spend dollars on the deployment at a time of the fixed clock, and check the budgets."""

    def __init__(self, engine: Engine, project: Project, deployment: Deployment) -> None:
        self.engine, self.project, self.deployment = engine, project, deployment
        self.next_id = 1

    def spend(self, usd: float, at: datetime, prompt: str = "1") -> None:
        call = Call("q", "a", at=at - T0, prompt_version=prompt, extra={"gen_ai.usage.cost": usd})
        store_spans(self.engine, self.deployment, chat_spans([call], first=self.next_id))
        self.next_id += 1

    def check(self, now: datetime) -> list[float]:
        with session_scope(self.engine) as session:
            return [
                a.level for a in check_budgets(session=session, project_id=self.project.id, now=now)
            ]


@pytest.fixture
def spender(engine: Engine, project: Project) -> Spender:
    return Spender(engine, project, make_llm_deployment(engine, project))


def _budget(
    engine: Engine, project: Project, admin: Actor, name: str = "bot-daily", **scope: str
) -> str:
    with session_scope(engine) as session:
        budget = create_budget(
            session=session,
            project_id=project.id,
            spec=BudgetCreate(
                name=name,
                scope=BudgetScope(**scope),
                period=BudgetPeriod.DAILY,
                limit_usd=1.0,
                warn_at=[0.8, 0.5],
            ),
            actor=admin,
        )
        return str(budget.id)


def test_windows_are_utc_days_iso_weeks_and_calendar_months() -> None:
    sunday = datetime(2026, 12, 6, 23, 59, tzinfo=UTC)
    assert period_window(BudgetPeriod.DAILY, sunday) == (
        datetime(2026, 12, 6, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
    )
    assert period_window(BudgetPeriod.WEEKLY, sunday) == (
        datetime(2026, 11, 30, tzinfo=UTC),
        datetime(2026, 12, 7, tzinfo=UTC),
    )
    assert period_window(BudgetPeriod.MONTHLY, sunday) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_window(BudgetPeriod.MONTHLY, datetime(2028, 2, 29, 12, tzinfo=UTC))[1] == (
        datetime(2028, 3, 1, tzinfo=UTC)
    )
    # A clock in another zone is read in UTC: 01:00 in Berlin on the 7th is still the 6th.
    berlin = datetime.fromisoformat("2026-12-07T00:30:00+01:00")
    assert period_window(BudgetPeriod.DAILY, berlin)[0] == datetime(2026, 12, 6, tzinfo=UTC)


def test_each_level_fires_once_per_window_on_a_fixed_clock(
    engine: Engine, project: Project, admin: Actor, spender: Spender
) -> None:
    budget_id = _budget(engine, project, admin, deployment="support-bot")
    hour = timedelta(hours=1)
    spender.spend(0.30, T0)
    assert spender.check(T0 + hour) == []
    spender.spend(0.30, T0 + hour)
    assert spender.check(T0 + 2 * hour) == [0.5]
    assert spender.check(T0 + 3 * hour) == []  # checked again: already fired in this window
    spender.spend(0.45, T0 + 3 * hour)
    assert spender.check(T0 + 4 * hour) == [0.8, 1.0]
    assert spender.check(T0 + 5 * hour) == []
    with session_scope(engine) as session:
        budget = get_budget(session=session, project_id=project.id, budget_id=uuid.UUID(budget_id))
        today = budget_status(session=session, budget=budget, now=T0 + 5 * hour)
        assert today.spend_usd == pytest.approx(1.05)
        assert today.reached == [0.5, 0.8, 1.0]
        assert today.over_budget
    # The next UTC day is a new window: the same levels fire again, once.
    tomorrow = MIDNIGHT + timedelta(days=1, hours=9)
    spender.spend(0.60, tomorrow)
    assert spender.check(tomorrow + hour) == [0.5]
    assert spender.check(tomorrow + 2 * hour) == []
    with session_scope(engine) as session:
        budget = get_budget(session=session, project_id=project.id, budget_id=uuid.UUID(budget_id))
        assert not budget_status(session=session, budget=budget, now=tomorrow).over_budget
        actions = [
            entry.action
            for entry in session.exec(
                select(AuditEntry).where(AuditEntry.target == f"budget:{budget_id}")
            )
        ]
    assert actions.count("budget.warn") == 3
    assert actions.count("budget.breach") == 1


def test_a_prompt_budget_counts_only_that_prompt(
    engine: Engine, project: Project, admin: Actor, spender: Spender
) -> None:
    _budget(engine, project, admin, prompt="other-prompt")
    spender.spend(5.0, T0)  # spans name the prompt "support"
    assert spender.check(T0 + timedelta(minutes=5)) == []


def test_evaluation_calls_count_for_the_project_and_prompt_but_not_the_slot(
    engine: Engine, project: Project, admin: Actor, spender: Spender
) -> None:
    ids = {
        "slot": _budget(engine, project, admin, "slot", deployment="support-bot"),
        "project": _budget(engine, project, admin, "project"),
        "prompt": _budget(engine, project, admin, "prompt", prompt="support"),
    }
    spender.spend(0.30, T0)  # the slot's production traffic
    run_call = Call("q", "a", at=timedelta(0), extra={"gen_ai.usage.cost": 0.50})
    with session_scope(engine) as session:  # an evaluation run's call: the run's, not the slot's
        ingest_spans(
            session=session,
            project_id=project.id,
            deployment_id=None,
            evaluation_run_id=uuid.uuid4(),
            spans=chat_spans([run_call], first=100),
        )
        spent = {
            scope: budget_status(
                session=session,
                budget=get_budget(session=session, project_id=project.id, budget_id=uuid.UUID(i)),
                now=T0 + timedelta(hours=1),
            ).spend_usd
            for scope, i in ids.items()
        }
    assert spent == pytest.approx({"slot": 0.30, "project": 0.80, "prompt": 0.80})


def test_a_breach_runs_the_policy_actions(
    engine: Engine, project: Project, admin: Actor, spender: Spender
) -> None:
    _budget(engine, project, admin, deployment="support-bot")
    with session_scope(engine) as session:
        create_policy(
            session=session,
            project_id=project.id,
            actor=admin,
            name="spend",
            source="""
rules:
  - name: over-budget
    when: {monitor: budget, metric: spend_share, op: ">=", threshold: 1.0}
    actions:
      - {type: block_promotion, duration_seconds: 3600}
      - {type: rollback, mode: request}
""",
        )
    spender.spend(0.6, T0)
    assert spender.check(T0 + timedelta(minutes=1)) == [0.5]
    with session_scope(engine) as session:
        assert session.exec(select(PromotionBlock)).first() is None  # a warning is no breach
    spender.spend(0.6, T0 + timedelta(minutes=2))
    assert spender.check(T0 + timedelta(minutes=3)) == [0.8, 1.0]
    with session_scope(engine) as session:
        block = session.exec(select(PromotionBlock)).one()
        assert block.model_name == "support-bot-prompt"
        request = session.exec(
            select(ApprovalRequest).where(ApprovalRequest.action == ApprovalAction.ROLLBACK)
        ).one()
        assert request.target_id == "support-bot/production"
        assert request.status == ApprovalStatus.PENDING


def test_checks_are_queued_once_a_minute_per_project_with_budgets(
    engine: Engine, project: Project, admin: Actor
) -> None:
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        assert queue_due_budget_checks(session=session, now=now) == []
    _budget(engine, project, admin)
    with session_scope(engine) as session:
        assert queue_due_budget_checks(session=session, now=now) == [project.id]
        assert queue_due_budget_checks(session=session, now=now) == []
        jobs = session.exec(select(RuntimeJob).where(RuntimeJob.kind == BUDGET_CHECK)).all()
        assert len(jobs) == 1
