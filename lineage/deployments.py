"""Deployments: which model version is live under which name, in which environment, and when.

A deployment *slot* is ``(name, environment)``; at most one model version is live in a slot at a
time. Recording a deployment ends the slot's previous one at the instant the new one goes live,
so the history of a slot is a sequence of non-overlapping ``[live_from, live_until)`` intervals
and "what was live at time T" is a plain interval query.

Times of record are the server's: a client says *what* went live, never *when*. Past deployments
from another system come in through :func:`import_deployment` only (closed intervals in the past
that overlap nothing recorded; marked ``imported``; the API keeps it admin-only and audited).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lineage.edges import link
from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.model_versions import MODEL_NAME_PATTERN, VERSION_PATTERN
from lineage.models import Deployment, EdgeKind, ModelVersion
from lineage.pages import DEFAULT_PAGE_SIZE, Page, SortKey, keyset_page
from lineage.tables import utcnow

__all__ = [
    "DeploymentCreate",
    "DeploymentImport",
    "DeploymentRef",
    "end_deployment",
    "get_deployment",
    "import_deployment",
    "list_deployments",
    "live_deployments",
    "page_deployments",
    "record_deployment",
    "resolve_body_deployment",
    "resolve_deployment",
]

_SLUG = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

DeploymentRef = Annotated[
    uuid.UUID | Annotated[str, Field(min_length=1, max_length=256)],
    Field(
        union_mode="left_to_right",
        description="The deployment's id, or its name (the slot live in `environment`, "
        "default production), as `…/deployments/{name}/predict` accepts it.",
    ),
]
"""A request body's ``deployment_id``: a UUID when it parses as one, else a deployment's name."""


class DeploymentCreate(BaseModel):
    """What a client says when a model version goes live.

    Attributes:
        name: The deployment (endpoint, service) name.
        environment: Where it runs, e.g. ``staging`` or ``production``.
        model_name: The registered model name.
        model_version: The version of that model now serving.

    It went live when the server records it: there is no ``live_from`` to send.
    """

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=_SLUG)]
    environment: Annotated[str, Field(pattern=_SLUG)]
    model_name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    model_version: Annotated[str, Field(pattern=VERSION_PATTERN)]


class DeploymentImport(DeploymentCreate):
    """A past deployment from another system's history: a closed interval before now."""

    live_from: AwareDatetime
    live_until: AwareDatetime


def _slot_latest(
    *, session: Session, project_id: uuid.UUID, name: str, environment: str
) -> Deployment | None:
    return session.exec(
        select(Deployment)
        .where(
            Deployment.project_id == project_id,
            Deployment.name == name,
            Deployment.environment == environment,
        )
        .order_by(sa.desc(col(Deployment.live_from)))
    ).first()


def _registered(session: Session, project_id: uuid.UUID, spec: DeploymentCreate) -> ModelVersion:
    model_version = session.exec(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id,
            ModelVersion.name == spec.model_name,
            ModelVersion.version == spec.model_version,
        )
    ).first()
    if model_version is None:
        raise InvalidInput(
            f"model {spec.model_name!r} version {spec.model_version!r} is not registered in this "
            "project; register it under …/models/{name}/versions first",
            field="model_version",
        )
    return model_version


def import_deployment(
    *,
    session: Session,
    project_id: uuid.UUID,
    spec: DeploymentImport,
    recorded_by: uuid.UUID | None = None,
) -> Deployment:
    """Import a past deployment from another system's history, marked ``imported``.

    It is a closed interval before now that overlaps nothing the slot's history holds, so it
    never changes what a slot serves now nor rewrites what Warden recorded.

    Raises:
        InvalidInput: The version is not registered, the interval is empty, open or in the
            future, or it overlaps a deployment of the slot.
    """
    model_version = _registered(session, project_id, spec)
    if spec.live_until <= spec.live_from:
        raise InvalidInput("live_until must be after live_from", field="live_until")
    if spec.live_until > utcnow():
        raise InvalidInput(
            "an imported deployment must have ended in the past; record what serves now with "
            "POST …/deployments",
            field="live_until",
        )
    overlap = session.exec(
        select(Deployment).where(
            Deployment.project_id == project_id,
            Deployment.name == spec.name,
            Deployment.environment == spec.environment,
            col(Deployment.live_from) < spec.live_until,
            sa.or_(
                col(Deployment.live_until).is_(None),
                col(Deployment.live_until) > spec.live_from,
            ),
        )
    ).first()
    if overlap is not None:
        raise InvalidInput(
            f"the interval overlaps deployment {overlap.id} of {spec.name!r} in "
            f"{spec.environment!r} (from {overlap.live_from.isoformat()}); history is not "
            "rewritten: import only what Warden's history does not hold",
            field="live_from",
        )
    deployment = Deployment(
        project_id=project_id,
        name=spec.name,
        environment=spec.environment,
        model_version_id=model_version.id,
        live_from=spec.live_from,
        live_until=spec.live_until,
        recorded_by=recorded_by,
        imported=True,
    )
    session.add(deployment)
    session.flush()
    link(
        session=session,
        project_id=project_id,
        kind=EdgeKind.SERVES,
        source_id=model_version.id,
        target_id=deployment.id,
    )
    session.flush()
    return deployment


def record_deployment(
    *,
    session: Session,
    project_id: uuid.UUID,
    spec: DeploymentCreate,
    recorded_by: uuid.UUID | None = None,
    at: datetime | None = None,
) -> Deployment:
    """Record that a model version went live in a slot, ending the slot's previous deployment.

    Recording the version that is already live in the slot returns that deployment unchanged,
    so a deployer may report the same state twice.

    Args:
        session: The caller's session; nothing is committed here.
        project_id: The project of the deployment and of the model version.
        spec: Slot and model version.
        recorded_by: The principal recording it.
        at: When it went live: now unless server code replays its own clock (tests, the demo);
            never a client's word.

    Raises:
        InvalidInput: The model version is not registered in this project, or ``at`` is before
            the slot's latest deployment (history is append-only).
        Conflict: A concurrent request recorded a deployment in the same slot first.
    """
    model_version = _registered(session, project_id, spec)
    at = at or utcnow()
    previous = _slot_latest(
        session=session, project_id=project_id, name=spec.name, environment=spec.environment
    )
    if previous is not None:
        if previous.live_until is None and previous.model_version_id == model_version.id:
            return previous
        if at < previous.live_from or (previous.live_until and at < previous.live_until):
            raise InvalidInput(
                f"live_from {at.isoformat()} is before the latest deployment of "
                f"{spec.name!r} in {spec.environment!r}; history is append-only, "
                "give a later time or leave live_from out",
                field="live_from",
            )
    deployment = Deployment(
        project_id=project_id,
        name=spec.name,
        environment=spec.environment,
        model_version_id=model_version.id,
        live_from=at,
        recorded_by=recorded_by,
    )
    try:
        with session.begin_nested():
            if previous is not None and previous.live_until is None:
                previous.live_until = at
                session.add(previous)
                session.flush()
            session.add(deployment)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"another deployment of {spec.name!r} in {spec.environment!r} was recorded at the "
            "same moment; read the slot's history and retry"
        ) from None
    link(
        session=session,
        project_id=project_id,
        kind=EdgeKind.SERVES,
        source_id=model_version.id,
        target_id=deployment.id,
    )
    session.flush()
    return deployment


def end_deployment(
    *, session: Session, project_id: uuid.UUID, deployment_id: uuid.UUID, at: datetime | None = None
) -> Deployment:
    """Mark a live deployment as no longer serving (its slot is then empty).

    Raises:
        NotFound: No such deployment in the project.
        Conflict: It has ended already.
        InvalidInput: ``at`` is before it went live.
    """
    deployment = get_deployment(session=session, project_id=project_id, deployment_id=deployment_id)
    if deployment.live_until is not None:
        raise Conflict(
            f"deployment {deployment_id} ended at {deployment.live_until.isoformat()} already"
        )
    end = at or utcnow()
    if end < deployment.live_from:
        raise InvalidInput(
            "the end is before the deployment went live; give a later time", field="at"
        )
    deployment.live_until = end
    session.add(deployment)
    session.flush()
    return deployment


def get_deployment(
    *, session: Session, project_id: uuid.UUID, deployment_id: uuid.UUID
) -> Deployment:
    """Return one deployment of the project or raise :class:`NotFound`."""
    deployment = session.get(Deployment, deployment_id)
    if deployment is None or deployment.project_id != project_id:
        raise NotFound(
            f"no deployment {deployment_id} in this project; list them with GET …/deployments"
        )
    return deployment


def resolve_deployment(
    *, session: Session, project_id: uuid.UUID, ref: str, environment: str = "production"
) -> Deployment:
    """Return a deployment by id, or by name: the one live in that slot (``environment``).

    Raises:
        NotFound: No such deployment id in the project, or nothing is live under the name.
    """
    try:
        deployment_id = uuid.UUID(ref)
    except ValueError:
        live = session.exec(
            select(Deployment).where(
                Deployment.project_id == project_id,
                Deployment.name == ref,
                Deployment.environment == environment,
                col(Deployment.live_until).is_(None),
            )
        ).first()
        if live is None:
            raise NotFound(
                f"nothing is live under deployment {ref!r} in {environment!r}; name a live slot "
                "(and its environment) or give the deployment's id"
            ) from None
        return live
    return get_deployment(session=session, project_id=project_id, deployment_id=deployment_id)


def resolve_body_deployment(
    *,
    session: Session,
    project_id: uuid.UUID,
    ref: uuid.UUID | str,
    environment: str = "production",
) -> Deployment:
    """Resolve a body's ``deployment_id``: an id, or the name of a slot live in ``environment``.

    Raises:
        InvalidInput: No such deployment in the project (``field`` is ``deployment_id``).
    """
    try:
        return resolve_deployment(
            session=session, project_id=project_id, ref=str(ref), environment=environment
        )
    except NotFound as error:
        raise InvalidInput(error.detail, field="deployment_id") from None


def list_deployments(
    *,
    session: Session,
    project_id: uuid.UUID,
    name: str | None = None,
    environment: str | None = None,
) -> list[Deployment]:
    """Return the project's deployment history, newest first, optionally for one slot."""
    query = _history_of(project_id, name, environment)
    return list(session.exec(query.order_by(*(k.column.desc() for k in _HISTORY_ORDER))).all())


_HISTORY_ORDER = (
    SortKey(col(Deployment.live_from), "desc"),
    SortKey(col(Deployment.id), "desc"),
)


def _history_of(project_id: uuid.UUID, name: str | None, environment: str | None) -> Any:
    query = select(Deployment).where(Deployment.project_id == project_id)
    if name is not None:
        query = query.where(Deployment.name == name)
    if environment is not None:
        query = query.where(Deployment.environment == environment)
    return query


def page_deployments(
    *,
    session: Session,
    project_id: uuid.UUID,
    name: str | None = None,
    environment: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[Deployment]:
    """Return a page of the project's deployment history (of one slot), newest first.

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    return keyset_page(
        session=session,
        query=_history_of(project_id, name, environment),
        keys=_HISTORY_ORDER,
        key_of=lambda d: (d.live_from, d.id),
        limit=limit,
        cursor=cursor,
    )


def live_deployments(
    *, session: Session, project_id: uuid.UUID, as_of: datetime | None = None
) -> list[Deployment]:
    """Return what was live in each slot at ``as_of`` (now when unset), by name and environment.

    Raises:
        InvalidInput: ``as_of`` is a naive datetime, whose meaning depends on the writer's clock.
    """
    if as_of is not None and as_of.tzinfo is None:
        raise InvalidInput(
            "as_of has no timezone; give an ISO 8601 time with an offset, e.g. 2026-11-30T12:00Z",
            field="as_of",
        )
    at = as_of or utcnow()
    query = (
        select(Deployment)
        .where(
            Deployment.project_id == project_id,
            col(Deployment.live_from) <= at,
            sa.or_(col(Deployment.live_until).is_(None), col(Deployment.live_until) > at),
        )
        .order_by(sa.asc(col(Deployment.name)), sa.asc(col(Deployment.environment)))
    )
    return list(session.exec(query).all())
