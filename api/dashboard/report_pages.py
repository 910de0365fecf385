"""Generating and downloading model cards and audit reports."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.dashboard.rendering import (
    _render,
    router,
)
from api.deps import EngineDep, SessionDep, WritingSessionDep
from api.routes.audit import get_signer
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit_verify import verify_store
from governance.permissions import Permission
from lineage.errors import InvalidInput
from lineage.model_versions import get_model_version_by_id, page_model_versions
from lineage.store import session_scope
from lineage.tables import utcnow
from reports import MEDIA_TYPES, Format, generate_model_card, generate_project_report, render

_VERSIONS_OFFERED = 100
"""Versions the model-card form offers, newest first; each version's page links its own."""


@router.get("/p/{project}/reports")
def reports_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Offer the reports to generate: a version's model card, a period's audit report."""
    today = utcnow()
    return _render(
        request,
        "reports.html",
        actor,
        session,
        project=project,
        versions=page_model_versions(
            session=session, project_id=project.id, limit=_VERSIONS_OFFERED, newest_first=True
        ).items,
        default_from=(today - timedelta(days=30)).strftime("%Y-%m-%d"),
        default_to=today.strftime("%Y-%m-%d"),
    )


_FORMATS: dict[str, Format] = {"html": "html", "json": "json", "pdf": "pdf"}


def _report_format(value: str) -> Format:
    if value not in _FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(_FORMATS)}", field="format")
    return _FORMATS[value]


def _attachment(document: dict[str, Any], fmt: Format, stem: str) -> Response:
    return Response(
        render(document, fmt),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'},
    )


@router.get("/p/{project}/reports/model-card", response_model=None)
def model_card_download(
    actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    session: WritingSessionDep,
    version_id: uuid.UUID,
    format: Annotated[str, Query(max_length=8)] = "html",
) -> Response:
    """Generate and download a version's model card (the API's report, audited alike)."""
    fmt = _report_format(format)
    version = get_model_version_by_id(
        session=session, project_id=project.id, model_version_id=version_id
    )
    document = generate_model_card(
        session=session,
        actor=actor,
        project_id=project.id,
        name=version.name,
        version=version.version,
        fmt=fmt,
    )
    return _attachment(document, fmt, f"model-card-{version.name}-{version.version}")


def _day(value: str, field: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as error:
        raise InvalidInput(f"{field} must be a date like 2026-11-30", field=field) from error


@router.get("/p/{project}/reports/audit", response_model=None)
def audit_report_download(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    engine: EngineDep,
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
    format: Annotated[str, Query(max_length=8)] = "html",
) -> Response:
    """Generate and download the project's audit report for whole days ``from``..``to``."""
    fmt = _report_format(format)
    start = _day(since, "from")
    end = _day(until, "to") + timedelta(days=1)
    if end <= start:
        raise InvalidInput("the period ends before it starts; pick a later 'to'", field="to")
    verification = verify_store(engine=engine, public_key=get_signer(request).public_key)
    with session_scope(engine) as session:
        document = generate_project_report(
            session=session,
            actor=actor,
            project_id=project.id,
            since=start,
            until=end,
            verification=verification,
            fmt=fmt,
        )
    return _attachment(document, fmt, f"audit-{project.name}-{since}-{until}")
