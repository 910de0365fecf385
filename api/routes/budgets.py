"""Budgets over REST: LLM spend limits per project, deployment or prompt, and where they stand.

Reading needs ``policy:read``, changing ``policy:write`` (a budget is part of a project's policy:
its breach feeds the policies). Each change is audited in the request's transaction by the
service (:mod:`governance.budgets`). ``GET`` answers with the current UTC window's spend, the
levels it reached and ``over_budget``. Warden observes LLM calls and does not proxy them: a
budget warns, alerts and triggers policies; it cannot stop a call in flight.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.pages import PageDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.budgets import (
    BudgetCreate,
    BudgetPublic,
    BudgetUpdate,
    budget_status,
    create_budget,
    delete_budget,
    get_budget,
    list_budgets,
    update_budget,
)
from governance.permissions import Permission
from lineage.errors import InvalidInput

__all__ = ["router"]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["budgets"]
)

Writer = Annotated[Actor, Depends(require(Permission.POLICY_WRITE))]
_READ = [Depends(require(Permission.POLICY_READ))]


@router.post("/budgets", status_code=status.HTTP_201_CREATED)
def create(
    body: BudgetCreate, actor: Writer, project: CurrentProject, session: SessionDep
) -> BudgetPublic:
    """Create a budget; its levels are checked about every minute by the worker."""
    budget = create_budget(session=session, project_id=project.id, spec=body, actor=actor)
    return budget_status(session=session, budget=budget)


@router.get("/budgets", dependencies=_READ)
def list_all(project: CurrentProject, session: SessionDep, page: PageDep) -> list[BudgetPublic]:
    """List the project's budgets by name, with the current window's spend."""
    found = list_budgets(session=session, project_id=project.id)
    return [
        budget_status(session=session, budget=budget)
        for budget in page.answer_all(found, key_of=lambda b: (b.name, b.id))
    ]


@router.get("/budgets/{budget_id}", dependencies=_READ)
def read(budget_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> BudgetPublic:
    """Return one budget with the current window's spend, reached levels and over-budget mark."""
    budget = get_budget(session=session, project_id=project.id, budget_id=budget_id)
    return budget_status(session=session, budget=budget)


@router.patch("/budgets/{budget_id}")
def change(
    budget_id: uuid.UUID,
    body: BudgetUpdate,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
) -> BudgetPublic:
    """Change a budget's limit or warning levels."""
    if not body.model_fields_set:
        raise InvalidInput("nothing to change: send limit_usd, warn_at or both", field="body")
    budget = update_budget(
        session=session, project_id=project.id, budget_id=budget_id, changes=body, actor=actor
    )
    return budget_status(session=session, budget=budget)


@router.delete("/budgets/{budget_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(
    budget_id: uuid.UUID, actor: Writer, project: CurrentProject, session: SessionDep
) -> None:
    """Delete a budget and the levels it reached."""
    budget = get_budget(session=session, project_id=project.id, budget_id=budget_id)
    delete_budget(session=session, budget=budget, actor=actor)
