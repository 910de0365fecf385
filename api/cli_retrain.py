"""``warden pipelines …``, ``warden models …`` and ``warden lineage sync-mlflow``.

With ``--url`` (or ``WARDEN_URL``) each command is a REST call as the signed-in principal
(:mod:`api.cli_client`). Without one they act on the store directly, as the operator who holds
its credentials, audited as ``break-glass:<OS user>`` (:mod:`api.cli_direct`); going-live rules
still apply. ``lineage sync-mlflow`` is an import (a migration), direct only. In direct mode
``warden pipelines run --now`` executes the run in this process (what the worker would do).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from api.cli_client import (
    JsonOption,
    ProjectOption,
    client_url,
    connect,
    each,
    emit,
    fail,
    load_document,
)

if TYPE_CHECKING:
    from api.settings import Settings


__all__ = ["lineage_app", "models_app", "pipelines_app"]

pipelines_app = typer.Typer(
    rich_markup_mode=None,
    name="pipelines",
    help="Define retraining pipelines, start, follow and cancel their runs.",
    no_args_is_help=True,
)
models_app = typer.Typer(
    rich_markup_mode=None,
    name="models",
    help="Roll deployments back to the version they replaced.",
    no_args_is_help=True,
)
lineage_app = typer.Typer(
    rich_markup_mode=None,
    name="lineage",
    help="Import provenance from other systems.",
    no_args_is_help=True,
)

_FINAL = ("succeeded", "failed", "cancelled")


def _print_remote_run(run: dict[str, Any]) -> None:
    version = f" -> {run['model_name']} v{run['model_version']}" if run["model_version"] else ""
    typer.echo(f"run {run['id']}: {run['state']}{version} {run['error']}".rstrip())


def _settings() -> Settings:
    from api.settings import Settings

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _direct(project: str | None) -> str:
    """Return the project a direct-mode command acts in, after warning that it is break-glass."""
    from api.cli_direct import warn_direct

    chosen = project or os.environ.get("WARDEN_PROJECT")
    if not chosen:
        fail("which project? give --project (or set WARDEN_PROJECT)")
    warn_direct()
    return chosen


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _run_summary(run: Any) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "model_name": run.model_name,
        "state": run.state,
        "model_version": run.model_version,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
    }


@pipelines_app.command("define")
def define(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="A pipeline spec, YAML or JSON.")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a pipeline from a spec file (the body of ``POST …/pipelines``)."""
    if client_url(ctx):
        connection = connect(ctx, project)
        made = connection.request(
            "POST", connection.project_path("/pipelines"), body=load_document(file)
        )
        emit(made, as_json=as_json, human=lambda p: typer.echo(f"pipeline {p['name']} defined"))
        return
    import yaml

    from api.cli_direct import break_glass_actor
    from api.store import open_store
    from lineage import WardenError, get_project, session_scope
    from retrain.pipelines import PipelineSpec, create_pipeline

    project = _direct(project)
    settings = _settings()
    engine = open_store(settings)
    try:
        spec = PipelineSpec.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")))
        with session_scope(engine) as session:
            found = get_project(session=session, name=project)
            actor = break_glass_actor().in_project(found.id)
            pipeline = create_pipeline(session=session, project_id=found.id, spec=spec, actor=actor)
        typer.echo(f"pipeline {pipeline.name} defined ({pipeline.id})")
    except WardenError as error:
        raise _fail(error.detail) from None
    finally:
        engine.dispose()


@pipelines_app.command("run")
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The pipeline's name.")],
    project: ProjectOption = None,
    reason: Annotated[str, typer.Option(help="Why the run is wanted.")] = "",
    now: Annotated[
        bool,
        typer.Option(
            "--now", help="Direct mode: execute here and wait, instead of queueing for a worker."
        ),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Client mode: follow the run until it finishes.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.", min=1)] = 3600,
    as_json: JsonOption = False,
) -> None:
    """Start a run of a pipeline (or show the one already active for its model)."""
    if client_url(ctx):
        if now:
            fail("--now executes on the server (direct mode); through the API use --wait")
        connection = connect(ctx, project)
        started = connection.request(
            "POST",
            connection.project_path(f"/pipelines/{quote(name, safe='')}/runs"),
            body={"reason": reason},
        )
        if wait:
            started = connection.wait(
                connection.project_path(f"/pipeline-runs/{started['id']}"),
                done=lambda answer: answer["state"] in _FINAL,
                timeout=timeout,
            )
        emit(started, as_json=as_json, human=_print_remote_run)
        if started["state"] in ("failed", "cancelled"):
            raise typer.Exit(code=1)
        return
    from api.cli_direct import break_glass_actor
    from api.store import open_store
    from api.worker_process import runner_config
    from lineage import WardenError, get_project, session_scope
    from retrain.pipelines import get_pipeline, request_run
    from retrain.runner import execute_pipeline_run

    project = _direct(project)
    settings = _settings()
    engine = open_store(settings)
    try:
        with session_scope(engine) as session:
            found = get_project(session=session, name=project)
            pipeline = get_pipeline(session=session, project_id=found.id, name=name)
            actor = break_glass_actor().in_project(found.id)
            requested = request_run(session=session, pipeline=pipeline, actor=actor, reason=reason)
        result = requested.run
        if now and requested.created:
            result = execute_pipeline_run(
                engine=engine, run_id=result.id, config=runner_config(settings)
            )
    except WardenError as error:
        raise _fail(error.detail) from None
    finally:
        engine.dispose()
    summary = _run_summary(result) | {"created": requested.created}
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        typer.echo(f"run {summary['id']}: {summary['state']} {summary['error']}".rstrip())
    if result.state == "failed":
        raise typer.Exit(code=1)


@pipelines_app.command("runs")
def runs(ctx: typer.Context, project: ProjectOption = None, as_json: JsonOption = False) -> None:
    """List the project's pipeline runs, newest first."""
    if client_url(ctx):
        connection = connect(ctx, project)
        listed = [
            run
            for pipeline in connection.request_all(connection.project_path("/pipelines"))
            for run in connection.request_all(
                connection.project_path(f"/pipelines/{quote(pipeline['name'], safe='')}/runs")
            )
        ]
        listed.sort(key=lambda run: str(run["created_at"]), reverse=True)
        emit(listed, as_json=as_json, human=each(_print_remote_run))
        return
    from api.store import open_store
    from lineage import WardenError, get_project, session_scope
    from retrain.pipelines import list_runs

    project = _direct(project)
    engine = open_store(_settings())
    try:
        with session_scope(engine) as session:
            found = get_project(session=session, name=project)
            rows = [_run_summary(r) for r in list_runs(session=session, project_id=found.id)]
    except WardenError as error:
        raise _fail(error.detail) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(rows, sort_keys=True))
        return
    for row in rows:
        typer.echo(
            f"{row['id']}  {row['state']:<10} {row['model_name']} {row['model_version'] or ''}"
        )


@pipelines_app.command("cancel")
def cancel(
    ctx: typer.Context,
    run_id: Annotated[uuid.UUID, typer.Argument()],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a queued or running pipeline run."""
    if client_url(ctx):
        connection = connect(ctx, project)
        done = connection.request(
            "POST", connection.project_path(f"/pipeline-runs/{run_id}/cancel")
        )
        emit(done, as_json=as_json, human=_print_remote_run)
        return
    from api.cli_direct import break_glass_actor
    from api.store import open_store
    from lineage import WardenError, get_project, session_scope
    from retrain.pipelines import cancel_run

    project = _direct(project)
    engine = open_store(_settings())
    try:
        with session_scope(engine) as session:
            found = get_project(session=session, name=project)
            actor = break_glass_actor().in_project(found.id)
            done = cancel_run(session=session, project_id=found.id, run_id=run_id, actor=actor)
        typer.echo(f"run {done.id}: {done.state}")
    except WardenError as error:
        raise _fail(error.detail) from None
    finally:
        engine.dispose()


@models_app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="The deployment (slot) name.")],
    project: ProjectOption = None,
    environment: Annotated[str, typer.Option(help="The slot's environment.")] = "production",
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Put the version the live one replaced back live (direct mode: MLflow aliases only)."""
    if client_url(ctx):
        connection = connect(ctx, project)
        done = connection.request(
            "POST",
            connection.project_path(f"/deployments/{quote(deployment, safe='')}/rollback"),
            body={"environment": environment, "reason": reason},
        )
        emit(
            done,
            as_json=as_json,
            human=lambda p: typer.echo(
                f"{deployment} ({environment}) rolled back to {p['model_name']} "
                f"v{p['model_version']}; promotion {p['id']}"
            ),
        )
        return
    from api.cli_direct import break_glass_actor
    from api.store import open_store
    from lineage import WardenError, get_project, session_scope
    from retrain.deployers import AliasDeployer
    from retrain.mlflow_registry import Registry
    from retrain.promotion import rollback

    project = _direct(project)
    settings = _settings()
    registry = Registry(
        tracking_uri=settings.resolved_mlflow_uri(),
        artifact_root=settings.mlflow_artifact_root(),
    )
    engine = open_store(settings)
    try:
        with session_scope(engine) as session:
            found = get_project(session=session, name=project)
            done = rollback(
                session=session,
                project_id=found.id,
                deployment=deployment,
                environment=environment,
                actor=break_glass_actor().in_project(found.id),
                registry=registry,
                deployer=AliasDeployer(registry=registry),
                reason=reason,
            )
        typer.echo(f"{deployment} ({environment}) rolled back; promotion {done.id}")
    except WardenError as error:
        raise _fail(error.detail) from None
    finally:
        engine.dispose()


@lineage_app.command("sync-mlflow")
def sync_mlflow_command(
    project: ProjectOption = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="The MLflow server to import from (default: Warden's own MLflow)."),
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Import only these registered models.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import registered model versions, their source runs and logged inputs, idempotently."""
    from api.cli_direct import break_glass_actor
    from api.store import open_store
    from lineage import WardenError, get_project, session_scope
    from retrain.mlflow_registry import Registry
    from retrain.mlflow_sync import sync_mlflow

    project = _direct(project)
    settings = _settings()
    registry = Registry(
        tracking_uri=tracking_uri or settings.resolved_mlflow_uri(),
        artifact_root=settings.mlflow_artifact_root(),
    )
    engine = open_store(settings)
    try:
        with session_scope(engine) as session:
            found = get_project(session=session, name=project)
            report = sync_mlflow(
                session=session,
                project_id=found.id,
                registry=registry,
                actor=break_glass_actor().in_project(found.id),
                model_names=model or None,
            )
    except WardenError as error:
        raise _fail(error.detail) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                {"imported": report.imported, "skipped": report.skipped, "refused": report.refused},
                sort_keys=True,
            )
        )
        return
    typer.echo(
        f"imported {len(report.imported)}, already known {len(report.skipped)}, "
        f"refused {len(report.refused)}"
    )
    for label, why in sorted(report.refused.items()):
        typer.echo(f"  refused {label}: {why}", err=True)
