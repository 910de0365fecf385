"""The search box: one query over a project's models, deployments, datasets and runs.

Each kind is searched only if the reader's roles grant the permission its page needs
(``model:read`` for models, ``monitor:read`` for deployments, ``lineage:read`` for datasets
and runs), so a hit never shows what the reader could not open.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.dashboard.rendering import _render, router
from api.deps import SessionDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.permissions import Permission
from governance.roles import permissions_of
from lineage.search import SEARCH_KINDS, SearchKind, search_catalog

_NEEDS: dict[SearchKind, Permission] = {
    "model": Permission.MODEL_READ,
    "deployment": Permission.MONITOR_READ,
    "dataset": Permission.LINEAGE_READ,
    "run": Permission.LINEAGE_READ,
}


@router.get("/p/{project}/search")
def search_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_READ))],
    project: CurrentProject,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    """Show what matches ``q`` among the kinds the reader may see."""
    held = permissions_of(session=session, actor=actor, project_id=project.id)
    kinds = [kind for kind in SEARCH_KINDS if _NEEDS[kind] in held]
    hits = search_catalog(session=session, project_id=project.id, text=q, kinds=kinds)
    return _render(
        request, "search.html", actor, session, project=project, q=q, hits=hits, kinds=kinds
    )
