"""A scheduled drift run on a deployment named for Spark gives the local run's findings."""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from api.settings import Settings
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore
from lineage.store import session_scope
from monitors.engine import SummaryEngine
from monitors.run_jobs import get_monitor_run, register_monitor_handlers
from tests.adult import adult_test
from tests.monitors.test_execute import Setup


def _run(setup: Setup, rule: SummaryEngine) -> list[dict[str, Any]]:
    run = setup.queue({"kind": "drift", "thresholds": {"drift_share": 0.25}})
    registry = register_monitor_handlers(
        HandlerRegistry(),
        store=LocalStore(setup.data_dir),
        loader=setup.loader,
        summary_engine=rule,
    )
    assert Worker(engine=setup.engine, registry=registry).run_once()
    with session_scope(setup.engine) as session:
        done = get_monitor_run(session=session, project_id=run.project_id, run_id=run.id)
    assert done.state == "succeeded", done.error
    assert done.summary is not None
    findings: list[dict[str, Any]] = done.summary["findings"]
    return findings


@pytest.mark.slow
def test_a_deployment_named_for_spark_runs_on_spark_with_the_same_findings(
    spark: Any, engine: Engine, settings: Settings
) -> None:
    test = adult_test()
    setup = Setup(engine, settings, test[test["age"] > 45].sample(1500, random_state=0))
    tracker = spark.sparkContext.statusTracker()
    jobs = len(tracker.getJobIdsForGroup())
    local = _run(setup, SummaryEngine())
    assert len(tracker.getJobIdsForGroup()) == jobs
    name = setup.deployment.name
    on_spark = _run(setup, SummaryEngine(mode="auto", deployments=frozenset({name})))
    assert len(tracker.getJobIdsForGroup()) > jobs
    assert [(f["scope"], f["metric"], f["status"]) for f in local] == [
        (f["scope"], f["metric"], f["status"]) for f in on_spark
    ]
    for left, right in zip(local, on_spark, strict=True):
        if isinstance(left["value"], float):
            assert math.isclose(left["value"], right["value"], rel_tol=1e-9)
    assert any(f["status"] == "alert" for f in on_spark)
