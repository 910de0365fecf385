"""The ``warden`` command line: migrate, serve, up, and one sub-command group per room.

Commands build :class:`Settings` from the environment (``WARDEN_*``) and pass them down; heavy
libraries are imported inside the commands that need them so ``warden --help`` stays fast.
"""

from __future__ import annotations

import typer

from api.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="warden",
    help="Warden: governance and monitoring for ML models.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
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
) -> None:
    """Run the API and dashboard only (scale out with several replicas)."""
    import uvicorn

    from api.app import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


@app.command()
def up(
    host: str | None = typer.Option(None, help="Interface to bind (default WARDEN_HOST)."),
    port: int | None = typer.Option(None, help="Port to bind (default WARDEN_PORT)."),
) -> None:
    """Run everything in one process on the embedded store: migrate, then serve."""
    import uvicorn

    from api.app import create_app
    from api.migrate import upgrade

    settings = _settings()
    upgrade(settings.resolved_database_url())
    typer.echo(f"Warden is up on http://{host or settings.host}:{port or settings.port}")
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


def main() -> None:
    """Run the ``warden`` console command."""
    app()
