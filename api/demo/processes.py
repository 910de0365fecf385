"""The demo's store and processes: a fresh embedded store, then what ``warden up`` runs.

The API and dashboard (uvicorn), the scheduler and one worker run as threads of the demo's own
process, on a store under ``<root>/.warden`` marked as a demo store (:data:`DEMO_MARKER`), so a
second demo may wipe it and a real store is never wiped without ``--reset``.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading

import httpx

from api.demo.context import Demo
from api.demo.options import DEMO_MARKER, DemoFailed
from api.settings import Settings

__all__ = ["demo_settings", "prepare_store", "shutdown", "start_processes"]


def prepare_store(demo: Demo) -> None:
    """Make a fresh demo store, wiping an old demo store (or any, with ``--reset``)."""
    marker = demo.data_dir / DEMO_MARKER
    if demo.data_dir.exists() and any(demo.data_dir.iterdir()):
        if not marker.exists() and not demo.options.reset:
            raise DemoFailed(
                "1",
                f"{demo.data_dir} holds a Warden store that is not a demo store; "
                "run 'warden demo --reset' to wipe it, or run the demo in another directory",
            )
        shutil.rmtree(demo.data_dir)
    demo.data_dir.mkdir(parents=True)
    marker.write_text(json.dumps({"demo": True, "created_at": demo.summary.started_at}))


def demo_settings(demo: Demo) -> Settings:
    """Return the settings of the demo: its store, its port and short intervals."""
    return Settings(
        data_dir=demo.data_dir,
        database_url=f"sqlite:///{demo.data_dir / 'warden.db'}",
        mlflow_tracking_uri=f"sqlite:///{demo.data_dir / 'mlflow.db'}",
        # Pipeline steps run sandboxed and see only these folders' files (read-only).
        sandbox_read_roots=[demo.adult, demo.data_dir / "exports"],
        host=demo.options.host,
        port=demo.options.port,
        scheduler_sync_seconds=5.0,
        scheduler_heartbeat_seconds=1.0,
        worker_poll_seconds=0.5,
        worker_heartbeat_seconds=5.0,
        worker_lease_seconds=600.0,
    )


def start_processes(demo: Demo) -> None:
    """Start what ``warden up`` runs: API + dashboard, scheduler and one worker."""
    import uvicorn

    from api.app import create_app
    from api.migrate import upgrade
    from api.scheduler import Scheduler
    from api.store import open_store
    from api.worker_process import run_worker

    with socket.socket() as probe:
        if probe.connect_ex((demo.options.host, demo.options.port)) == 0:
            raise DemoFailed("1", f"port {demo.options.port} is taken; pass --port with a free one")
    settings = demo_settings(demo)
    upgrade(settings.resolved_database_url())
    demo.engine = engine = open_store(settings)
    demo.threads = [
        threading.Thread(
            target=Scheduler(engine=engine, settings=settings).run,
            args=(demo.stop,),
            name="scheduler",
        ),
        threading.Thread(target=run_worker, args=(settings, engine, demo.stop), name="worker"),
    ]
    config = uvicorn.Config(
        create_app(settings, engine=engine),
        host=demo.options.host,
        port=demo.options.port,
        log_level="warning",
    )
    demo.server = uvicorn.Server(config)
    demo.threads.append(threading.Thread(target=demo.server.run, name="api"))
    for thread in demo.threads:
        thread.start()

    def healthy() -> bool | None:
        try:
            return True if demo.api.client.get("/healthz").is_success else None
        except httpx.TransportError:
            return None

    demo.wait_for("1", f"the API on {demo.base_url}", healthy, timeout=60)
    demo.receiver.start()


def shutdown(demo: Demo) -> None:
    """Stop the server, the scheduler, the worker and the receiver; wait for them."""
    if demo.server is not None:
        demo.server.should_exit = True
    demo.stop.set()
    for thread in demo.threads:
        thread.join(timeout=120)
    demo.receiver.stop()
    if demo.llm is not None:
        demo.llm.stop()
    demo.api.close()
    if demo.engine is not None:
        demo.engine.dispose()
