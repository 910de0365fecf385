"""``warden monitor run``: one run now, in-process, recorded like any other, findings printed."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from api.cli import app
from api.settings import Settings
from lineage.projects import Project
from lineage.storage import LocalStore
from lineage.store import session_scope
from monitors.baseline.storage import BaselineCreate, create_baseline
from monitors.inferences import InferenceRecord, log_inferences
from monitors.models import MonitorCreate, MonitorRun, Schedule
from monitors.run_jobs import read_runs
from monitors.schedules import create_monitor
from monitors.spec import MonitorSpec
from tests.adult import FEATURES, adult_test, adult_train
from tests.monitors.serving import adult_deployment, dataset_version, records


@pytest.fixture
def warden(settings: Settings) -> CliRunner:
    return CliRunner(
        env={
            "WARDEN_DATABASE_URL": settings.resolved_database_url(),
            "WARDEN_DATA_DIR": str(settings.data_dir),
            "WARDEN_MLFLOW_TRACKING_URI": settings.resolved_mlflow_uri(),
        }
    )


@pytest.fixture
def monitored(engine: Engine, settings: Settings, make_project: Callable[[str], Project]) -> str:
    """A quality monitor on a deployment with a baseline and 300 logged inferences."""
    deployment = adult_deployment(engine, project_id=make_project("acme").id)
    (settings.data_dir / "datasets").mkdir()
    adult_train().iloc[:2000][FEATURES].to_csv(
        settings.data_dir / "datasets" / "t.csv", index=False
    )
    version = dataset_version(engine, deployment.project_id, "datasets/t.csv")
    batch = records(adult_test().iloc[:300])
    for record in batch[:30]:
        record["features"]["workclass"] = "Astronaut"
    with session_scope(engine) as session:
        create_baseline(
            session=session,
            store=LocalStore(settings.data_dir),
            project_id=deployment.project_id,
            spec=BaselineCreate(deployment_id=deployment.id, dataset_version_id=version),
        )
        log_inferences(
            session=session,
            store=LocalStore(settings.data_dir),
            deployment=deployment,
            records=[InferenceRecord.model_validate(r) for r in batch],
        )
        create_monitor(
            session=session,
            project_id=deployment.project_id,
            spec=MonitorCreate(
                name="quality",
                deployment_id=deployment.id,
                spec=MonitorSpec.model_validate({"kind": "quality"}),
                schedule=Schedule(interval_seconds=3600),
                paused=True,
            ),
        )
    return "quality"


def test_a_monitor_runs_now_and_prints_its_findings(
    warden: CliRunner, engine: Engine, monitored: str
) -> None:
    result = warden.invoke(app, ["monitor", "run", "acme", monitored])
    assert result.exit_code == 0, result.output
    assert re.search(r"^run \S+: (ok|warn|alert) \(300 rows\)$", result.stdout, re.M)
    assert re.search(r"^  (ok|warn|alert) +unseen_share ", result.stdout, re.M)
    assert "column:workclass" in result.stdout
    assert "report:" in result.stdout

    as_json = warden.invoke(app, ["monitor", "run", "acme", monitored, "--json"])
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.stdout)
    assert summary["rows"] == 300
    unseen = next(
        f
        for f in summary["findings"]
        if f["metric"] == "unseen_share" and f["scope"] == "column:workclass"
    )
    assert unseen["value"] == pytest.approx(30 / 300)
    with session_scope(engine) as session:
        monitor_ids = session.exec(select(MonitorRun.monitor_id)).all()
        runs = read_runs(session=session, monitor_ids=monitor_ids)
    assert [r.state for r in runs] == ["succeeded", "succeeded"]
    assert all(r.trigger == "manual" and r.summary is not None for r in runs)


def test_an_unknown_monitor_is_reported(warden: CliRunner, monitored: str) -> None:
    result = warden.invoke(app, ["monitor", "run", "acme", "nope"])
    assert result.exit_code == 2
    assert "no monitor 'nope'" in result.output
