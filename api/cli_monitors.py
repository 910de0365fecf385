"""``warden monitors …`` and ``warden baselines …`` over REST; ``warden monitor run`` on the store.

Client mode (:mod:`api.cli_client`)::

    warden monitors list -p census
    warden monitors create -p census -f drift.yaml      # the body of POST …/monitors
    warden monitors run -p census drift-daily           # queue, wait for the worker, print
    warden monitors show -p census drift-daily          # the monitor and its last runs
    warden baselines upload -p census --deployment income-api reference.parquet

``monitors run`` queues the run (``monitor:run``), then follows it until a worker finishes it;
it exits 0 when the run succeeded (whatever its findings say), 1 when it failed.

``warden monitor run <project> <monitor>`` is the direct mode (break-glass, on the server): the
run is recorded like any other, but this process claims its job at once and executes it, so an
operator can run a monitor with no worker alive. The model, when the kind needs one, is loaded
only from a version registered in Warden after its artifact hash matches lineage.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from api.settings import Settings


__all__ = ["app", "baselines_app", "monitors_app"]

_INLINE_LEASE = timedelta(hours=6)
"""How long this process holds the run's job without heart-beating (a monitor run is minutes)."""

app = typer.Typer(
    rich_markup_mode=None,
    name="monitor",
    help="Run monitors now and read their findings.",
    no_args_is_help=True,
)


def _settings() -> Settings:
    from api.settings import Settings

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


@app.command("run")
def run(
    project: Annotated[str, typer.Argument(help="The project's name.")],
    monitor: Annotated[str, typer.Argument(help="The monitor's name or id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run one monitor now, in this process, on the store (break-glass: no worker needed)."""
    from sqlmodel import select

    from api.cli_direct import break_glass_actor, warn_direct
    from api.store import open_store
    from api.worker_process import build_model_loader
    from governance.audit import act_then_audit
    from lineage.projects import get_project
    from lineage.runtime.queue import claim, complete, fail
    from lineage.runtime.worker import worker_name
    from lineage.store import session_scope
    from lineage.tables import utcnow
    from monitors.execute import execute_monitor_run, report_keys
    from monitors.findings import RunSummary, run_status
    from monitors.models import Monitor, RunTrigger
    from monitors.run_jobs import queue_monitor_run
    from retrain.loop import handle_run_findings

    warn_direct()
    settings = _settings()
    engine = open_store(settings)
    owner = worker_name()
    try:
        with session_scope(engine) as session:
            project_uuid = get_project(session=session, name=project).id
            query = select(Monitor).where(Monitor.project_id == project_uuid)
            try:
                query = query.where(Monitor.id == uuid.UUID(monitor))
            except ValueError:
                query = query.where(Monitor.name == monitor)
            found = session.exec(query).first()
            if found is None:
                typer.echo(f"no monitor {monitor!r} in project {project!r}", err=True)
                raise typer.Exit(2)
            chosen = found
            slot = act_then_audit(
                lambda: queue_monitor_run(
                    session=session,
                    monitor=chosen,
                    scheduled_for=utcnow(),
                    trigger=RunTrigger.MANUAL,
                    max_attempts=1,
                ),
                session=session,
                actor=break_glass_actor(),
                action="monitor.run",
                target=f"monitor:{found.id}",
                detail=lambda queued: {"after": {"run_id": str(queued.id) if queued else None}},
                project_id=found.project_id,
                when=lambda queued: queued is not None,
            )
            if slot is None:
                typer.echo(
                    "a run of this monitor was recorded at this very instant; retry", err=True
                )
                raise typer.Exit(1)
            # This process runs the job itself, before any worker may claim it; a lease that
            # expires (this process died) fails it, since it has one attempt only.
            claim(session=session, owner=owner, lease=_INLINE_LEASE, job_id=slot.job_id)
            run_id, job_id = slot.id, slot.job_id
            assert job_id is not None

        def progress(fraction: float, message: str) -> None:
            typer.echo(f"[{fraction:4.0%}] {message}", err=True)

        error: str | None = None
        summary = None
        try:
            summary = execute_monitor_run(
                engine=engine,
                store=settings.artifact_store(),
                run_id=run_id,
                loader=build_model_loader(settings),
                on_findings=handle_run_findings,
                progress=progress,
            )
        except Exception as failure:  # recorded on the run's job, then reported
            error = f"{type(failure).__name__}: {failure}"
        with session_scope(engine) as session:
            if error is None:
                complete(session=session, job_id=job_id, owner=owner, result=None)
            else:
                fail(
                    session=session,
                    job_id=job_id,
                    owner=owner,
                    error=error,
                    retry_delay=timedelta(0),
                )
    finally:
        engine.dispose()
    if error is not None or summary is None:
        typer.echo(f"run {run_id} failed: {error}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps({"run_id": str(run_id), **summary}, sort_keys=True))
        return
    typed = RunSummary.from_json(summary)
    assert typed is not None  # execute_monitor_run returns a summary's stored form
    typer.echo(f"run {run_id}: {run_status(typed)} ({typed.rows} rows)")
    if typed.reason:
        typer.echo(f"  {typed.reason}")
    for finding in typed.findings:
        value = "-" if finding.value is None else f"{finding.value:.4g}"
        threshold = "-" if finding.threshold is None else f"{finding.threshold:.4g}"
        typer.echo(
            f"  {finding.status:<12} {finding.metric:<28} {finding.scope:<30} "
            f"{value} (threshold {threshold})"
        )
    _, html = report_keys(project_id=project_uuid, run_id=run_id)
    typer.echo(f"report: {settings.artifact_store().url}/{html}")


monitors_app = typer.Typer(
    rich_markup_mode=None,
    name="monitors",
    help="List, create, show and run monitors through the API.",
    no_args_is_help=True,
)
baselines_app = typer.Typer(
    rich_markup_mode=None,
    name="baselines",
    help="Build, upload and list reference baselines through the API.",
    no_args_is_help=True,
)

_FINAL_STATES = ("succeeded", "failed", "cancelled")
_Environment = Annotated[
    str, typer.Option(help="The slot's environment when the deployment is given by name.")
]


def _monitor(connection: Connection, ref: str) -> dict[str, Any]:
    """Return the monitor named ``ref`` (or with that id) in the connection's project."""
    for found in connection.request_all(connection.project_path("/monitors")):
        if ref in (found["name"], found["id"]):
            return dict(found)
    fail(f"no monitor {ref!r} in project {connection.project!r}; see `warden monitors list`", 1)


def _print_monitor(monitor: dict[str, Any]) -> None:
    schedule = monitor.get("schedule")
    every = (
        "on request"
        if not schedule
        else schedule["cron"] or f"every {schedule['interval_seconds']}s"
    )
    state = "paused" if monitor["paused"] else every
    typer.echo(f"{monitor['name']:<28} {monitor['kind']:<20} {monitor['window']:<12} {state}")


def _print_run(run: dict[str, Any]) -> None:
    summary = run.get("summary") or {}
    status = summary.get("status") or run["state"]
    typer.echo(f"run {run['id']}: {run['state']} ({status}, {summary.get('rows', 0)} rows)")
    if run.get("error"):
        typer.echo(f"  {run['error']}")
    if summary.get("reason"):
        typer.echo(f"  {summary['reason']}")
    for finding in summary.get("findings") or []:
        value = "-" if finding.get("value") is None else f"{finding['value']:.4g}"
        threshold = "-" if finding.get("threshold") is None else f"{finding['threshold']:.4g}"
        typer.echo(
            f"  {finding['status']:<12} {finding['metric']:<28} {finding['scope']:<30} "
            f"{value} (threshold {threshold})"
        )


@monitors_app.command("list")
def monitors_list(
    ctx: typer.Context, project: ProjectOption = None, as_json: JsonOption = False
) -> None:
    """List the project's monitors."""
    connection = connect(ctx, project)
    found = connection.request_all(connection.project_path("/monitors"))
    emit(found, as_json=as_json, human=each(_print_monitor))


@monitors_app.command("show")
def monitors_show(
    ctx: typer.Context,
    monitor: Annotated[str, typer.Argument(help="The monitor's name or id.")],
    project: ProjectOption = None,
    runs: Annotated[int, typer.Option(help="How many recent runs to show.", min=0)] = 5,
    as_json: JsonOption = False,
) -> None:
    """Show one monitor and its most recent runs."""
    connection = connect(ctx, project)
    found = _monitor(connection, monitor)
    recent = (
        connection.request(
            "GET",
            connection.project_path(f"/monitors/{found['id']}/runs"),
            params={"limit": runs},
        )
        if runs
        else []
    )

    def human(answer: dict[str, Any]) -> None:
        _print_monitor(answer)
        typer.echo(f"  id {answer['id']}, deployment {answer['deployment_id'] or '-'}")
        for run in answer["runs"]:
            _print_run(run)

    emit({**found, "runs": recent}, as_json=as_json, human=human)


@monitors_app.command("create")
def monitors_create(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Option("--file", "-f", help="The monitor, YAML or JSON (the body of POST).")
    ],
    project: ProjectOption = None,
    environment: _Environment = "production",
    as_json: JsonOption = False,
) -> None:
    """Create a monitor from a file (name, deployment_id or its name, spec, schedule, window)."""
    connection = connect(ctx, project)
    body = load_document(file)
    made = connection.request(
        "POST",
        connection.project_path("/monitors"),
        body=body,
        params={"environment": environment},
    )
    emit(
        made,
        as_json=as_json,
        human=lambda m: typer.echo(f"monitor {m['name']} created ({m['id']})"),
    )


@monitors_app.command("run")
def monitors_run(
    ctx: typer.Context,
    monitor: Annotated[str, typer.Argument(help="The monitor's name or id.")],
    project: ProjectOption = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the run until a worker finishes it.")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.", min=1)] = 600,
    as_json: JsonOption = False,
) -> None:
    """Queue a run of the monitor now; by default wait for it and print its findings."""
    connection = connect(ctx, project)
    found = _monitor(connection, monitor)
    run = connection.request("POST", connection.project_path(f"/monitors/{found['id']}/runs"))
    if wait:
        if not as_json:
            typer.echo(f"run {run['id']} queued; waiting for a worker", err=True)
        run = connection.wait(
            connection.project_path(f"/monitor-runs/{run['id']}"),
            done=lambda answer: answer["state"] in _FINAL_STATES,
            timeout=timeout,
        )
    emit(run, as_json=as_json, human=_print_run)
    if run["state"] in ("failed", "cancelled"):
        raise typer.Exit(1)


def _print_baseline(baseline: dict[str, Any]) -> None:
    typer.echo(
        f"{baseline['id']}  deployment {baseline['deployment_id']}  {baseline['rows']} rows  "
        f"{len(baseline['columns'])} columns  {baseline['created_at']}"
    )


@baselines_app.command("list")
def baselines_list(
    ctx: typer.Context,
    project: ProjectOption = None,
    deployment: Annotated[
        str | None, typer.Option(help="Only this deployment's (its id or name).")
    ] = None,
    environment: _Environment = "production",
    as_json: JsonOption = False,
) -> None:
    """List the project's baselines, newest first."""
    connection = connect(ctx, project)
    found = connection.request(
        "GET",
        connection.project_path("/baselines"),
        params={"deployment_id": deployment, "environment": environment},
    )
    emit(found, as_json=as_json, human=each(_print_baseline))


@baselines_app.command("show")
def baselines_show(
    ctx: typer.Context,
    baseline: Annotated[str, typer.Argument(help="The baseline's id.")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one baseline."""
    connection = connect(ctx, project)
    found = connection.request("GET", connection.project_path(f"/baselines/{baseline}"))
    emit(found, as_json=as_json, human=_print_baseline)


_Deployment = Annotated[
    str, typer.Option("--deployment", "-d", help="The deployment's id or name.")
]
_Column = Annotated[str | None, typer.Option(help="The reference's column of that name.")]


@baselines_app.command("create")
def baselines_create(
    ctx: typer.Context,
    deployment: _Deployment,
    dataset_version: Annotated[
        str, typer.Option(help="The dataset version (inside the data directory) to summarise.")
    ],
    project: ProjectOption = None,
    label_column: _Column = None,
    prediction_column: _Column = None,
    score_column: _Column = None,
    environment: _Environment = "production",
    as_json: JsonOption = False,
) -> None:
    """Build a deployment's baseline from a dataset version Warden already knows."""
    connection = connect(ctx, project)
    body = {
        "deployment_id": deployment,
        "dataset_version_id": dataset_version,
        "label_column": label_column,
        "prediction_column": prediction_column,
        "score_column": score_column,
    }
    made = connection.request(
        "POST",
        connection.project_path("/baselines"),
        body=body,
        params={"environment": environment},
    )
    emit(made, as_json=as_json, human=_print_baseline)


@baselines_app.command("upload")
def baselines_upload(
    ctx: typer.Context,
    deployment: _Deployment,
    file: Annotated[Path, typer.Argument(help="The reference data: .parquet, .pq, .csv, .csv.gz")],
    project: ProjectOption = None,
    label_column: _Column = None,
    prediction_column: _Column = None,
    score_column: _Column = None,
    environment: _Environment = "production",
    as_json: JsonOption = False,
) -> None:
    """Upload reference data and build the deployment's baseline from it."""
    connection = connect(ctx, project)
    try:
        content = file.read_bytes()
    except OSError as error:
        fail(f"cannot read {file}: {error}")
    form = {
        "deployment_id": deployment,
        "label_column": label_column,
        "prediction_column": prediction_column,
        "score_column": score_column,
    }
    made = connection.request(
        "POST",
        connection.project_path("/baselines/upload"),
        files={"file": (file.name, content)},
        data={k: v for k, v in form.items() if v is not None},
        params={"environment": environment},
    )
    emit(made, as_json=as_json, human=_print_baseline)
