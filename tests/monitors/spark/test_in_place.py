"""A scheduled run on Spark judges its window where the objects lie: the worker reads no row.

The window: 1,500 labelled Adult rows of people over 45 (a real shift) in one batch, plus a batch
of 300 unlabelled rows of which half were answered two days ago, outside the run's 24 hours (so
Spark's tasks must filter by time and the label join must leave rows without a label). Drift,
quality and performance run through the worker with the objects in the data directory,
prediction drift and fairness with them in an S3 bucket (moto's server), each on the local
engine and on Spark: the findings are the same.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from api.settings import Settings
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.storage import ObjectStore, open_store
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.drift_page_jobs import drift_page_job
from monitors.engine import SummaryEngine
from monitors.execute import report_keys
from monitors.findings import RunSummary, Status
from monitors.inferences import InferenceRecord, log_inferences, read_window
from monitors.models import MonitorRunPublic
from monitors.run_jobs import get_monitor_run, register_monitor_handlers
from tests.adult import FEATURES, adult_model, adult_test
from tests.monitors.serving import records
from tests.monitors.spark.same import same_findings
from tests.monitors.test_execute import Setup
from tests.s3 import create_bucket, moto_server

pytestmark = pytest.mark.slow

DRIFT: dict[str, Any] = {"kind": "drift", "thresholds": {"drift_share": 0.25}}
PREDICTION_DRIFT: dict[str, Any] = {"kind": "prediction_drift"}
QUALITY: dict[str, Any] = {"kind": "quality"}
PERFORMANCE: dict[str, Any] = {"kind": "performance"}
FAIRNESS: dict[str, Any] = {
    "kind": "fairness",
    "sensitive_features": ["sex", "segment"],  # segment: logged as context.segment
    "options": {"bootstrap_samples": 50},
}
SPECS = {"data directory": [DRIFT, QUALITY, PERFORMANCE], "bucket": [PREDICTION_DRIFT, FAIRNESS]}
"""What each store runs (each kind once: Spark jobs cost seconds on a shared machine)."""


@pytest.fixture(params=["data directory", "bucket"])
def store(request: pytest.FixtureRequest, spark: Any, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "data directory":
        yield open_store(None, data_dir=tmp_path / "data")
        return
    with moto_server() as endpoint:
        create_bucket(endpoint, "warden-windows")
        yield open_store("s3://warden-windows/prod", data_dir=tmp_path, endpoint_url=endpoint)


def _window(engine: Engine, settings: Settings, store: ObjectStore) -> Setup:
    test = adult_test()
    segment = {"segment": "workclass"}  # a context value, not a model input
    setup = Setup(
        engine, settings, test[test["age"] > 45].sample(1500, random_state=0), store, segment
    )
    extra = test[test["age"] <= 45].sample(300, random_state=1)
    predicted = adult_model().predict(extra[FEATURES])
    now, before = utcnow(), utcnow() - timedelta(days=2)
    batch = [
        *records(
            extra[:150], predictions=predicted[:150], prefix="old", time=before, context=segment
        ),
        *records(extra[150:], predictions=predicted[150:], prefix="new", time=now, context=segment),
    ]
    with session_scope(engine) as session:
        log_inferences(
            session=session,
            store=store,
            deployment=setup.deployment,
            records=[InferenceRecord.model_validate(r) for r in batch],
        )
    return setup


def _run(
    setup: Setup, spec: dict[str, Any], rule: SummaryEngine
) -> tuple[RunSummary, int, MonitorRunPublic]:
    """Run one monitor through a worker; return its summary, the worker's peak allocation."""
    run = setup.queue(spec)
    registry = register_monitor_handlers(
        HandlerRegistry(), store=setup.store, loader=setup.loader, summary_engine=rule
    )
    tracemalloc.start()
    try:
        assert Worker(engine=setup.engine, registry=registry).run_once()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with session_scope(setup.engine) as session:
        done = get_monitor_run(session=session, project_id=run.project_id, run_id=run.id)
    assert done.state == "succeeded", done.error
    assert done.summary is not None
    summary = RunSummary.from_json(done.summary)
    assert summary is not None
    return summary, peak, done


def test_spark_judges_the_window_in_place_with_the_local_findings(
    spark: Any,
    engine: Engine,
    settings: Settings,
    store: ObjectStore,
    request: pytest.FixtureRequest,
) -> None:
    """Same findings on both engines; on Spark the worker never holds the window.

    The observable: the worker's peak traced allocation (Python objects and numpy buffers,
    what a pandas frame is made of) during the run. Reading the window costs at least the
    window's size as a frame; judged in place, the whole run stays below it.
    """
    setup = _window(engine, settings, store)
    with session_scope(engine) as session:
        window, _ = read_window(
            session=session, store=store, deployment=setup.deployment,
            start=utcnow() - timedelta(days=1), end=utcnow(),
        )  # fmt: skip
    assert len(window) == 1650  # the old half of the unlabelled batch is outside
    size = int(window.memory_usage(deep=True).sum())
    del window
    where = request.node.callspec.params["store"]
    on_spark = (
        # A deployment named for Spark goes there whatever its size.
        SummaryEngine(mode="auto", deployments=frozenset({setup.deployment.name}))
        if where == "data directory"
        # Chosen before reading: the batches hold 1,800 rows (the window, 1,650).
        else SummaryEngine(mode="auto", row_threshold=1800)
    )
    tracker = spark.sparkContext.statusTracker()
    for spec in SPECS[where]:
        jobs = len(tracker.getJobIdsForGroup())
        local, local_peak, _ = _run(setup, spec, SummaryEngine())
        assert len(tracker.getJobIdsForGroup()) == jobs
        there, peak, run = _run(setup, spec, on_spark)
        assert len(tracker.getJobIdsForGroup()) > jobs
        same_findings(list(local.findings), list(there.findings))
        assert there.rows == local.rows == (1500 if spec in (PERFORMANCE, FAIRNESS) else 1650)
        if spec is DRIFT:
            assert any(f.status == Status.ALERT for f in there.findings)
            json_key, _ = report_keys(project_id=run.project_id, run_id=run.id)
            assert json.loads(store.get(json_key))["links"]  # the page's sample was kept
            with session_scope(engine) as session:
                assert drift_page_job(session=session, project_id=run.project_id, run_id=run.id)
        if spec is FAIRNESS:  # the context column is judged under its own name on Spark too
            assert any("segment" in f.scope for f in there.findings), there.findings
        if spec in (PERFORMANCE, FAIRNESS):  # the others load the baseline's reference sample
            assert peak < size <= local_peak
