"""``warden audit …``: verify the chain (online or offline), export it, sign a checkpoint.

With ``--url`` (client mode) ``verify``, ``export`` and ``checkpoint`` ask the API as the
signed-in principal (an auditor, or an administrator to sign). Offline verification needs no
database and no Warden configuration, only the exported file and the public key
(``GET /api/v1/audit/public-key`` or ``warden audit public-key``)::

    warden audit verify --file export.jsonl --public-key audit.pem

Either form can also be checked against a copy of the checkpoints kept outside the database
(``--anchor``: the anchor file, or the checkpoint CloudEvents a receiver stored, one per line),
which finds truncation and rewrites re-signed with a stolen key::

    warden audit verify --anchor /mnt/worm/audit-anchor.jsonl

The command exits 0 when the chain and every checkpoint are intact, 1 when something is broken
(the first broken sequence number is printed), and 2 on unusable input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli_client import client_url, connect

if TYPE_CHECKING:
    from api.settings import Settings


__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode=None,
    name="audit",
    help="Verify, export and checkpoint the tamper-evident audit log.",
    no_args_is_help=True,
)


def _settings() -> Settings:
    from api.settings import Settings

    return Settings()


def _echo_report(report: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    if report["intact"]:
        typer.echo(
            f"intact: {report['entries']} entries (head {report['head_seq']}), "
            f"{report['checkpoints_verified']}/{report['checkpoints']} checkpoints verified"
        )
    else:
        typer.echo(
            f"BROKEN at sequence number {report['first_broken_seq']}: {report['problem']}",
            err=True,
        )
    if report["intact"] and report["checkpoints_verified"] < report["checkpoints"]:
        typer.echo(
            "warning: checkpoint signatures were not checked (no public key given)", err=True
        )
    if report["anchor"] is not None:
        typer.echo(
            f"anchor {report['anchor']}: {report['anchored']} checkpoints agree, "
            f"{report['unanchored']} not anchored"
        )
        if report["unanchored"]:
            typer.echo(
                "warning: checkpoints missing from the anchor are not protected against a "
                "re-signed rewrite; check that Warden can append to the anchor",
                err=True,
            )


@app.command()
def verify(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Verify this exported JSONL file offline, not the database."),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="PEM public key (default: this data dir's key)."),
    ] = None,
    anchor: Annotated[
        Path | None,
        typer.Option(
            "--anchor",
            help="Compare with this copy of the checkpoints kept outside the database "
            "(default online: WARDEN_AUDIT_ANCHOR_PATH).",
        ),
    ] = None,
    every: Annotated[
        int | None,
        typer.Option(
            "--every",
            min=1,
            help="The checkpoint interval promised (default online: "
            "WARDEN_AUDIT_CHECKPOINT_EVERY).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the chain, checkpoints and anchor; report the first broken sequence number."""
    if file is None and anchor is None and client_url(ctx):
        report = connect(ctx).request("GET", "/api/v1/audit/verify")
        _echo_report(report, as_json=as_json)
        raise typer.Exit(0 if report["intact"] else 1)
    from api.store import open_store
    from governance.anchors import FileAnchor
    from governance.audit_verify import verify_export, verify_store
    from governance.signing import load_or_create_signer, load_public_key
    from lineage import WardenError

    try:
        key = load_public_key(public_key.read_bytes()) if public_key else None
        if anchor is not None and not anchor.is_file():
            raise OSError(f"the anchor {anchor} is not a file")
        if file is not None:
            with file.open(encoding="utf-8") as handle:
                lines = list(handle)
            outside = FileAnchor(anchor) if anchor is not None else None
            report = verify_export(
                lines,
                public_key=key,
                every=every,
                anchored=outside.read() if outside is not None else None,
                anchor=outside.location if outside is not None else None,
            )
        else:
            settings = _settings()
            if key is None and settings.resolved_audit_key_path().exists():
                key = load_or_create_signer(settings.resolved_audit_key_path()).public_key
            engine = open_store(settings)
            try:
                report = verify_store(
                    engine=engine,
                    public_key=key,
                    every=every or settings.audit_checkpoint_every,
                    anchor=FileAnchor(anchor or settings.resolved_audit_anchor_path()),
                )
            finally:
                engine.dispose()
    except (WardenError, OSError) as error:
        typer.echo(f"error: {getattr(error, 'detail', error)}", err=True)
        raise typer.Exit(2) from error
    _echo_report(report.as_dict(), as_json=as_json)
    raise typer.Exit(0 if report.intact else 1)


@app.command()
def export(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="Write here, not stdout.")] = None,
) -> None:
    """Export the whole chain as JSONL (audited; in client mode redacted to what you may read)."""
    if client_url(ctx):
        body = connect(ctx).request("GET", "/api/v1/audit/export", raw=True)
        if out is None:
            sys.stdout.write(body.decode())
        else:
            out.write_bytes(body)
            lines = body.count(b"\n")
            typer.echo(f"exported {lines} lines to {out}", err=True)
        return
    from api.cli_direct import break_glass_actor
    from api.store import attach_audit_signer, open_store
    from governance.audit import append, head
    from governance.audit_export import export_lines
    from lineage import session_scope

    settings = _settings()
    engine = open_store(settings)
    signer = attach_audit_signer(engine, settings)
    try:
        with session_scope(engine) as session:
            up_to = head(session=session).seq
            append(
                session=session,
                actor=break_glass_actor(),
                action="audit.export",
                target=f"audit:1..{up_to}",
                detail={"head_seq": up_to, "redacted": False, "via": "cli"},
            )
        lines = export_lines(engine=engine, readable=None, key_id=signer.key_id, up_to=up_to)
        if out is None:
            sys.stdout.writelines(lines)
        else:
            with out.open("w", encoding="utf-8") as handle:
                handle.writelines(lines)
            typer.echo(f"exported entries 1..{up_to} to {out}", err=True)
    finally:
        engine.dispose()


@app.command()
def checkpoint(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checkpoint as JSON.")] = False,
) -> None:
    """Sign the current head of the chain now (and any position the schedule missed)."""
    if client_url(ctx):
        made = connect(ctx).request("POST", "/api/v1/audit/checkpoints")
        if as_json:
            typer.echo(json.dumps(made, sort_keys=True))
            return
        typer.echo(f"checkpoint at {made['seq']}: {made['entry_hash']} (key {made['key_id']})")
        return
    from api.store import attach_audit_signer, open_store
    from governance.audit import checkpoint as sign_now
    from lineage import session_scope

    settings = _settings()
    engine = open_store(settings)
    signer = attach_audit_signer(engine, settings)
    try:
        with session_scope(engine) as session:
            made = sign_now(session=session, signer=signer)
            if made is None:
                typer.echo("the audit log is empty; nothing to sign yet")
                return
            if as_json:
                typer.echo(
                    json.dumps(
                        {"seq": made.seq, "entry_hash": made.entry_hash, "key_id": made.key_id},
                        sort_keys=True,
                    )
                )
                return
            typer.echo(f"checkpoint at {made.seq}: {made.entry_hash} (key {made.key_id})")
    finally:
        engine.dispose()


@app.command("public-key")
def public_key_command() -> None:
    """Print the PEM public key that checkpoint signatures verify against."""
    from governance.signing import load_or_create_signer

    settings = _settings()
    typer.echo(load_or_create_signer(settings.resolved_audit_key_path()).public_pem(), nl=False)
