from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.migrate import downgrade
from api.settings import Settings
from lineage import create_store_engine
from lineage.runtime import HandlerRegistry, Worker


def test_healthz_answers_without_credentials(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_a_migrated_store_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["migrations"] == "at head"
    assert response.json()["artifacts"] == "ok"


def test_readyz_reports_worker_liveness_without_failing_on_it(
    client: TestClient, engine: Engine
) -> None:
    before = client.get("/readyz")
    assert before.status_code == 200
    assert before.json()["workers"] == {"alive": False, "last_heartbeat": None}
    assert not Worker(engine=engine, registry=HandlerRegistry({"work": lambda _c: None})).run_once()
    workers = client.get("/readyz").json()["workers"]
    assert workers["alive"] is True
    assert workers["last_heartbeat"] is not None


def test_readyz_reports_a_store_behind_its_migrations(settings: Settings) -> None:
    url = settings.resolved_database_url()
    downgrade(url, "base")
    engine = create_store_engine(url)
    try:
        with TestClient(create_app(settings, engine=engine)) as client:
            response = client.get("/readyz")
    finally:
        engine.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "warden migrate" in response.json()["detail"]


def test_readyz_reports_an_artifact_store_it_cannot_write(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    unusable = settings.model_copy(update={"artifact_url": f"file://{blocker}/artifacts"})
    with TestClient(create_app(unusable, engine=engine)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "WARDEN_ARTIFACT_URL" in response.json()["detail"]


def test_unknown_route_is_a_problem_not_a_page(client: TestClient) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
