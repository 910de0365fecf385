"""Direct mode: the command line acting on the store itself, on the server, as break-glass.

Bootstrap, migrations and emergency administration need no server and no key: whoever can open
the store is trusted like its owner. Everything they change is still audited, under an actor
whose name says so (``break-glass:<OS user>``), so a reader of the log tells an operator at the
server's console from a principal who signed in. Everyday work uses the client mode instead
(:mod:`api.cli_client`), where permissions and separation of duties apply.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from governance.actors import Actor

__all__ = ["BREAK_GLASS", "break_glass_actor", "warn_direct"]

BREAK_GLASS = "break-glass"
"""The prefix of every direct-mode actor's name in the audit log."""


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no USER: a bare container
        return "unknown"


def break_glass_actor() -> Actor:
    """Return the actor direct-mode changes are audited as: ``break-glass:<OS user>``."""
    from governance.actors import Actor, PrincipalKind

    return Actor(
        principal_id=None,
        name=f"{BREAK_GLASS}:{_os_user()}",
        kind=PrincipalKind.SYSTEM,
        request_id="cli",
    )


def warn_direct() -> None:
    """Tell the operator on stderr that this command bypasses the API (and is audited so)."""
    typer.echo(
        f"direct mode: acting on the store itself, audited as {BREAK_GLASS}:{_os_user()} "
        "(give --url or WARDEN_URL to act through the API as yourself)",
        err=True,
    )
