"""``warden policies …``, ``warden alert-rules …`` and ``warden approvals …`` over REST.

Every command is a call as the signed-in principal (:mod:`api.cli_client`), so permissions and
separation of duties are the server's: a data scientist's ``approvals approve`` is refused with
the same reason as over REST, and audited as a denial there::

    warden policies validate drift-retrain.yaml              # offline, the server's own parser
    warden policies dry-run -p census drift-retrain --last-runs 5
    warden policies create -p census drift-retrain -f drift-retrain.yaml
    warden policies activate -p census drift-retrain 2
    warden alert-rules create -p census -f page-on-drift.yaml
    warden approvals list -p census --for-me
    warden approvals approve -p census 3f1c… --reason "challenger no worse on every slice"
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli_client import (
    Connection,
    JsonOption,
    ProjectOption,
    connect,
    each,
    emit,
    fail,
    load_document,
)

__all__ = ["alert_rules_app", "approvals_app", "policies_app"]

policies_app = typer.Typer(
    rich_markup_mode=None,
    name="policies",
    help="Validate, dry-run, create, version and activate policies.",
    no_args_is_help=True,
)
alert_rules_app = typer.Typer(
    rich_markup_mode=None,
    name="alert-rules",
    help="Route findings to alert channels: list, create, show, enable, delete rules.",
    no_args_is_help=True,
)
approvals_app = typer.Typer(
    rich_markup_mode=None,
    name="approvals",
    help="List approval requests; approve or reject them with a reason.",
    no_args_is_help=True,
)

_Reason = Annotated[str, typer.Option(help="Why (required; kept in the audit log).")]


# --- policies -------------------------------------------------------------------------------


def _policy(connection: Connection, ref: str) -> dict[str, Any]:
    for found in connection.request_all(connection.project_path("/policies")):
        if ref in (found["name"], found["id"]):
            return dict(found)
    fail(f"no policy {ref!r} in project {connection.project!r}; see `warden policies list`", 1)


def _print_policy(policy: dict[str, Any]) -> None:
    state = "enabled" if policy["enabled"] else "disabled"
    pending = (
        f", version {policy['latest_version']} awaits approval {policy['pending_approval_id']}"
        if policy.get("pending_approval_id")
        else ""
    )
    typer.echo(
        f"{policy['name']:<28} {state:<9} active v{policy['active_version'] or '-'} "
        f"(latest v{policy['latest_version']}){pending}"
    )


def _source(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {file}: {error}")


_PolicyFile = Annotated[
    Path, typer.Option("--file", "-f", help="The policy document, YAML or JSON.")
]


@policies_app.command("validate")
def policies_validate(
    file: Annotated[Path, typer.Argument(help="The policy document, YAML or JSON.")],
    as_json: JsonOption = False,
) -> None:
    """Check a policy document offline with the server's parser; name the first error's path."""
    from governance.policy_language import dump_document, load_source, parse_document
    from lineage.errors import InvalidInput

    try:
        parsed = parse_document(load_source(_source(file)))
    except InvalidInput as error:
        message = f"invalid: {error.detail}" + (f" (at {error.field})" if error.field else "")
        emit(
            {"valid": False, "field": error.field, "detail": error.detail},
            as_json=as_json,
            human=lambda _: typer.echo(message, err=True),
        )
        raise typer.Exit(1) from None
    document = dump_document(parsed)
    emit(
        {"valid": True, "rules": len(document.get("rules", [])), "document": document},
        as_json=as_json,
        human=lambda answer: typer.echo(f"valid: {answer['rules']} rule(s)"),
    )


@policies_app.command("list")
def policies_list(
    ctx: typer.Context, project: ProjectOption = None, as_json: JsonOption = False
) -> None:
    """List the project's policies."""
    connection = connect(ctx, project)
    found = connection.request_all(connection.project_path("/policies"))
    emit(found, as_json=as_json, human=each(_print_policy))


@policies_app.command("show")
def policies_show(
    ctx: typer.Context,
    policy: Annotated[str, typer.Argument(help="The policy's name or id.")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a policy and its versions."""
    connection = connect(ctx, project)
    found = _policy(connection, policy)
    versions = connection.request_all(connection.project_path(f"/policies/{found['id']}/versions"))

    def human(answer: dict[str, Any]) -> None:
        _print_policy(answer)
        for version in answer["versions"]:
            active = " (active)" if version["active"] else ""
            typer.echo(
                f"  v{version['version']}{active} by {version['created_by']} "
                f"at {version['created_at']}"
            )

    emit({**found, "versions": versions}, as_json=as_json, human=human)


@policies_app.command("create")
def policies_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new policy's name.")],
    file: _PolicyFile,
    project: ProjectOption = None,
    reason: Annotated[str, typer.Option(help="Why (kept with the version).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a policy from a document (active at once, or pending the approval it needs)."""
    connection = connect(ctx, project)
    body = {"name": name, "source": _source(file), "reason": reason}
    made = connection.request("POST", connection.project_path("/policies"), body=body)
    emit(made, as_json=as_json, human=_print_policy)


@policies_app.command("add-version")
def policies_add_version(
    ctx: typer.Context,
    policy: Annotated[str, typer.Argument(help="The policy's name or id.")],
    file: _PolicyFile,
    project: ProjectOption = None,
    reason: Annotated[str, typer.Option(help="Why (kept with the version).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Store a new version of a policy (active at once, or pending the approval it needs)."""
    connection = connect(ctx, project)
    found = _policy(connection, policy)
    made = connection.request(
        "POST",
        connection.project_path(f"/policies/{found['id']}/versions"),
        body={"source": _source(file), "reason": reason},
    )
    emit(
        made,
        as_json=as_json,
        human=lambda v: typer.echo(
            f"{found['name']} v{v['version']} stored"
            + (" and active" if v["active"] else f"; pending approval {v['approval_id']}")
        ),
    )


@policies_app.command("activate")
def policies_activate(
    ctx: typer.Context,
    policy: Annotated[str, typer.Argument(help="The policy's name or id.")],
    version: Annotated[int, typer.Argument(help="The version to make the deciding one.", min=1)],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a version the one that decides (approved first, when the project requires it)."""
    connection = connect(ctx, project)
    found = _policy(connection, policy)
    done = connection.request(
        "POST", connection.project_path(f"/policies/{found['id']}/versions/{version}:activate")
    )
    emit(
        done,
        as_json=as_json,
        human=lambda v: typer.echo(f"{found['name']} v{v['version']} is active"),
    )


@policies_app.command("dry-run")
def policies_dry_run(
    ctx: typer.Context,
    policy: Annotated[str, typer.Argument(help="The policy's name or id.")],
    project: ProjectOption = None,
    last_runs: Annotated[
        int | None,
        typer.Option(help="Evaluate on the project's last N recorded monitor runs.", min=1),
    ] = None,
    findings: Annotated[
        Path | None,
        typer.Option(help="Evaluate on these runs instead (YAML/JSON: the dry-run's `runs`)."),
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="This version (default: the active one).", min=1)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show what a policy would decide, acting on nothing."""
    if (last_runs is None) == (findings is None):
        fail("give either --last-runs N or --findings FILE")
    connection = connect(ctx, project)
    found = _policy(connection, policy)
    body: dict[str, Any] = {"version": version}
    if findings is not None:
        body["runs"] = load_document(findings)
    else:
        body["last_runs"] = last_runs
    answer = connection.request(
        "POST",
        connection.project_path(f"/policies/{found['id']}:dry-run"),
        body={k: v for k, v in body.items() if v is not None},
    )

    def human(result: dict[str, Any]) -> None:
        typer.echo(
            f"{found['name']} v{result['policy_version']} on {result['runs']} run(s): "
            f"{len(result['decisions'])} decision(s), nothing done"
        )
        for decision in result["decisions"]:
            typer.echo(f"  {decision}")

    emit(answer, as_json=as_json, human=human)


# --- alert rules ----------------------------------------------------------------------------


def _rule(connection: Connection, ref: str) -> dict[str, Any]:
    for found in connection.request_all(connection.project_path("/alert-rules")):
        if ref in (found["name"], found["id"]):
            return dict(found)
    fail(f"no alert rule {ref!r} in project {connection.project!r}", 1)


def _print_rule(rule: dict[str, Any]) -> None:
    state = "enabled" if rule["enabled"] else "disabled"
    kinds = ",".join(rule["monitor_kinds"]) or "any kind"
    typer.echo(
        f"{rule['name']:<28} {state:<9} {rule['min_status']}+ of {kinds} "
        f"→ {len(rule['channel_ids'])} channel(s)"
    )


@alert_rules_app.command("list")
def alert_rules_list(
    ctx: typer.Context, project: ProjectOption = None, as_json: JsonOption = False
) -> None:
    """List the project's alert rules."""
    connection = connect(ctx, project)
    emit(
        connection.request_all(connection.project_path("/alert-rules")),
        as_json=as_json,
        human=each(_print_rule),
    )


@alert_rules_app.command("show")
def alert_rules_show(
    ctx: typer.Context,
    rule: Annotated[str, typer.Argument(help="The rule's name or id.")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one alert rule."""
    emit(_rule(connect(ctx, project), rule), as_json=as_json, human=_print_rule)


@alert_rules_app.command("create")
def alert_rules_create(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Option("--file", "-f", help="The rule, YAML or JSON (the body of POST).")
    ],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an alert rule (name, min_status, monitor_kinds, metrics, channel_ids)."""
    connection = connect(ctx, project)
    made = connection.request(
        "POST", connection.project_path("/alert-rules"), body=load_document(file)
    )
    emit(made, as_json=as_json, human=_print_rule)


@alert_rules_app.command("enable")
def alert_rules_enable(
    ctx: typer.Context,
    rule: Annotated[str, typer.Argument(help="The rule's name or id.")],
    project: ProjectOption = None,
    off: Annotated[bool, typer.Option("--off", help="Disable the rule instead.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Switch an alert rule on (or off with --off)."""
    connection = connect(ctx, project)
    found = _rule(connection, rule)
    changed = connection.request(
        "PATCH",
        connection.project_path(f"/alert-rules/{found['id']}"),
        body={"enabled": not off},
    )
    emit(changed, as_json=as_json, human=_print_rule)


@alert_rules_app.command("delete")
def alert_rules_delete(
    ctx: typer.Context,
    rule: Annotated[str, typer.Argument(help="The rule's name or id.")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete an alert rule."""
    connection = connect(ctx, project)
    found = _rule(connection, rule)
    connection.request("DELETE", connection.project_path(f"/alert-rules/{found['id']}"))
    emit(
        {"deleted": found["id"], "name": found["name"]},
        as_json=as_json,
        human=lambda done: typer.echo(f"alert rule {done['name']} deleted"),
    )


# --- approvals ------------------------------------------------------------------------------


def _print_approval(approval: dict[str, Any]) -> None:
    votes = sum(1 for d in approval["decisions"] if d["approve"])
    typer.echo(
        f"{approval['id']}  {approval['status']:<9} {approval['action']:<10} "
        f"{approval['target_kind']}:{approval['target_id']}  by {approval['requested_by_name']}  "
        f"{votes}/{approval['required_approvals']} approvals  {approval['reason']}"
    )
    if approval.get("outcome"):
        typer.echo(f"  outcome: {approval['outcome']}")


@approvals_app.command("list")
def approvals_list(
    ctx: typer.Context,
    project: ProjectOption = None,
    status: Annotated[
        str | None, typer.Option(help="Only requests in this state (pending, approved, …).")
    ] = None,
    for_me: Annotated[bool, typer.Option("--for-me", help="Only what I may still decide.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List the project's approval requests, newest first."""
    connection = connect(ctx, project)
    found = connection.request_all(
        connection.project_path("/approvals"),
        params={"status": status, "for_me": "true" if for_me else None},
    )
    emit(found, as_json=as_json, human=each(_print_approval))


@approvals_app.command("show")
def approvals_show(
    ctx: typer.Context,
    approval: Annotated[str, typer.Argument(help="The request's id.")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one approval request and its decisions."""
    connection = connect(ctx, project)
    found = connection.request("GET", connection.project_path(f"/approvals/{approval}"))

    def human(answer: dict[str, Any]) -> None:
        _print_approval(answer)
        for decision in answer["decisions"]:
            verdict = "approved" if decision["approve"] else "rejected"
            typer.echo(f"  {verdict} by {decision['principal_name']}: {decision['reason']}")

    emit(found, as_json=as_json, human=human)


def _decide(
    ctx: typer.Context, project: str | None, approval: str, verdict: str, reason: str, as_json: bool
) -> None:
    connection = connect(ctx, project)
    decided = connection.request(
        "POST",
        connection.project_path(f"/approvals/{approval}/{verdict}"),
        body={"reason": reason},
    )
    emit(decided, as_json=as_json, human=_print_approval)


@approvals_app.command("approve")
def approvals_approve(
    ctx: typer.Context,
    approval: Annotated[str, typer.Argument(help="The request's id.")],
    reason: _Reason,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a pending request (not your own, nor one you are barred from)."""
    _decide(ctx, project, approval, "approve", reason, as_json)


@approvals_app.command("reject")
def approvals_reject(
    ctx: typer.Context,
    approval: Annotated[str, typer.Argument(help="The request's id.")],
    reason: _Reason,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a pending request; one rejection closes it."""
    _decide(ctx, project, approval, "reject", reason, as_json)


@approvals_app.command("carry-out")
def approvals_carry_out(
    ctx: typer.Context,
    approval: Annotated[str, typer.Argument(help="The request's id.")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Carry out an approved rollback or redeploy request (its requester, in one call)."""
    connection = connect(ctx, project)
    done = connection.request("POST", connection.project_path(f"/approvals/{approval}/carry-out"))
    emit(done, as_json=as_json, human=_print_approval)
