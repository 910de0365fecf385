"""One search box over a project's catalog: models, deployments, datasets and runs.

A case-insensitive substring match on names (a model's, a deployment's or its environment, a
dataset's namespace or name, the job a run executed), or an exact match on a run's id. Always
scoped to one project; the caller says which kinds the reader may see (the dashboard passes
those the reader's permissions allow), so a hit never reveals what a page would refuse.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lineage.models import Dataset, DatasetVersion, Deployment, Job, ModelVersion, Run

__all__ = ["SEARCH_KINDS", "SearchHit", "SearchKind", "search_catalog"]

SearchKind = Literal["model", "deployment", "dataset", "run"]
SEARCH_KINDS: tuple[SearchKind, ...] = ("model", "deployment", "dataset", "run")


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One match: what it is, its name, a line of detail, and the id a page is addressed by.

    ``ref`` is the model's name, the deployment row's id, the dataset's id or the run's id;
    ``produced`` names the model version a run produced, if any (``(name, version)``).
    """

    kind: SearchKind
    name: str
    detail: str
    ref: str
    produced: tuple[str, str] | None = None


def _pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _like(column: Any, pattern: str) -> sa.ColumnElement[bool]:
    return sa.func.lower(column).like(pattern, escape="\\")


def _models(session: Session, project_id: uuid.UUID, pattern: str, limit: int) -> list[SearchHit]:
    rows = session.exec(
        select(ModelVersion.name, sa.func.count(), sa.func.max(col(ModelVersion.created_at)))
        .where(ModelVersion.project_id == project_id, _like(col(ModelVersion.name), pattern))
        .group_by(col(ModelVersion.name))
        .order_by(col(ModelVersion.name))
        .limit(limit)
    ).all()
    return [SearchHit("model", name, f"{count} version(s)", name) for name, count, _ in rows]


def _deployments(
    session: Session, project_id: uuid.UUID, pattern: str, limit: int
) -> list[SearchHit]:
    rows = session.exec(
        select(Deployment, ModelVersion.name, ModelVersion.version)
        .join(ModelVersion, col(ModelVersion.id) == col(Deployment.model_version_id))
        .where(
            Deployment.project_id == project_id,
            sa.or_(
                _like(col(Deployment.name), pattern), _like(col(Deployment.environment), pattern)
            ),
        )
        .order_by(sa.desc(col(Deployment.live_from)))
    ).all()
    hits: dict[tuple[str, str], SearchHit] = {}
    for row, model, version in rows:  # newest first: a slot's first row is what it serves
        slot = (row.name, row.environment)
        if slot not in hits:
            detail = f"{row.environment}: {model} v{version}"
            hits[slot] = SearchHit("deployment", row.name, detail, str(row.id))
    return list(hits.values())[:limit]


def _datasets(session: Session, project_id: uuid.UUID, pattern: str, limit: int) -> list[SearchHit]:
    rows = session.exec(
        select(Dataset, sa.func.count(col(DatasetVersion.id)))
        .join(DatasetVersion, col(DatasetVersion.dataset_id) == col(Dataset.id), isouter=True)
        .where(
            Dataset.project_id == project_id,
            sa.or_(_like(col(Dataset.name), pattern), _like(col(Dataset.namespace), pattern)),
        )
        .group_by(col(Dataset.id))
        .order_by(col(Dataset.name))
        .limit(limit)
    ).all()
    return [
        SearchHit("dataset", d.name, f"{d.namespace} · {count} version(s)", str(d.id))
        for d, count in rows
    ]


def _runs(
    session: Session, project_id: uuid.UUID, text: str, pattern: str, limit: int
) -> list[SearchHit]:
    query = (
        select(Run, Job.name, ModelVersion.name, ModelVersion.version)
        .join(Job, col(Job.id) == col(Run.job_id))
        .join(ModelVersion, col(ModelVersion.source_run_id) == col(Run.id), isouter=True)
        .where(Run.project_id == project_id)
    )
    try:
        query = query.where(Run.run_id == uuid.UUID(text.strip()))
    except ValueError:
        query = query.where(_like(col(Job.name), pattern))
    rows = session.exec(query.order_by(sa.desc(col(Run.state_at))).limit(limit)).all()
    return [
        SearchHit(
            "run",
            job,
            f"{run.state} at {run.state_at:%Y-%m-%d %H:%M} UTC · run {run.run_id}",
            str(run.run_id),
            (model, version) if model else None,
        )
        for run, job, model, version in rows
    ]


def search_catalog(
    *,
    session: Session,
    project_id: uuid.UUID,
    text: str,
    kinds: Collection[SearchKind] = SEARCH_KINDS,
    limit: int = 20,
) -> list[SearchHit]:
    """Return up to ``limit`` hits of each kind in ``kinds`` for ``text`` (blank: none)."""
    text = text.strip()
    if not text:
        return []
    pattern = _pattern(text)
    hits: list[SearchHit] = []
    if "model" in kinds:
        hits += _models(session, project_id, pattern, limit)
    if "deployment" in kinds:
        hits += _deployments(session, project_id, pattern, limit)
    if "dataset" in kinds:
        hits += _datasets(session, project_id, pattern, limit)
    if "run" in kinds:
        hits += _runs(session, project_id, text, pattern, limit)
    return hits
