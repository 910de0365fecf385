"""Benchmark: a drift monitor run end to end, against the statistic plus reading the window once.

Run ``python -m bench.monitor_run`` (defaults: a 1,000,000-row window of 20 numeric and 5
categorical features, logged in 10,000-row partitions as inference batches are stored, against
a baseline built from 200,000 reference rows; ``--rows`` runs it small).

What is measured, side by side in one process, ``--repeat`` times (medians reported):

* **end to end**: a run is queued as the scheduler queues one, then a worker claims it; timed
  from the queueing to the worker having stored the findings (the recording transaction
  committed, findings handed to the callback) and written the report — the critical path a
  policy waits on;
* **anchor**: reading the window's partitions once (``pyarrow.parquet.read_table``) plus the
  statistic alone (:func:`monitors.drift.compute_drift` on the window already in memory);
* **page**: the background job rendering Evidently's sampled page afterwards, off the critical
  path (printed, not part of the run).

Each is timed on the wall clock and in CPU time (``time.process_time``: this process, Arrow's
threads included), whose ratio a busy machine disturbs less.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REFERENCE_ROWS = 200_000


def _store(directory: Path) -> Any:
    from api.migrate import upgrade
    from lineage import create_store_engine

    url = f"sqlite:///{directory / 'warden.db'}"
    upgrade(url)
    return create_store_engine(url)


def _deployment(engine: Any, schema: dict[str, str]) -> Any:
    from lineage.deployments import DeploymentCreate, record_deployment
    from lineage.model_versions import ModelVersionCreate, register_model_version
    from lineage.projects import create_project
    from lineage.store import session_scope

    with session_scope(engine) as session:
        project_id = create_project(session=session, name="bench").id
        register_model_version(
            session=session,
            project_id=project_id,
            name="scorer",
            spec=ModelVersionCreate(
                artifact_uri="models:/scorer/1",
                feature_schema=schema,
                external=True,
            ),
        )
        return record_deployment(
            session=session,
            project_id=project_id,
            spec=DeploymentCreate(
                name="scorer-api", environment="production", model_name="scorer", model_version="1"
            ),
        )


def _baseline(engine: Any, data_dir: Path, deployment: Any, rows: int, seed: int) -> None:
    from bench.drift import make_frame
    from lineage.models import Dataset, DatasetVersion
    from lineage.storage import LocalStore
    from lineage.store import session_scope
    from monitors.baseline.storage import BaselineCreate, create_baseline

    folder = data_dir / "datasets"
    folder.mkdir(parents=True)
    make_frame(rows, seed=seed, current=False).to_parquet(folder / "reference.parquet")
    with session_scope(engine) as session:
        dataset = Dataset(project_id=deployment.project_id, namespace="file", name="reference")
        session.add(dataset)
        session.flush()
        version = DatasetVersion(
            project_id=deployment.project_id,
            dataset_id=dataset.id,
            version="v1",
            uri="datasets/reference.parquet",
        )
        session.add(version)
        session.flush()
        create_baseline(
            session=session,
            store=LocalStore(data_dir),
            project_id=deployment.project_id,
            spec=BaselineCreate(
                deployment_id=deployment.id,
                dataset_version_id=version.id,
                label_column=None,
                prediction_column=None,
                score_column=None,
            ),
        )


def _window(
    engine: Any, data_dir: Path, deployment: Any, rows: int, chunk: int, seed: int
) -> list[Path]:
    """Store the window as the inference log stores batches: one partition and row each."""
    import pandas as pd

    from bench.drift import make_frame
    from bench.seeding import store_inference_batch
    from lineage.store import session_scope
    from lineage.tables import utcnow

    at = utcnow() - timedelta(minutes=10)
    paths: list[Path] = []
    for part, start in enumerate(range(0, rows, chunk)):
        size = min(chunk, rows - start)
        features = make_frame(size, seed=seed + 1 + part, current=True)
        features = features.astype({c: object for c in features.columns if c.startswith("cat_")})
        frame = pd.concat(
            [
                pd.DataFrame(
                    {
                        "request_id": [f"r{start + i}" for i in range(size)],
                        "time": pd.Series([at] * size, dtype="datetime64[ns, UTC]"),
                    }
                ),
                features,
                pd.DataFrame(
                    {
                        "prediction": np.zeros(size, dtype=np.int64),
                        "score": np.full(size, 0.5),
                        "probabilities": pd.Series([None] * size, dtype=object),
                    }
                ),
            ],
            axis=1,
        )
        with session_scope(engine) as session:
            path = store_inference_batch(
                session=session,
                data_dir=data_dir,
                project_id=deployment.project_id,
                deployment_id=deployment.id,
                frame=frame,
                at=at,
            )
        paths.append(path)
    return paths


def _monitor(engine: Any, deployment: Any) -> uuid.UUID:
    from lineage.store import session_scope
    from monitors.models import MonitorCreate, Schedule
    from monitors.schedules import create_monitor
    from monitors.spec import MonitorSpec

    with session_scope(engine) as session:
        return create_monitor(
            session=session,
            project_id=deployment.project_id,
            spec=MonitorCreate(
                name="drift",
                deployment_id=deployment.id,
                spec=MonitorSpec.model_validate(
                    {"kind": "drift", "thresholds": {"drift_share": 0.2}}
                ),
                schedule=Schedule(interval_seconds=3600),
                window="last:1h",
                paused=True,
            ),
        ).id


def _end_to_end(engine: Any, store: Any, monitor_id: uuid.UUID) -> dict[str, float]:
    """Queue a run, let a worker run it; return its critical-path and page times."""
    from lineage.runtime.handlers import HandlerRegistry
    from lineage.runtime.worker import Worker
    from lineage.store import session_scope
    from lineage.tables import utcnow
    from monitors.models import Monitor, RunTrigger
    from monitors.report import report_keys
    from monitors.run_jobs import get_monitor_run, queue_monitor_run, register_monitor_handlers

    routed: list[float] = []

    def on_findings(**_: Any) -> None:
        routed.append(time.perf_counter())

    worker = Worker(
        engine=engine,
        registry=register_monitor_handlers(HandlerRegistry(), store=store, on_findings=on_findings),
    )
    started, cpu = time.perf_counter(), time.process_time()
    with session_scope(engine) as session:
        monitor = session.get(Monitor, monitor_id)
        assert monitor is not None
        run = queue_monitor_run(
            session=session, monitor=monitor, scheduled_for=utcnow(), trigger=RunTrigger.MANUAL
        )
        assert run is not None
    assert worker.run_once()
    recorded, cpu = time.perf_counter(), time.process_time() - cpu
    with session_scope(engine) as session:
        view = get_monitor_run(session=session, project_id=run.project_id, run_id=run.id)
    assert view.state == "succeeded", view.error
    assert view.summary is not None
    assert view.summary["status"] == "alert", view.summary["status"]
    assert store.exists(report_keys(project_id=run.project_id, run_id=run.id)[1])
    page_started = time.perf_counter()
    assert worker.run_once()  # the background job: Evidently's page
    page = time.perf_counter() - page_started
    return {
        "end_to_end": recorded - started,
        "end_to_end_cpu": cpu,
        "to_findings": routed[0] - started,
        "page": page,
        "rows": float(view.summary["rows"]),
    }


def _anchor(paths: list[Path], baseline: Any, columns: list[str]) -> dict[str, float]:
    """Read the window's partitions once, then time the statistic alone on it in memory."""
    import pyarrow.parquet as pq

    from monitors.drift import compute_drift

    started, cpu = time.perf_counter(), time.process_time()
    table = pq.read_table(paths)
    read, read_cpu = time.perf_counter() - started, time.process_time() - cpu
    frame = table.select(columns).to_pandas()
    started, cpu = time.perf_counter(), time.process_time()
    compute_drift(baseline, frame, columns=columns)
    statistic, statistic_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"read": read, "statistic": statistic, "cpu": read_cpu + statistic_cpu}


def run(rows: int, chunk: int, repeat: int, seed: int) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    from bench.drift import make_frame
    from lineage.storage import LocalStore
    from lineage.store import session_scope
    from monitors.baseline.storage import latest_baseline, load_baseline

    schema = {
        name: "float" if name.startswith("num_") else "category"
        for name in make_frame(1, seed=seed, current=False).columns
    }
    with tempfile.TemporaryDirectory(prefix="warden-bench-") as directory:
        data_dir = Path(directory)
        engine = _store(data_dir)
        deployment = _deployment(engine, schema)
        print(f"building the baseline from {REFERENCE_ROWS:,} reference rows", flush=True)
        _baseline(engine, data_dir, deployment, REFERENCE_ROWS, seed)
        print(f"logging a {rows:,}-row window in {chunk:,}-row partitions", flush=True)
        paths = _window(engine, data_dir, deployment, rows, chunk, seed)
        monitor_id = _monitor(engine, deployment)
        store = LocalStore(data_dir)  # one per process, as the worker's
        with session_scope(engine) as session:
            baseline = load_baseline(
                store=store,
                stored=latest_baseline(session=session, deployment=deployment),
            )
        # Warm up on the whole window before measuring, so every round finds the same: imports
        # done, the files in the page cache, and the compiled count (only windows of
        # monitors.baseline.grid.COMPILED_MIN values or more reach it; warmed on two
        # partitions, the first timed anchor paid for compiling it and its ratio came out 1x).
        _anchor(paths, baseline, list(schema))
        runs: list[dict[str, float]] = []
        anchors: list[dict[str, float]] = []
        for index in range(repeat):
            anchors.append(_anchor(paths, baseline, list(schema)))
            runs.append(_end_to_end(engine, store, monitor_id))
            anchor = anchors[-1]["read"] + anchors[-1]["statistic"]
            print(
                f"run {index + 1}: end to end {runs[-1]['end_to_end']:.3f} s "
                f"(findings handed on at {runs[-1]['to_findings']:.3f} s), anchor {anchor:.3f} s "
                f"(read {anchors[-1]['read']:.3f} s + statistic {anchors[-1]['statistic']:.3f} s)"
                f", ratio {runs[-1]['end_to_end'] / anchor:.2f}x; CPU "
                f"{runs[-1]['end_to_end_cpu']:.3f} s against {anchors[-1]['cpu']:.3f} s, "
                f"{runs[-1]['end_to_end_cpu'] / anchors[-1]['cpu']:.2f}x; "
                f"Evidently's page afterwards {runs[-1]['page']:.3f} s",
                flush=True,
            )
        engine.dispose()

    def median(values: list[dict[str, float]], key: str) -> float:
        return statistics.median(value[key] for value in values)

    ratios = [
        r["end_to_end"] / (a["read"] + a["statistic"]) for r, a in zip(runs, anchors, strict=True)
    ]
    return {
        "rows": rows,
        "partition_rows": chunk,
        "columns": len(schema),
        "repeat": repeat,
        "end_to_end_seconds": round(median(runs, "end_to_end"), 3),
        "findings_handed_on_seconds": round(median(runs, "to_findings"), 3),
        "read_seconds": round(median(anchors, "read"), 3),
        "statistic_seconds": round(median(anchors, "statistic"), 3),
        "ratio_to_anchor": round(statistics.median(ratios), 2),
        "end_to_end_cpu_seconds": round(median(runs, "end_to_end_cpu"), 3),
        "anchor_cpu_seconds": round(median(anchors, "cpu"), 3),
        "cpu_ratio_to_anchor": round(
            statistics.median(
                r["end_to_end_cpu"] / a["cpu"] for r, a in zip(runs, anchors, strict=True)
            ),
            2,
        ),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "page_seconds_background": round(median(runs, "page"), 3),
        "rows_judged": int(runs[0]["rows"]),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the window")
    parser.add_argument("--chunk", type=int, default=10_000, help="rows per stored partition")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    figures = run(options.rows, options.chunk, options.repeat, options.seed)
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
