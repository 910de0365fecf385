"""A live Warden for the client's tests: ``warden serve`` as a real process on a fresh store.

One server per session (starting one costs seconds); each test gets its own deployment. The
restart test kills it with SIGKILL and starts it again on the same store and data directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from governance.actors import Actor
from governance.identity import create_service_account, issue_api_key
from governance.roles import Role, grant_role
from lineage import create_store_engine
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import Deployment
from lineage.projects import create_project
from lineage.storage import LocalStore
from lineage.store import session_scope
from monitors.inferences.windows import read_window
from tests.conftest import fresh_store

REPO = Path(__file__).resolve().parents[2]
WARDEN = Path(sys.executable).with_name("warden")
PROJECT = "shop"
SCHEMA = {"amount": "float", "country": "category", "age": "integer"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LiveWarden:
    """A ``warden serve`` process, its store, a project and a key that may log inferences."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.data_dir.mkdir()
        self.database_url = database_url
        self.engine: Engine = create_store_engine(self.database_url)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        system = Actor.system()
        with session_scope(self.engine) as session:
            self.project_id = create_project(session=session, name=PROJECT).id
            service = create_service_account(session=session, actor=system, name="serving")
            grant_role(
                session=session,
                actor=system,
                project_id=self.project_id,
                principal_id=service.id,
                role=Role.DATA_SCIENTIST,
            )
            self.key = issue_api_key(
                session=session, actor=system, principal_id=service.id, label="serving"
            ).secret

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.starts += 1
        log = (self.root / f"serve-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [str(WARDEN), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.root,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "DO_NOT_TRACK": "1",
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "WARDEN_DATABASE_URL": self.database_url,
                "WARDEN_DATA_DIR": str(self.data_dir),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"warden serve exited\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"warden serve did not answer within 180s\n{self.logs()}")

    def kill(self) -> None:
        """SIGKILL the server: no graceful shutdown, requests in flight are cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Stop the server if it runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def logs(self) -> str:
        """Return every server log, for failure messages."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.root.glob("*.log")))

    def deployment(
        self, schema: dict[str, str] | None = None, context: dict[str, Any] | None = None
    ) -> Deployment:
        """Register a fresh model version (:data:`SCHEMA` unless given) and deploy it.

        ``context`` is the version's ``context_schema`` (name → ``{"role": …}``).
        """
        name = f"model-{uuid.uuid4().hex[:8]}"
        with session_scope(self.engine) as session:
            register_model_version(
                session=session,
                project_id=self.project_id,
                name=name,
                spec=ModelVersionCreate(
                    artifact_uri=f"s3://models/{name}",
                    artifact_sha256="0" * 64,
                    feature_schema=schema or SCHEMA,
                    context_schema=context or {},
                ),
            )
            return record_deployment(
                session=session,
                project_id=self.project_id,
                spec=DeploymentCreate(
                    name=name, environment="production", model_name=name, model_version="1"
                ),
            )

    def stored(self, deployment: Deployment) -> pd.DataFrame:
        """Return every inference Warden stored for ``deployment`` (labels joined)."""
        with session_scope(self.engine) as session:
            frame, _ = read_window(
                session=session,
                store=LocalStore(self.data_dir),
                deployment=deployment,
                start=None,
                end=None,
            )
        return frame


@pytest.fixture(scope="session")
def live_warden(
    template_store: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveWarden]:
    """Return the session's running Warden (started again if a test killed it)."""
    root = tmp_path_factory.mktemp("live-warden")
    with fresh_store(template_store, root) as database_url:
        warden = LiveWarden(root, database_url)
        try:
            yield warden
        finally:
            warden.stop()
            warden.engine.dispose()


@pytest.fixture
def warden(live_warden: LiveWarden) -> LiveWarden:
    """Return the live Warden, running."""
    if live_warden.process is None or live_warden.process.poll() is not None:
        live_warden.start()
    return live_warden


def closed_port_url() -> str:
    """Return a URL where nothing listens (Warden down)."""
    return f"http://127.0.0.1:{_free_port()}"
