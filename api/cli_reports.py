"""``warden report …``: write a model card, a project audit report or an "as of" report to a file.

In client mode (``--url``) Warden renders the report for the signed-in principal (what their
role may read) and audits it as theirs. Direct mode (no URL): the CLI opens the store on the
server, renders the full report, sensitive fields included, and audits the generation as
``break-glass:<OS user>``::

    warden report model income 3 --project acme --format pdf --out income-3.pdf
    warden report project acme --from 2026-11-01T00:00Z --to 2026-12-01T00:00Z --out nov.html
    warden report as-of acme --at 2026-11-15T12:00Z --format json

The command exits 0 when the report was written; a project report whose audit chain is broken
exits 1 after writing it (the report says where the chain breaks), and bad input exits 2.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from api.cli_client import client_url, connect

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode=None,
    name="report",
    help="Generate model cards and audit reports (HTML, JSON or PDF).",
    no_args_is_help=True,
)

_FORMAT = typer.Option("--format", help="html, json or pdf.")
_OUT = typer.Option("--out", help="Write here (default: stdout; PDF needs --out).")


def _moment(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint=name) from error
    if value.tzinfo is None:
        raise typer.BadParameter(
            f"{text!r} has no timezone; add one, e.g. {text}Z", param_hint=name
        )
    return value


def _emit(body: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(body.decode())
        return
    out.write_bytes(body)
    typer.echo(f"wrote {len(body)} bytes to {out}", err=True)


def _fetch(
    ctx: typer.Context, project: str, path: str, params: dict[str, str], out: Path | None
) -> None:
    """Client mode: have Warden render the report as the signed-in principal; write it."""
    if params.get("format") == "pdf" and out is None:
        typer.echo("error: a PDF needs --out FILE", err=True)
        raise typer.Exit(2)
    connection = connect(ctx, project)
    body = connection.request(
        "GET", connection.project_path(f"/reports{path}"), params=params, raw=True
    )
    _emit(body, out)


def _generate(project: str, request_fields: dict[str, object], fmt: str, out: Path | None) -> bool:
    """Build, audit and write one report; return whether the audit chain verified intact."""
    from api.cli_direct import break_glass_actor, warn_direct
    from api.store import open_store
    from governance.audit_verify import verify_store
    from governance.signing import load_or_create_signer
    from lineage import WardenError, session_scope
    from lineage.projects import get_project
    from reports import RenderRequest, audit_generation, render, render_document

    if fmt == "pdf" and out is None:
        typer.echo("error: a PDF needs --out FILE", err=True)
        raise typer.Exit(2)
    warn_direct()
    from api.settings import Settings

    settings = Settings()
    engine = open_store(settings)
    try:
        request = RenderRequest.model_validate({**request_fields, "format": fmt})
        verification = None
        if request.report == "project":
            signer = load_or_create_signer(settings.resolved_audit_key_path())
            verification = verify_store(engine=engine, public_key=signer.public_key)
        with session_scope(engine) as session:
            found = get_project(session=session, name=project)
            document = render_document(
                session=session,
                project_id=found.id,
                request=request,
                full=True,
                verification=verification,
            )
            audit_generation(
                session=session,
                actor=break_glass_actor(),
                project_id=found.id,
                report=request.report,
                target=request.target(),
                fmt=fmt,
            )
        _emit(render(document, request.format), out)
    except (WardenError, ValueError) as error:
        typer.echo(f"error: {getattr(error, 'detail', error)}", err=True)
        raise typer.Exit(2) from error
    finally:
        engine.dispose()
    return verification is None or verification.intact


@app.command()
def model(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model name.")],
    version: Annotated[str, typer.Argument(help="The version label.")],
    project: Annotated[str, typer.Option("--project", help="The project name.")],
    fmt: Annotated[str, _FORMAT] = "html",
    out: Annotated[Path | None, _OUT] = None,
) -> None:
    """Write the model card of one model version."""
    if client_url(ctx):
        path = f"/models/{quote(name, safe='')}/{quote(version, safe='')}"
        _fetch(ctx, project, path, {"format": fmt}, out)
        return
    _generate(project, {"report": "model", "name": name, "version": version}, fmt, out)


@app.command("project")
def project_report(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="The project name.")],
    since: Annotated[str, typer.Option("--from", help="Period start, ISO 8601 with offset.")],
    until: Annotated[str, typer.Option("--to", help="Period end, ISO 8601 with offset.")],
    fmt: Annotated[str, _FORMAT] = "html",
    out: Annotated[Path | None, _OUT] = None,
) -> None:
    """Write the audit report of a project for a period, with the chain's verification."""
    if client_url(ctx):
        start, end = _moment(since, "--from"), _moment(until, "--to")
        params = {"from": start.isoformat(), "to": end.isoformat(), "format": fmt}
        _fetch(ctx, project, "/project", params, out)
        return
    fields = {
        "report": "project",
        "since": _moment(since, "--from"),
        "until": _moment(until, "--to"),
    }
    if not _generate(project, fields, fmt, out):
        typer.echo("the audit chain is BROKEN; the report says where", err=True)
        raise typer.Exit(1)


@app.command("as-of")
def as_of_report(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="The project name.")],
    at: Annotated[str, typer.Option("--at", help="The moment, ISO 8601 with offset.")],
    fmt: Annotated[str, _FORMAT] = "html",
    out: Annotated[Path | None, _OUT] = None,
) -> None:
    """Write what served where at a moment, under which policies and baselines."""
    if client_url(ctx):
        params = {"at": _moment(at, "--at").isoformat(), "format": fmt}
        _fetch(ctx, project, "/as-of", params, out)
        return
    _generate(project, {"report": "as_of", "until": _moment(at, "--at")}, fmt, out)
