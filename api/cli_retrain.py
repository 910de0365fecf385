"""``warden pipelines …``, ``warden models …`` and ``warden lineage sync-mlflow``.

With ``--url`` (or ``WARDEN_URL``) each command is a REST call as the signed-in principal
(:mod:`api.cli_client`). Without one they act on the store directly, as the operator who holds
its credentials, audited as ``break-glass:<OS user>`` (:mod:`api.cli_direct`); going-live rules
still apply. ``lineage sync-mlflow`` is an import (a migration), direct only. In direct mode
``warden pipelines run --now`` executes the run in this process (what the worker would do).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

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

ProjectOption = Annotated[str, typer.Option("--project", "-p", help="The project's name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _settings() -> Settings:
    from api.settings import Settings

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


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
    project: ProjectOption,
    file: Annotated[Path, typer.Option("--file", "-f", help="A pipeline spec, YAML or JSON.")],
) -> None:
    """Register a pipeline from a spec file (the body of ``POST …/pipelines``)."""
    import yaml

    from api.cli_direct import break_glass_actor
    from api.store import open_store
    from lineage import WardenError, get_project, session_scope
    from retrain.pipelines import PipelineSpec, create_pipeline

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
    project: ProjectOption,
    name: Annotated[str, typer.Argument(help="The pipeline's name.")],
    reason: Annotated[str, typer.Option(help="Why the run is wanted.")] = "",
    now: Annotated[
        bool, typer.Option("--now", help="Execute here and wait, instead of queueing for a worker.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Start a run of a pipeline (or show the one already active for its model)."""
    from api.cli_direct import break_glass_actor
    from api.store import open_store
    from api.worker_process import runner_config
    from lineage import WardenError, get_project, session_scope
    from retrain.pipelines import get_pipeline, request_run
    from retrain.runner import execute_pipeline_run

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
def runs(project: ProjectOption, as_json: JsonOption = False) -> None:
    """List the project's pipeline runs, newest first."""
    from api.store import open_store
    from lineage import WardenError, get_project, session_scope
    from retrain.pipelines import list_runs

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
def cancel(project: ProjectOption, run_id: Annotated[uuid.UUID, typer.Argument()]) -> None:
    """Cancel a queued or running pipeline run."""
    from api.cli_direct import break_glass_actor
    from api.store import open_store
    from lineage import WardenError, get_project, session_scope
    from retrain.pipelines import cancel_run

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
    project: ProjectOption,
    deployment: Annotated[str, typer.Argument(help="The deployment (slot) name.")],
    environment: Annotated[str, typer.Option(help="The slot's environment.")] = "production",
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
) -> None:
    """Put the version the live one replaced back live (alias-only; the API also warms serving)."""
    from api.cli_direct import break_glass_actor
    from api.store import open_store
    from lineage import WardenError, get_project, session_scope
    from retrain.deployers import AliasDeployer
    from retrain.mlflow_registry import Registry
    from retrain.promotion import rollback

    settings = _settings()
    registry = Registry(
        tracking_uri=settings.resolved_mlflow_uri(),
        artifact_root=settings.data_dir / "mlflow-artifacts",
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
    project: ProjectOption,
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

    settings = _settings()
    registry = Registry(
        tracking_uri=tracking_uri or settings.resolved_mlflow_uri(),
        artifact_root=settings.data_dir / "mlflow-artifacts",
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
