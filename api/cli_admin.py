"""``warden admin …``: bootstrap the first administrator, then projects, principals, keys, grants.

These commands talk to the store directly, so whoever runs them is trusted like the database
owner (direct mode, :mod:`api.cli_direct`); every change is still written to the audit log,
as ``break-glass:<OS user>``.
Secrets (API keys) are printed once, on stdout, and never stored::

    warden admin bootstrap --username alice          # on an empty store only
    warden admin project create credit-risk
    warden admin service create ingest
    warden admin grant ingest credit-risk data_scientist
    warden admin key create ingest --label airflow --expires-days 90

Failures print the reason on stderr and exit 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from sqlmodel import Session

    from governance.actors import Actor

__all__ = ["app"]

app = typer.Typer(
    rich_markup_mode=None,
    name="admin",
    help="Administer Warden: first administrator, projects, people, service accounts, keys.",
    no_args_is_help=True,
)
project_app = typer.Typer(
    rich_markup_mode=None, help="Create and list projects.", no_args_is_help=True
)
person_app = typer.Typer(
    rich_markup_mode=None, help="Create people (they may sign in).", no_args_is_help=True
)
service_app = typer.Typer(
    rich_markup_mode=None, help="Create service accounts (automation).", no_args_is_help=True
)
key_app = typer.Typer(
    rich_markup_mode=None, help="Create, list and revoke API keys.", no_args_is_help=True
)
app.add_typer(project_app, name="project")
app.add_typer(person_app, name="person")
app.add_typer(service_app, name="service")
app.add_typer(key_app, name="key")

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextmanager
def _session() -> Iterator[Session]:
    from api.settings import Settings
    from api.store import open_store
    from lineage import session_scope

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_store(settings)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def _run(action: Callable[[Session], T]) -> T:
    """Run ``action`` in one transaction; turn Warden's errors into a message and exit 1."""
    from lineage import WardenError

    try:
        with _session() as session:
            return action(session)
    except WardenError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None


def _cli_actor() -> Actor:
    from api.cli_direct import break_glass_actor

    return break_glass_actor()


def _done(as_json: bool, payload: dict[str, object], message: str) -> None:
    """Print what was done: ``payload`` as JSON with ``--json``, else ``message``."""
    typer.echo(json.dumps(payload, sort_keys=True) if as_json else message)


@app.command()
def bootstrap(
    username: Annotated[str, typer.Option(help="Name of the first administrator.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create the first administrator on an empty store and print its API key once."""
    from governance.identity import bootstrap_admin

    issued = _run(lambda s: bootstrap_admin(session=s, name=username))
    if as_json:
        _done(True, {"administrator": username, "api_key": issued.secret}, "")
        return
    typer.echo(f"administrator {username!r} created. API key (shown once, store it now):")
    typer.echo(issued.secret)


@project_app.command("create")
def project_create(
    name: str,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a project."""
    from governance.audit import append
    from lineage.projects import create_project

    def create(session: Session) -> None:
        project = create_project(session=session, name=name, description=description)
        append(
            session=session,
            actor=_cli_actor(),
            action="project.create",
            target=f"project:{project.id}",
            detail={"after": {"name": name}},
            project_id=project.id,
        )

    _run(create)
    _done(as_json, {"project": name}, f"project {name!r} created")


@project_app.command("list")
def project_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every project."""
    from lineage.projects import list_projects

    rows = _run(lambda s: [{"id": str(p.id), "name": p.name} for p in list_projects(session=s)])
    if as_json:
        typer.echo(json.dumps(rows))
    for row in [] if as_json else rows:
        typer.echo(row["name"])


@person_app.command("create")
def person_create(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make a global administrator.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a sign-in password from stdin.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a person; with --password-stdin they can also sign in to the dashboard."""
    from api.settings import Settings
    from governance.identity import create_person

    if password_stdin and not Settings().local_passwords:
        # The same rule as POST /principals: with local passwords off, people sign in only
        # through the identity provider, and a password given here would be a way around it.
        typer.echo(
            "error: local passwords are switched off on this installation "
            "(WARDEN_LOCAL_PASSWORDS); people sign in through the identity provider: "
            "omit --password-stdin",
            err=True,
        )
        raise typer.Exit(1)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    actor = _cli_actor()
    _run(
        lambda s: create_person(
            session=s, actor=actor, name=name, password=password, is_admin=admin
        )
    )
    _done(as_json, {"person": name, "admin": admin}, f"person {name!r} created")


@service_app.command("create")
def service_create(name: str, as_json: JsonFlag = False) -> None:
    """Create a service account (it authenticates with API keys and can never approve)."""
    from governance.identity import create_service_account

    actor = _cli_actor()
    _run(lambda s: create_service_account(session=s, actor=actor, name=name))
    _done(as_json, {"service_account": name}, f"service account {name!r} created")


@app.command()
def grant(principal: str, project: str, role: str, as_json: JsonFlag = False) -> None:
    """Grant ROLE (viewer, data_scientist, approver, auditor, admin) in PROJECT to PRINCIPAL."""
    from governance.identity import get_principal_by_name
    from governance.roles import grant_role
    from lineage.projects import get_project

    actor = _cli_actor()

    def give(session: Session) -> None:
        grant_role(
            session=session,
            actor=actor,
            project_id=get_project(session=session, name=project).id,
            principal_id=get_principal_by_name(session=session, name=principal).id,
            role=role,
        )

    _run(give)
    payload: dict[str, object] = {"principal": principal, "project": project, "role": role}
    _done(as_json, payload, f"{principal!r} is now {role} in {project!r}")


@key_app.command("create")
def key_create(
    principal: str,
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
    expires_days: Annotated[
        int | None, typer.Option(help="Expire after this many days (default: never).", min=1)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an API key for PRINCIPAL and print it once."""
    from governance.identity import get_principal_by_name, issue_api_key
    from lineage.tables import utcnow

    actor = _cli_actor()
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None

    def issue(session: Session) -> str:
        principal_id = get_principal_by_name(session=session, name=principal).id
        return issue_api_key(
            session=session,
            actor=actor,
            principal_id=principal_id,
            label=label,
            expires_at=expires_at,
        ).secret

    secret = _run(issue)
    if as_json:
        _done(True, {"principal": principal, "label": label, "api_key": secret}, "")
        return
    typer.echo(f"API key for {principal!r} (shown once, store it now):", err=True)
    typer.echo(secret)


@key_app.command("list")
def key_list(
    principal: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List PRINCIPAL's keys by public prefix (secrets are never stored)."""
    from governance.identity import get_principal_by_name, list_api_keys

    def rows(session: Session) -> list[dict[str, str | None]]:
        principal_id = get_principal_by_name(session=session, name=principal).id
        return [
            {
                "prefix": k.display_prefix,
                "label": k.label,
                "expires_at": k.expires_at.isoformat() if k.expires_at else None,
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in list_api_keys(session=session, principal_id=principal_id)
        ]

    found = _run(rows)
    if as_json:
        typer.echo(json.dumps(found))
        return
    for row in found:
        state = "revoked" if row["revoked_at"] else f"expires {row['expires_at'] or 'never'}"
        typer.echo(f"{row['prefix']}  {row['label'] or '-'}  {state}")


@key_app.command("revoke")
def key_revoke(principal: str, prefix: str, as_json: JsonFlag = False) -> None:
    """Revoke PRINCIPAL's key whose public prefix is PREFIX (``wdn_…`` as listed)."""
    from governance.identity import get_principal_by_name, list_api_keys, revoke_api_key
    from lineage import NotFound

    actor = _cli_actor()

    def revoke(session: Session) -> None:
        principal_id = get_principal_by_name(session=session, name=principal).id
        for key in list_api_keys(session=session, principal_id=principal_id):
            if key.display_prefix == prefix or key.prefix == prefix:
                revoke_api_key(
                    session=session, actor=actor, principal_id=principal_id, key_id=key.id
                )
                return
        raise NotFound(f"{principal!r} has no key with prefix {prefix!r}; see `key list`")

    _run(revoke)
    _done(as_json, {"principal": principal, "revoked": prefix}, f"key {prefix} revoked")
