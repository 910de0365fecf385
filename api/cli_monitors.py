"""``warden monitor run <project> <monitor>``: run one monitor now, in this process.

The run is recorded like any other (a manual slot of the monitor and its job, its summary,
report, lineage and routed findings), but this process claims the job at once and executes it
rather than leaving it to a worker, so a person can watch it and read the findings at once.
The model, when the kind needs one, is loaded only from a version registered in Warden after
its artifact hash matches lineage. Exits 0 when the run succeeded (whatever its findings say),
1 when it failed.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Annotated

import typer

from api.settings import Settings

__all__ = ["app"]

_INLINE_LEASE = timedelta(hours=6)
"""How long this process holds the run's job without heart-beating (a monitor run is minutes)."""

app = typer.Typer(
    name="monitor", help="Run monitors now and read their findings.", no_args_is_help=True
)


def _settings() -> Settings:
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


@app.command("run")
def run(
    project: Annotated[str, typer.Argument(help="The project's name.")],
    monitor: Annotated[str, typer.Argument(help="The monitor's name or id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run one monitor now (in-process) and print its findings."""
    from sqlmodel import select

    from api.store import open_store
    from api.worker_process import build_model_loader
    from lineage.projects import get_project
    from lineage.runtime.queue import claim, complete, fail
    from lineage.runtime.worker import worker_name
    from lineage.store import session_scope
    from lineage.tables import utcnow
    from monitors.execute import execute_monitor_run, report_paths
    from monitors.findings import RunSummary, run_status
    from monitors.models import Monitor, RunTrigger
    from monitors.run_jobs import queue_monitor_run
    from retrain.loop import handle_run_findings

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
            slot = queue_monitor_run(
                session=session,
                monitor=found,
                scheduled_for=utcnow(),
                trigger=RunTrigger.MANUAL,
                max_attempts=1,
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
                data_dir=settings.data_dir,
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
    _, html = report_paths(settings.data_dir, project_id=project_uuid, run_id=run_id)
    typer.echo(f"report: {html}")
