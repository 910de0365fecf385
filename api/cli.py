"""The ``warden`` command line: migrate, serve, up, and one sub-command group per room.

Two modes. **Client mode** (``--url``, ``WARDEN_URL`` or the config file; :mod:`api.cli_client`):
each command is a REST call as the principal whose API key it sends, so RBAC, separation of
duties and audit are the server's. **Direct mode** (no URL; :mod:`api.cli_direct`): bootstrap,
migrations, server processes and break-glass administration on the server itself, audited as
``break-glass:<OS user>``. Only typer is imported at start-up; everything else inside the
command that needs it, so ``warden --help`` stays fast (``bench/cli_startup.py``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import uvicorn

    from api.settings import Settings

from api.cli_admin import app as admin_app
from api.cli_audit import app as audit_app
from api.cli_client import ClientOptions, JsonOption, connect, emit
from api.cli_governance import alert_rules_app, approvals_app, policies_app
from api.cli_monitors import app as monitor_app
from api.cli_monitors import baselines_app, monitors_app
from api.cli_reports import app as report_app
from api.cli_retrain import lineage_app, models_app, pipelines_app

__all__ = ["app", "main"]

app = typer.Typer(
    rich_markup_mode=None,
    name="warden",
    help="Warden: governance and monitoring for ML models.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(admin_app, name="admin")
app.add_typer(alert_rules_app, name="alert-rules")
app.add_typer(approvals_app, name="approvals")
app.add_typer(audit_app, name="audit")
app.add_typer(baselines_app, name="baselines")
app.add_typer(lineage_app, name="lineage")
app.add_typer(models_app, name="models")
app.add_typer(monitor_app, name="monitor", help="Run a monitor in this process (break-glass).")
app.add_typer(monitors_app, name="monitors")
app.add_typer(pipelines_app, name="pipelines")
app.add_typer(policies_app, name="policies")
app.add_typer(report_app, name="report")


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="WARDEN_URL",
            help="Warden's URL: client mode, every command a REST call as your API key's "
            "principal (WARDEN_API_KEY or the config file).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="WARDEN_CONFIG",
            help="Config file (TOML: url, api_key, project; default "
            "~/.config/warden/config.toml, 0600 when it holds a key).",
        ),
    ] = None,
) -> None:
    """Warden: governance and monitoring for ML models."""
    ctx.obj = ClientOptions(url=url, config=config)


@app.command()
def whoami(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show who the API key signs in as, and their roles per project (client mode)."""
    answer = connect(ctx).request("GET", "/api/v1/principals/me")
    emit(answer, as_json=as_json, human=lambda me: typer.echo(_describe(me)))


def _describe(me: dict[str, Any]) -> str:
    who = me["principal"]
    roles = ", ".join(f"{r['role']} in {r['project']}" for r in me["roles"]) or "no roles"
    return f"{who['name']} ({who['kind']}{', admin' if who['is_admin'] else ''}): {roles}"


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _settings() -> Settings:
    from api.settings import Settings

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


@app.command()
def migrate() -> None:
    """Create or upgrade the store's schema to the latest revision."""
    from api.migrate import upgrade

    settings = _settings()
    upgrade(settings.resolved_database_url())
    typer.echo(f"store migrated: {settings.resolved_database_url()}")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default WARDEN_HOST)."),
    port: int | None = typer.Option(None, help="Port to bind (default WARDEN_PORT)."),
    workers: int | None = typer.Option(
        None,
        min=1,
        max=64,
        help="API processes sharing the port (default WARDEN_API_WORKERS, 1): one process "
        "uses one core at most.",
    ),
) -> None:
    """Run the API and dashboard only (scale out with several processes or replicas)."""
    from api.serve_process import collector_paused

    with collector_paused():
        import uvicorn

        settings = _settings()
        processes = workers or settings.api_workers
        if processes == 1:
            from api.app import create_app
            from api.memory import keep_freed_memory

            keep_freed_memory()  # an API process only (api.memory)
            application: Any = create_app(settings)
        else:  # each process builds its own app (and engine) from the same environment
            application = "api.serve_process:application"
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        workers=processes,
        factory=processes > 1,
    )


@app.command()
def up(
    host: str | None = typer.Option(None, help="Interface to bind (default WARDEN_HOST)."),
    port: int | None = typer.Option(None, help="Port to bind (default WARDEN_PORT)."),
) -> None:
    """Run everything in one process on the embedded store: API, scheduler and one worker."""
    from api.serve_process import collector_paused

    with collector_paused():
        import uvicorn

        from api.app import create_app
        from api.migrate import upgrade
        from api.scheduler import Scheduler
        from api.store import open_store
        from api.worker_process import run_worker, stop_on_signals

        settings = _settings()
        upgrade(settings.resolved_database_url())
        engine = open_store(settings)
        application = create_app(settings, engine=engine)
    server = uvicorn.Server(
        uvicorn.Config(application, host=host or settings.host, port=port or settings.port)
    )
    # uvicorn restores these handlers and re-raises the signal it caught once it has shut down,
    # so the signal ends up setting ``stop`` and the scheduler and worker finish cleanly.
    stop = stop_on_signals()
    threads = [
        threading.Thread(target=Scheduler(engine=engine, settings=settings).run, args=(stop,)),
        threading.Thread(target=run_worker, args=(settings, engine, stop)),
    ]
    starter = threading.Thread(target=_start_once_serving, args=(server, threads, stop))
    starter.start()
    typer.echo(f"Warden is up on http://{host or settings.host}:{port or settings.port}")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        starter.join()
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join()
        engine.dispose()
    if not server.started:
        raise typer.Exit(3)  # uvicorn's exit status when it could not start (port taken, ...)


def _start_once_serving(
    server: uvicorn.Server, threads: list[threading.Thread], stop: threading.Event
) -> None:
    """Start the scheduler and worker once the server listens, unless stopped before.

    A store with due monitors or queued jobs would otherwise have them importing their
    libraries and computing while the API is still starting, on the same interpreter.
    """
    while not server.started:
        if stop.wait(0.05):
            return
    for thread in threads:
        thread.start()


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the demo server on 127.0.0.1.")] = 8000,
    reset: Annotated[
        bool, typer.Option("--reset", help="Wipe an existing non-demo ./.warden store.")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep serving the dashboard afterwards.")
    ] = True,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write a machine-readable summary here.")
    ] = None,
    llm_base_url: Annotated[
        str | None,
        typer.Option(
            help="An OpenAI-compatible server for the LLM loop (default: a local stand-in)."
        ),
    ] = None,
    llm_model: Annotated[
        str, typer.Option(help="The model to ask --llm-base-url for.")
    ] = "stand-in",
    llm_api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding that server's API key.")
    ] = None,
) -> None:
    """Run Warden's whole loop on UCI Adult, then an LLM loop on Banking77, in ./.warden."""
    from api.demo import DemoOptions, run

    options = DemoOptions(
        root=Path.cwd(),
        port=port,
        reset=reset,
        serve=serve,
        json_path=json_path,
        llm_base_url=llm_base_url,
        llm_model=llm_model,
        llm_api_key_env=llm_api_key_env,
    )
    raise typer.Exit(run(options))


@app.command()
def scheduler() -> None:
    """Run the scheduler: the lease holder queues due monitor slots, others stand by."""
    from api.scheduler import Scheduler
    from api.store import open_store
    from api.worker_process import stop_on_signals

    settings = _settings()
    _log_to_stderr()
    engine = open_store(settings)
    try:
        Scheduler(engine=engine, settings=settings).run(stop_on_signals())
    finally:
        engine.dispose()


@app.command()
def worker() -> None:
    """Run a worker: claim queued jobs (monitor runs, pipeline runs, reports) and run them."""
    from api.store import open_store
    from api.worker_process import run_worker, stop_on_signals

    settings = _settings()
    _log_to_stderr()
    engine = open_store(settings)
    try:
        run_worker(settings, engine, stop_on_signals())
    finally:
        engine.dispose()


def main() -> None:
    """Run the ``warden`` console command."""
    app()
