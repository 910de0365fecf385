"""``warden monitor run <project> <monitor>``: run one monitor now, in this process.

The run is recorded like any other (a manual slot of the monitor, its summary, report, lineage
and routed findings), but executed here rather than queued for a worker, so a person can watch
it and read the findings at once. The model, when the kind needs one, is loaded only from a
version registered in Warden after its artifact hash matches lineage. Exits 0 when the run
succeeded (whatever its findings say), 1 when it failed.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import typer

from api.settings import Settings

__all__ = ["app"]

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

    from api.worker import build_model_loader, route_monitor_findings
    from lineage import create_store_engine
    from lineage.projects import get_project
    from lineage.store import session_scope
    from lineage.tables import utcnow
    from monitors.execute import execute_run, report_paths
    from monitors.models import Monitor, MonitorRun, RunState, RunTrigger
    from monitors.schedules import record_run

    settings = _settings()
    engine = create_store_engine(settings.resolved_database_url())
    try:
        with session_scope(engine) as session:
            project_id = get_project(session=session, name=project).id
            query = select(Monitor).where(Monitor.project_id == project_id)
            try:
                query = query.where(Monitor.id == uuid.UUID(monitor))
            except ValueError:
                query = query.where(Monitor.name == monitor)
            found = session.exec(query).first()
            if found is None:
                typer.echo(f"no monitor {monitor!r} in project {project!r}", err=True)
                raise typer.Exit(2)
            slot = record_run(
                session=session, monitor=found, scheduled_for=utcnow(), trigger=RunTrigger.MANUAL
            )
            if slot is None:
                typer.echo(
                    "a run of this monitor was recorded at this very instant; retry", err=True
                )
                raise typer.Exit(1)
            slot.state = RunState.RUNNING
            slot.started_at = utcnow()
            slot.attempts = 1
            session.add(slot)
            run_id = slot.id

        def progress(fraction: float, message: str) -> None:
            typer.echo(f"[{fraction:4.0%}] {message}", err=True)

        error: str | None = None
        summary = None
        try:
            summary = execute_run(
                engine=engine,
                data_dir=settings.data_dir,
                run_id=run_id,
                loader=build_model_loader(settings),
                on_findings=route_monitor_findings,
                progress=progress,
            )
        except Exception as failure:  # recorded on the run, then reported
            error = f"{type(failure).__name__}: {failure}"
        with session_scope(engine) as session:
            stored = session.get(MonitorRun, run_id)
            assert stored is not None
            stored.state = RunState.FAILED if error else RunState.SUCCEEDED
            stored.error = error
            stored.progress = 1.0
            stored.finished_at = utcnow()
            session.add(stored)
            project_uuid = stored.project_id
    finally:
        engine.dispose()
    if error is not None or summary is None:
        typer.echo(f"run {run_id} failed: {error}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps({"run_id": str(run_id), **summary}, sort_keys=True))
        return
    typer.echo(f"run {run_id}: {summary['status']} ({summary['rows']} rows)")
    if summary.get("reason"):
        typer.echo(f"  {summary['reason']}")
    for finding in summary["findings"]:
        value = "-" if finding["value"] is None else f"{finding['value']:.4g}"
        threshold = "-" if finding["threshold"] is None else f"{finding['threshold']:.4g}"
        typer.echo(
            f"  {finding['status']:<12} {finding['metric']:<28} {finding['scope']:<30} "
            f"{value} (threshold {threshold})"
        )
    _, html = report_paths(settings.data_dir, project_id=project_uuid, run_id=run_id)
    typer.echo(f"report: {html}")
