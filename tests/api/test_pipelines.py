from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.settings import Settings
from governance.audit import AuditEntry
from governance.roles import Role
from lineage.store import session_scope
from retrain.pipelines import PipelineRun
from tests.conftest import Issued

ADULT_TRAIN = Path(__file__).resolve().parents[2] / "data" / "adult" / "adult.data.gz"
BASE = "/api/v1/projects/acme"


def _spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "income-train",
        "model_name": "income",
        "steps": [{"name": "train", "entrypoint": "api.demo.adult:train"}],
        "parameters": {"train_path": str(ADULT_TRAIN), "max_rows": 3000, "max_iter": 30},
        "time_limit_seconds": 300,
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def scientist(make_principal: Callable[..., Issued]) -> Issued:
    return make_principal(role=Role.DATA_SCIENTIST)


@pytest.fixture
def viewer(make_principal: Callable[..., Issued]) -> Issued:
    return make_principal(role=Role.VIEWER)


def test_define_list_and_read_a_pipeline(client: TestClient, scientist: Issued) -> None:
    created = client.post(f"{BASE}/pipelines", json=_spec(), headers=scientist.headers)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["steps"][0]["entrypoint"] == "api.demo.adult:train"
    listed = client.get(f"{BASE}/pipelines", headers=scientist.headers).json()
    assert [p["name"] for p in listed] == ["income-train"]
    again = client.post(
        f"{BASE}/pipelines", json=_spec(time_limit_seconds=60), headers=scientist.headers
    )
    assert again.status_code == 409
    assert client.get(f"{BASE}/pipelines", headers=scientist.headers).json() == listed


def test_a_bad_definition_names_the_field_and_stores_nothing(
    client: TestClient, scientist: Issued, engine: Engine
) -> None:
    bad = _spec(steps=[{"name": "train", "entrypoint": "api.demo.adult:train", "command": ["x"]}])
    answer = client.post(f"{BASE}/pipelines", json=bad, headers=scientist.headers)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"].startswith("steps.0")
    extra = client.post(f"{BASE}/pipelines", json=_spec(owner="me"), headers=scientist.headers)
    assert extra.status_code == 422
    assert extra.json()["field"] == "owner"
    readerless = _spec(evaluation={"holdout_uri": "holdout.csv", "target": "income"})
    no_reader = client.post(f"{BASE}/pipelines", json=readerless, headers=scientist.headers)
    assert no_reader.status_code == 422  # only the team knows its holdout's format
    assert no_reader.json()["field"] == "evaluation.reader"
    assert client.get(f"{BASE}/pipelines", headers=scientist.headers).json() == []


def test_viewers_may_read_but_not_define_or_run(
    client: TestClient, scientist: Issued, viewer: Issued
) -> None:
    client.post(f"{BASE}/pipelines", json=_spec(), headers=scientist.headers)
    before = client.get(f"{BASE}/pipelines", headers=viewer.headers).json()
    theirs = _spec(name="viewer-train")
    assert client.post(f"{BASE}/pipelines", json=theirs, headers=viewer.headers).status_code == 403
    started = client.post(f"{BASE}/pipelines/income-train/runs", json={}, headers=viewer.headers)
    assert started.status_code == 403
    assert client.get(f"{BASE}/pipelines", headers=viewer.headers).json() == before
    runs = client.get(f"{BASE}/pipelines/income-train/runs", headers=viewer.headers)
    assert runs.json() == []
    assert client.get(f"{BASE}/pipelines", headers=viewer.headers).status_code == 200
    assert client.get(f"{BASE}/pipelines").status_code == 401


def test_a_storm_of_run_requests_yields_one_run_and_cancel_ends_it(
    client: TestClient, scientist: Issued, engine: Engine
) -> None:
    client.post(f"{BASE}/pipelines", json=_spec(), headers=scientist.headers)
    url = f"{BASE}/pipelines/income-train/runs"
    answers = [
        client.post(url, json={"reason": "drift"}, headers=scientist.headers) for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200]
    assert len({a.json()["id"] for a in answers}) == 1
    run_id = answers[0].json()["id"]
    assert answers[0].json()["state"] == "queued"

    cancelled = client.post(f"{BASE}/pipeline-runs/{run_id}/cancel", headers=scientist.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = client.post(f"{BASE}/pipeline-runs/{run_id}/cancel", headers=scientist.headers)
    assert again.status_code == 409
    assert client.post(url, json={}, headers=scientist.headers).status_code == 201
    runs = client.get(url, headers=scientist.headers).json()
    assert [r["state"] for r in runs] == ["queued", "cancelled"]
    with session_scope(engine) as session:
        actions = session.exec(select(AuditEntry.action)).all()
    assert actions.count("pipeline_run.request") == 2
    assert "pipeline_run.cancel" in actions


def test_undeclared_parameters_are_refused(client: TestClient, scientist: Issued) -> None:
    client.post(f"{BASE}/pipelines", json=_spec(), headers=scientist.headers)
    answer = client.post(
        f"{BASE}/pipelines/income-train/runs",
        json={"parameters": {"epochs": 3}},
        headers=scientist.headers,
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "parameters"
    runs = client.get(f"{BASE}/pipelines/income-train/runs", headers=scientist.headers)
    assert runs.json() == []


def test_runs_of_another_project_are_not_found(
    client: TestClient,
    scientist: Issued,
    make_principal: Callable[..., Issued],
) -> None:
    client.post(f"{BASE}/pipelines", json=_spec(), headers=scientist.headers)
    run = client.post(f"{BASE}/pipelines/income-train/runs", json={}, headers=scientist.headers)
    other = make_principal(role=Role.DATA_SCIENTIST, project="other")
    stolen = client.get(
        f"/api/v1/projects/other/pipeline-runs/{run.json()['id']}", headers=other.headers
    )
    assert stolen.status_code == 404
    cancel = client.post(
        f"/api/v1/projects/other/pipeline-runs/{run.json()['id']}/cancel", headers=other.headers
    )
    assert cancel.status_code == 404
    mine = client.get(f"{BASE}/pipeline-runs/{run.json()['id']}", headers=scientist.headers)
    assert mine.json()["state"] == "queued"


def test_the_run_log_is_served_from_the_worker_capture(
    client: TestClient, scientist: Issued, settings: Settings, engine: Engine
) -> None:
    from api.worker_process import runner_config
    from retrain.runner import execute_pipeline_run

    echo = [sys.executable, "-c", "print('hello from the step')"]
    spec = _spec(steps=[{"name": "echo", "command": echo}], parameters={})
    client.post(f"{BASE}/pipelines", json=spec, headers=scientist.headers)
    run_id = client.post(
        f"{BASE}/pipelines/income-train/runs", json={}, headers=scientist.headers
    ).json()["id"]
    with session_scope(engine) as session:
        queued = session.exec(select(PipelineRun)).one()
    config = runner_config(settings)
    execute_pipeline_run(engine=engine, run_id=queued.id, config=config)

    log = client.get(f"{BASE}/pipeline-runs/{run_id}/log", headers=scientist.headers)
    assert log.status_code == 200
    assert "hello from the step" in log.text
    run = client.get(f"{BASE}/pipeline-runs/{run_id}", headers=scientist.headers).json()
    assert run["state"] == "failed"
    assert "no step saved a model" in run["error"]


def test_the_worker_executes_queued_pipeline_runs(
    client: TestClient, scientist: Issued, settings: Settings, engine: Engine
) -> None:
    from api.worker_process import build_worker
    from lineage.runtime.queue import RuntimeJob

    script = "import time; time.sleep(0.2); print('step ran')"
    spec = _spec(steps=[{"name": "work", "command": [sys.executable, "-c", script]}], parameters={})
    client.post(f"{BASE}/pipelines", json=spec, headers=scientist.headers)
    run_id = client.post(
        f"{BASE}/pipelines/income-train/runs", json={}, headers=scientist.headers
    ).json()["id"]

    assert build_worker(settings, engine).run_once()

    run = client.get(f"{BASE}/pipeline-runs/{run_id}", headers=scientist.headers).json()
    assert run["state"] == "failed"
    assert "step ran" in run["log_tail"]
    with session_scope(engine) as session:
        job = session.exec(select(RuntimeJob)).one()
    assert job.state == "succeeded"
    assert job.result == {"run_id": run_id, "state": "failed", "model_version": None}
