"""Projects: the workspaces every other object in Warden belongs to.

A project is the unit of permission (roles are granted per project) and of isolation (every
query filters by it), so it lives in the lowest layer where every other table can refer to it.
"""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from sqlmodel import Field, Session, select

from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.tables import Record

__all__ = ["PROJECT_NAME_PATTERN", "Project", "create_project", "get_project", "list_projects"]

PROJECT_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_NAME_RE = re.compile(PROJECT_NAME_PATTERN)


class Project(Record, table=True):
    """A workspace: models, datasets, deployments, monitors and roles are scoped to one."""

    __tablename__ = "lineage_project"

    name: str = Field(sa_column=sa.Column(sa.String(63), nullable=False, unique=True))
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))


def create_project(*, session: Session, name: str, description: str = "") -> Project:
    """Create a project; names are short slugs because they appear in every URL."""
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"project name {name!r} is not a slug: use 1-63 lowercase letters, digits or '-', "
            "starting with a letter or digit",
            field="name",
        )
    if session.exec(select(Project).where(Project.name == name)).first() is not None:
        raise Conflict(f"project {name!r} exists already; pick another name", field="name")
    project = Project(name=name, description=description)
    session.add(project)
    session.flush()
    return project


def get_project(*, session: Session, name: str) -> Project:
    """Return the project called ``name`` or raise :class:`NotFound`."""
    project = session.exec(select(Project).where(Project.name == name)).first()
    if project is None:
        raise NotFound(f"no project named {name!r}; list projects with GET /api/v1/projects")
    return project


def list_projects(*, session: Session, ids: set[uuid.UUID] | None = None) -> list[Project]:
    """Return projects ordered by name, restricted to ``ids`` when given."""
    query = select(Project).order_by(sa.asc(Project.name))
    if ids is not None:
        query = query.where(Project.id.in_(ids))  # type: ignore[attr-defined]
    return list(session.exec(query).all())
