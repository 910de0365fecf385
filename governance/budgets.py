"""LLM spend budgets: a limit per UTC day, week or month, warnings on the way, a breach at 100 %.

A :class:`Budget` watches the cost of the LLM calls Warden has traced for a project, one
deployment slot (``name`` in an ``environment``) or one prompt (every span naming it), over the
current UTC window: a calendar day, an ISO week (from Monday) or a calendar month. Its levels are
the warning fractions (``warn_at``, e.g. 0.5 and 0.8) and 1.0, the breach. :func:`due_crossings`
records each level the spend has reached in the window *once* — a :class:`BudgetAlert` row,
unique on ``(budget, window_start, level)`` — so a warning fires once per window however often
the spend is checked, and again in the next window. What a crossing leads to (alert rules, the
policies' actions) is :mod:`retrain.budget_checks`' business.

Warden observes LLM calls, it does not proxy them: spend is known when traces arrive, so a
budget cannot stop a call in flight, and calls without a price (``pricing missing``) are counted
apart, never as $0. Services here never commit.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import pydantic
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, col, func, select

from governance.actors import Actor
from governance.audit import act_then_audit
from lineage.errors import Conflict, NotFound
from lineage.models import Deployment
from lineage.tables import AwareDateTime, Record, utcnow
from monitors.findings import Finding, Status
from monitors.traces.models import TraceSpan

__all__ = [
    "BUDGET_MONITOR",
    "MIN_LIMIT_USD",
    "Budget",
    "BudgetAlert",
    "BudgetCreate",
    "BudgetPeriod",
    "BudgetPublic",
    "BudgetScope",
    "BudgetUpdate",
    "budget_status",
    "create_budget",
    "crossing_finding",
    "delete_budget",
    "due_crossings",
    "get_budget",
    "list_budgets",
    "period_window",
    "spend_in",
    "update_budget",
]

BUDGET_MONITOR = "budget"
"""The ``Finding.monitor`` of a budget crossing (policies match on it)."""
MIN_LIMIT_USD = 1e-6
"""The smallest limit (a micro-dollar): below it, nano-dollar rounding would make it zero."""
_NANO = 1_000_000_000
_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class BudgetPeriod(StrEnum):
    """The UTC window a budget's limit applies to."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


def period_window(period: BudgetPeriod, now: datetime) -> tuple[datetime, datetime]:
    """Return the UTC window ``[start, end)`` of ``period`` that contains ``now``."""
    moment = now.astimezone(UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is BudgetPeriod.DAILY:
        return day, day + timedelta(days=1)
    if period is BudgetPeriod.WEEKLY:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following


class BudgetScope(BaseModel):
    """What a budget counts: the whole project, one deployment slot, or one prompt."""

    model_config = ConfigDict(extra="forbid")

    deployment: Annotated[str, pydantic.Field(min_length=1, max_length=64)] | None = None
    environment: Annotated[str, pydantic.Field(min_length=1, max_length=64)] = "production"
    prompt: Annotated[str, pydantic.Field(min_length=1, max_length=256)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> BudgetScope:
        if self.deployment is not None and self.prompt is not None:
            raise ValueError("scope a budget to a deployment or to a prompt, not both")
        return self


Fraction = Annotated[float, pydantic.Field(gt=0, lt=1, allow_inf_nan=False)]


def _levels(values: list[float]) -> list[float]:
    if len(set(values)) != len(values):
        raise ValueError("warn_at lists a level twice")
    return sorted(values)


class BudgetCreate(BaseModel):
    """The body that creates a budget: a limit in US dollars per window, and warning levels."""

    model_config = ConfigDict(extra="forbid")

    name: str = pydantic.Field(pattern=_NAME)
    scope: BudgetScope = pydantic.Field(default_factory=BudgetScope)
    period: BudgetPeriod
    limit_usd: float = pydantic.Field(ge=MIN_LIMIT_USD, le=1e9, allow_inf_nan=False)
    warn_at: list[Fraction] = pydantic.Field(default_factory=lambda: [0.5, 0.8], max_length=10)

    @model_validator(mode="after")
    def _sorted(self) -> BudgetCreate:
        self.warn_at = _levels(self.warn_at)
        return self


class BudgetUpdate(BaseModel):
    """The body that changes a budget's limit or warning levels (the scope and period stay)."""

    model_config = ConfigDict(extra="forbid")

    limit_usd: float | None = pydantic.Field(
        default=None, ge=MIN_LIMIT_USD, le=1e9, allow_inf_nan=False
    )
    warn_at: list[Fraction] | None = pydantic.Field(default=None, max_length=10)

    @model_validator(mode="after")
    def _sorted(self) -> BudgetUpdate:
        if self.warn_at is not None:
            self.warn_at = _levels(self.warn_at)
        return self


class Budget(Record, table=True):
    """A spend limit of a project, deployment slot or prompt per UTC window."""

    __tablename__ = "governance_budget"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True, nullable=False)
    name: str = Field(sa_column=sa.Column(sa.String(63), nullable=False))
    deployment: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    environment: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    prompt: str | None = Field(default=None, sa_column=sa.Column(sa.String(256)))
    period: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    limit_nano_usd: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    warn_at: list[float] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    updated_at: datetime = Field(sa_type=AwareDateTime, nullable=False)

    def levels(self) -> list[float]:
        """Return the warning levels and the breach (1.0), lowest first."""
        return [*sorted(self.warn_at), 1.0]


class BudgetAlert(Record, table=True):
    """One level a budget's spend reached in one window (recorded once: fired once)."""

    __tablename__ = "governance_budget_alert"
    __table_args__ = (sa.UniqueConstraint("budget_id", "window_start", "level"),)

    budget_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid(),
            sa.ForeignKey("governance_budget.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True, nullable=False)
    window_start: datetime = Field(sa_type=AwareDateTime, nullable=False)
    window_end: datetime = Field(sa_type=AwareDateTime, nullable=False)
    level: float = Field(nullable=False)
    spend_nano_usd: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    limit_nano_usd: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))


class BudgetPublic(BaseModel):
    """A budget as shown to clients, with the current window's spend and the levels it reached.

    ``over_budget`` is true while the current window's spend has reached the limit: the mark a
    breach leaves on the budget's deployment or prompt until the next window.
    """

    id: uuid.UUID
    name: str
    scope: BudgetScope
    period: BudgetPeriod
    limit_usd: float
    warn_at: list[float]
    window_start: datetime
    window_end: datetime
    spend_usd: float
    share: float
    unpriced_calls: int
    reached: list[float]
    over_budget: bool
    created_at: datetime
    updated_at: datetime


@functools.cache
def _spend_query(by_deployment: bool, by_prompt: bool) -> Any:
    """The spend statement for a budget's scope, built once (parameters bound per call).

    Built per call, the statement cost more than its execution (construction and cache key):
    every budget answer reads it.
    """
    query = select(
        func.coalesce(func.sum(TraceSpan.cost_nano_usd), 0),
        func.count().filter(
            col(TraceSpan.cost_nano_usd).is_(None), col(TraceSpan.input_tokens).is_not(None)
        ),
    ).where(
        TraceSpan.project_id == sa.bindparam("project_id"),
        col(TraceSpan.start_at) >= sa.bindparam("start"),
        col(TraceSpan.start_at) < sa.bindparam("end"),
    )
    if by_deployment:
        slot = (
            select(Deployment.id)
            .where(
                Deployment.project_id == sa.bindparam("project_id"),
                Deployment.name == sa.bindparam("deployment"),
                Deployment.environment == sa.bindparam("environment"),
            )
            .scalar_subquery()
        )
        query = query.where(col(TraceSpan.deployment_id).in_(slot))
    if by_prompt:
        query = query.where(TraceSpan.prompt_name == sa.bindparam("prompt"))
    return query


def spend_in(
    *, session: Session, budget: Budget, start: datetime, end: datetime
) -> tuple[int, int]:
    """Return the budget's spend in ``[start, end)`` in nano-dollars, and the unpriced calls.

    Spans are placed by their start time; a span without a cost (no price known) adds to the
    second number, never to the first.
    """
    query = _spend_query(budget.deployment is not None, budget.prompt is not None)
    params: dict[str, Any] = {"project_id": budget.project_id, "start": start, "end": end}
    if budget.deployment is not None:
        params.update(deployment=budget.deployment, environment=budget.environment)
    if budget.prompt is not None:
        params["prompt"] = budget.prompt
    # Core, not the ORM: a select of columns needs no entity loading (about 40 % cheaper).
    total, unpriced = session.connection().execute(query, params).one()
    return int(total or 0), int(unpriced or 0)


@functools.cache
def _reached_query() -> Any:
    return select(BudgetAlert.level).where(
        BudgetAlert.budget_id == sa.bindparam("budget_id"),
        BudgetAlert.window_start == sa.bindparam("start"),
    )


def _reached(session: Session, budget: Budget, start: datetime) -> list[float]:
    params = {"budget_id": budget.id, "start": start}
    levels = session.connection().execute(_reached_query(), params).scalars()
    return sorted(float(level) for level in levels)


def budget_status(*, session: Session, budget: Budget, now: datetime | None = None) -> BudgetPublic:
    """Return the budget with its current window's spend, reached levels and over-budget mark."""
    start, end = period_window(BudgetPeriod(budget.period), now or utcnow())
    spent, unpriced = spend_in(session=session, budget=budget, start=start, end=end)
    reached = _reached(session, budget, start)
    return BudgetPublic(
        id=budget.id,
        name=budget.name,
        scope=BudgetScope(
            deployment=budget.deployment, environment=budget.environment, prompt=budget.prompt
        ),
        period=BudgetPeriod(budget.period),
        limit_usd=budget.limit_nano_usd / _NANO,
        warn_at=list(budget.warn_at),
        window_start=start,
        window_end=end,
        spend_usd=spent / _NANO,
        share=spent / budget.limit_nano_usd,
        unpriced_calls=unpriced,
        reached=reached,
        over_budget=1.0 in reached,
        created_at=budget.created_at,
        updated_at=budget.updated_at,
    )


def _snapshot(budget: Budget) -> dict[str, Any]:
    return {
        "name": budget.name,
        "deployment": budget.deployment,
        "environment": budget.environment,
        "prompt": budget.prompt,
        "period": budget.period,
        "limit_usd": budget.limit_nano_usd / _NANO,
        "warn_at": list(budget.warn_at),
    }


def create_budget(
    *,
    session: Session,
    project_id: uuid.UUID,
    spec: BudgetCreate,
    actor: Actor,
    now: datetime | None = None,
) -> Budget:
    """Store a new budget of the project, audited as ``budget.create``.

    Raises:
        Conflict: The project has a budget with that name.
    """

    def create() -> Budget:
        taken = session.exec(
            select(Budget.id).where(Budget.project_id == project_id, Budget.name == spec.name)
        ).first()
        if taken is not None:
            raise Conflict(
                f"a budget named {spec.name!r} exists in this project; pick another name"
            )
        budget = Budget(
            project_id=project_id,
            name=spec.name,
            deployment=spec.scope.deployment,
            environment=spec.scope.environment,
            prompt=spec.scope.prompt,
            period=spec.period.value,
            limit_nano_usd=round(spec.limit_usd * _NANO),
            warn_at=list(spec.warn_at),
            updated_at=now or utcnow(),
        )
        session.add(budget)
        return budget

    return act_then_audit(
        create,
        session=session,
        actor=actor,
        action="budget.create",
        target=lambda budget: f"budget:{budget.id}",
        detail=lambda budget: {"after": _snapshot(budget)},
        project_id=project_id,
    )


def _not_found(budget_id: uuid.UUID) -> NotFound:
    return NotFound(f"no budget {budget_id} in this project; list them with GET …/budgets")


def get_budget(*, session: Session, project_id: uuid.UUID, budget_id: uuid.UUID) -> Budget:
    """Return a budget of the project, or raise :class:`NotFound` (also for other projects)."""
    budget = session.get(Budget, budget_id)
    if budget is None or budget.project_id != project_id:
        raise _not_found(budget_id)
    return budget


def list_budgets(*, session: Session, project_id: uuid.UUID) -> list[Budget]:
    """Return the project's budgets by name."""
    return list(
        session.exec(
            select(Budget).where(Budget.project_id == project_id).order_by(col(Budget.name))
        ).all()
    )


@functools.cache
def _budget_row() -> Any:
    table = Budget.__table__  # type: ignore[attr-defined]
    return sa.select(table).where(
        table.c.id == sa.bindparam("budget_id"), table.c.project_id == sa.bindparam("project_id")
    )


@functools.cache
def _budget_update() -> Any:
    table = Budget.__table__  # type: ignore[attr-defined]
    return (
        table.update()
        .where(table.c.id == sa.bindparam("budget_id"))
        .values(
            limit_nano_usd=sa.bindparam("limit_nano_usd"),
            warn_at=sa.bindparam("warn_at", type_=sa.JSON()),
            updated_at=sa.bindparam("updated_at", type_=AwareDateTime()),
        )
    )


def update_budget(
    *,
    session: Session,
    project_id: uuid.UUID,
    budget_id: uuid.UUID,
    changes: BudgetUpdate,
    actor: Actor,
    now: datetime | None = None,
) -> Budget:
    """Change a budget's limit or levels, audited as ``budget.update``; return the changed budget.

    Levels already reached in this window stay reached (a lowered limit fires the levels the
    spend now passes at the next check). The row is read and written with two Core statements
    rather than through the ORM's identity map and unit of work, which cost about 0.25 ms more
    of CPU per change (``bench.audit`` changes budgets); the budget returned is therefore not in
    the session (read it with :func:`get_budget` to change it through the ORM), and a copy the
    session already held is expired.

    Raises:
        NotFound: No such budget in the project.
    """
    connection = session.connection()
    found = connection.execute(
        _budget_row(), {"budget_id": budget_id, "project_id": project_id}
    ).first()
    if found is None:
        raise _not_found(budget_id)
    budget = Budget.model_validate(found._mapping)
    before = _snapshot(budget)

    def change() -> Budget:
        if changes.limit_usd is not None:
            budget.limit_nano_usd = round(changes.limit_usd * _NANO)
        if changes.warn_at is not None:
            budget.warn_at = list(changes.warn_at)
        budget.updated_at = now or utcnow()
        values = {
            "budget_id": budget.id,
            "limit_nano_usd": budget.limit_nano_usd,
            "warn_at": budget.warn_at,
            "updated_at": budget.updated_at,
        }
        connection.execute(_budget_update(), values)
        held = session.identity_map.get(session.identity_key(Budget, budget.id))
        if held is not None:
            session.expire(held)
        return budget

    return act_then_audit(
        change,
        session=session,
        actor=actor,
        action="budget.update",
        target=f"budget:{budget.id}",
        detail=lambda changed: {"before": before, "after": _snapshot(changed)},
        project_id=budget.project_id,
    )


def delete_budget(*, session: Session, budget: Budget, actor: Actor) -> None:
    """Delete a budget and its recorded crossings, audited as ``budget.delete``."""
    before = _snapshot(budget)

    def delete() -> None:
        for alert in session.exec(select(BudgetAlert).where(BudgetAlert.budget_id == budget.id)):
            session.delete(alert)
        session.delete(budget)

    act_then_audit(
        delete,
        session=session,
        actor=actor,
        action="budget.delete",
        target=f"budget:{budget.id}",
        detail={"before": before},
        project_id=budget.project_id,
    )


def due_crossings(
    *, session: Session, budget: Budget, now: datetime | None = None
) -> list[BudgetAlert]:
    """Record and return the levels the spend reached in the current window for the first time.

    Each level is inserted in its own savepoint, so two checkers racing insert it once (the
    unique constraint) and only the winner returns it.
    """
    start, end = period_window(BudgetPeriod(budget.period), now or utcnow())
    spent, _ = spend_in(session=session, budget=budget, start=start, end=end)
    reached = set(_reached(session, budget, start))
    fired = []
    for level in budget.levels():
        if level in reached or spent < level * budget.limit_nano_usd:
            continue
        alert = BudgetAlert(
            budget_id=budget.id,
            project_id=budget.project_id,
            window_start=start,
            window_end=end,
            level=level,
            spend_nano_usd=spent,
            limit_nano_usd=budget.limit_nano_usd,
        )
        try:
            with session.begin_nested():
                session.add(alert)
                session.flush()
        except IntegrityError:
            continue
        fired.append(alert)
    return fired


def crossing_finding(budget: Budget, alert: BudgetAlert) -> Finding:
    """Return a crossing as a finding: ``warn`` below the limit, ``alert`` at the breach."""
    return Finding(
        monitor=BUDGET_MONITOR,
        metric="spend_share",
        scope=f"budget:{budget.name}",
        value=alert.spend_nano_usd / alert.limit_nano_usd,
        threshold=alert.level,
        status=Status.ALERT if alert.level >= 1.0 else Status.WARN,
        detail={
            "budget_id": str(budget.id),
            "period": budget.period,
            "window_start": alert.window_start.isoformat(),
            "window_end": alert.window_end.isoformat(),
            "spend_usd": alert.spend_nano_usd / _NANO,
            "limit_usd": alert.limit_nano_usd / _NANO,
            "deployment": budget.deployment,
            "environment": budget.environment if budget.deployment else None,
            "prompt": budget.prompt,
        },
    )
