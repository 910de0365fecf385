"""Benchmark: does one worker keep up with many monitors scheduled every minute?

Run ``python -m bench.many_monitors`` (defaults: 200 drift monitors on 20 deployments, each
judging a small window of 500 rows by 25 columns against a 2,000-row baseline, all on the cron
line ``* * * * *`` so that every slot of a minute falls due at the same instant, for 3 minutes).
``--every N`` (N < 60) uses an N-second interval instead of the cron line: CI's smoke test runs
a few monitors for a few seconds that way.

One ``warden scheduler`` and one ``warden worker`` run as their own processes on a fresh
embedded store (SQLite), as in a split deployment. Afterwards the runs are read back from the
store:

* **runs per minute**: monitor runs that finished during the measured period, per minute;
* **lag**: for each slot, from the slot's time to its run having finished; the slowest slot's
  lag and the 95th percentile are reported. One worker keeps up when every slot due before the
  end finished and the slowest lag stays under the period;
* **anchor**: the same monitors' drift statistics computed in one process with nothing around
  them (:func:`monitors.drift.compute_drift` on each window already in memory), as seconds of
  work per period: what a worker could not do faster however lean the rest of the path.

Evidently's detailed pages are background jobs (claimed only when no run waits); how many are
still queued at the end is printed. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

WINDOW_ROWS = 500
REFERENCE_ROWS = 2_000
WARDEN = str(Path(sys.executable).with_name("warden"))


def _seed(
    data_dir: Path, *, monitors: int, deployments: int, every: int, seed: int
) -> tuple[Any, list[Any]]:
    """Create the store, deployments with baselines and windows, and the scheduled monitors."""
    from api.migrate import upgrade
    from bench.drift import make_frame
    from bench.seeding import store_inference_batch
    from lineage import create_store_engine
    from lineage.deployments import DeploymentCreate, record_deployment
    from lineage.model_versions import ModelVersionCreate, register_model_version
    from lineage.models import Dataset, DatasetVersion
    from lineage.projects import create_project
    from lineage.storage import LocalStore
    from lineage.store import session_scope
    from lineage.tables import utcnow
    from monitors.baseline.storage import BaselineCreate, create_baseline
    from monitors.models import MonitorCreate, Schedule
    from monitors.schedules import create_monitor
    from monitors.spec import MonitorSpec

    url = f"sqlite:///{data_dir / 'warden.db'}"
    upgrade(url)
    engine = create_store_engine(url)
    reference = make_frame(REFERENCE_ROWS, seed=seed, current=False)
    schema = {c: "float" if c.startswith("num_") else "category" for c in reference.columns}
    (data_dir / "datasets").mkdir(parents=True)
    reference.to_parquet(data_dir / "datasets" / "reference.parquet")
    schedule = Schedule(cron="* * * * *") if every == 60 else Schedule(interval_seconds=every)
    windows = []
    with session_scope(engine) as session:
        project_id = create_project(session=session, name="bench").id
        register_model_version(
            session=session,
            project_id=project_id,
            name="scorer",
            spec=ModelVersionCreate(
                artifact_uri="models:/scorer/1", feature_schema=schema, external=True
            ),
        )
        dataset = Dataset(project_id=project_id, namespace="file", name="reference")
        session.add(dataset)
        session.flush()
        version = DatasetVersion(
            project_id=project_id,
            dataset_id=dataset.id,
            version="v1",
            uri="datasets/reference.parquet",
        )
        session.add(version)
        session.flush()
        at = utcnow() - timedelta(minutes=5)
        for index in range(deployments):
            deployment = record_deployment(
                session=session,
                project_id=project_id,
                spec=DeploymentCreate(
                    name=f"scorer-{index:03d}",
                    environment="production",
                    model_name="scorer",
                    model_version="1",
                ),
            )
            create_baseline(
                session=session,
                store=LocalStore(data_dir),
                project_id=project_id,
                spec=BaselineCreate(
                    deployment_id=deployment.id,
                    dataset_version_id=version.id,
                    label_column=None,
                    prediction_column=None,
                    score_column=None,
                ),
            )
            window = make_frame(WINDOW_ROWS, seed=seed + 1 + index, current=True)
            windows.append(window)
            frame = window.astype({c: object for c in window.columns if c.startswith("cat_")})
            frame.insert(0, "request_id", [f"d{index}-r{i}" for i in range(WINDOW_ROWS)])
            frame.insert(1, "time", [at] * WINDOW_ROWS)
            frame["prediction"] = 0
            frame["score"] = 0.5
            frame["probabilities"] = None
            store_inference_batch(
                session=session,
                data_dir=data_dir,
                project_id=project_id,
                deployment_id=deployment.id,
                frame=frame,
                at=at,
            )
            for slot in range(index, monitors, deployments):
                create_monitor(
                    session=session,
                    project_id=project_id,
                    spec=MonitorCreate(
                        name=f"drift-{slot:03d}",
                        deployment_id=deployment.id,
                        spec=MonitorSpec.model_validate(
                            {"kind": "drift", "thresholds": {"drift_share": 0.2}}
                        ),
                        schedule=schedule,
                        window="last:1h",
                    ),
                )
    return engine, windows


def _anchor(engine: Any, data_dir: Path, windows: list[Any], monitors: int) -> float:
    """Seconds of bare drift statistics for one period of every monitor, nothing around them."""
    from sqlmodel import select

    from lineage.models import Deployment
    from lineage.storage import LocalStore
    from lineage.store import session_scope
    from monitors.baseline.storage import latest_baseline, load_baseline
    from monitors.drift import compute_drift

    with session_scope(engine) as session:
        deployments = list(session.exec(select(Deployment).order_by(Deployment.name)).all())
        baselines = [
            load_baseline(
                store=LocalStore(data_dir), stored=latest_baseline(session=session, deployment=d)
            )
            for d in deployments
        ]
    columns = list(windows[0].columns)
    compute_drift(baselines[0], windows[0], columns=columns)  # imports, once
    started = time.perf_counter()
    for slot in range(monitors):
        index = slot % len(windows)
        compute_drift(baselines[index], windows[index], columns=columns)
    return time.perf_counter() - started


def _start(role: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([WARDEN, role], env=env, stdout=out, stderr=subprocess.STDOUT)


def _read_runs(engine: Any) -> list[tuple[datetime, datetime | None, str]]:
    """Every scheduled run: (slot, finished at or None, state)."""
    from sqlmodel import col, select

    from lineage.runtime.queue import RuntimeJob
    from lineage.store import session_scope
    from monitors.models import MonitorRun

    with session_scope(engine) as session:
        rows = session.exec(
            select(MonitorRun.scheduled_for, RuntimeJob.finished_at, RuntimeJob.state).join(
                RuntimeJob, col(RuntimeJob.id) == col(MonitorRun.job_id)
            )
        ).all()
    return [(slot, finished, state) for slot, finished, state in rows]


def _reap(process: subprocess.Popen[bytes]) -> float:
    """Wait for a stopping process (kill it after 60 s); return its CPU seconds (user + sys)."""
    deadline = time.monotonic() + 60
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            process.kill()
            deadline = float("inf")
        time.sleep(0.1)


def _wait_ready(engine: Any, processes: list[subprocess.Popen[bytes]]) -> None:
    """Wait until the scheduler leads and the worker has beaten once (imports done)."""
    from lineage.runtime.lease import current_leader
    from lineage.runtime.presence import last_worker_beat
    from lineage.store import session_scope

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("the scheduler or the worker stopped while starting")
        with session_scope(engine) as session:
            if (
                current_leader(session=session, name="scheduler") is not None
                and last_worker_beat(session=session) is not None
            ):
                return
        time.sleep(0.2)
    raise RuntimeError("the scheduler and the worker were not ready within 180 s")


def _pages_waiting(engine: Any) -> int:
    from sqlalchemy import func
    from sqlmodel import col, select

    from lineage.runtime.queue import JobState, RuntimeJob
    from lineage.store import session_scope
    from monitors.drift_page_jobs import DRIFT_PAGE

    with session_scope(engine) as session:
        return int(
            session.exec(
                select(func.count()).where(
                    col(RuntimeJob.kind) == DRIFT_PAGE, col(RuntimeJob.state) == JobState.QUEUED
                )
            ).one()
        )


def run(*, monitors: int, deployments: int, every: int, periods: int, seed: int) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    from lineage.tables import utcnow

    with tempfile.TemporaryDirectory(prefix="warden-bench-") as directory:
        data_dir = Path(directory)
        print(f"seeding {monitors} monitors on {deployments} deployments", flush=True)
        engine, windows = _seed(
            data_dir, monitors=monitors, deployments=deployments, every=every, seed=seed
        )
        anchor = _anchor(engine, data_dir, windows, monitors)
        print(f"anchor: the {monitors} drift statistics alone take {anchor:.3f} s", flush=True)
        env = {
            **os.environ,
            "WARDEN_DATA_DIR": str(data_dir),
            "WARDEN_DATABASE_URL": f"sqlite:///{data_dir / 'warden.db'}",
            "WARDEN_SCHEDULER_SYNC_SECONDS": "5",
            "WARDEN_WORKER_POLL_SECONDS": "0.2",
        }
        processes = [
            _start("worker", env, data_dir / "worker.log"),
            _start("scheduler", env, data_dir / "scheduler.log"),
        ]
        try:
            _wait_ready(engine, processes)
            started = utcnow()  # slots from here on count: both processes are up
            deadline = time.monotonic() + every * (periods + 1) + 2
            while time.monotonic() < deadline:
                time.sleep(min(5.0, every / 2))
                runs = _read_runs(engine)
                done = sum(1 for _, finished, _ in runs if finished is not None)
                print(f"  {len(runs)} slots queued, {done} runs finished", flush=True)
                if any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"a process stopped early; see logs in {data_dir}")
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            cpu = [_reap(process) for process in processes]
        ended = utcnow()
        runs = _read_runs(engine)
        pages = _pages_waiting(engine)
        engine.dispose()
    # Slots due before the last period ended must have finished: that is keeping up.
    cutoff = ended - timedelta(seconds=every)
    due = [r for r in runs if started <= r[0] <= cutoff]
    finished = [r for r in due if r[1] is not None]
    failed = [r for r in due if r[2] not in ("succeeded", "running", "queued")]
    lags = sorted((f - s).total_seconds() for s, f, _ in finished if f is not None)
    measured_minutes = (ended - started).total_seconds() / 60
    in_period = [r for r in runs if r[1] is not None and started <= r[1] <= ended]
    per_minute = len(in_period) / measured_minutes
    slowest = lags[-1] if lags else float("inf")
    runs_done = [r for r in runs if r[1] is not None]
    keeps_up = len(finished) == len(due) and not failed and slowest < every
    return {
        "monitors": monitors,
        "deployments": deployments,
        "period_seconds": every,
        "window_rows": WINDOW_ROWS,
        "measured_minutes": round(measured_minutes, 2),
        "slots_due": len(due),
        "slots_finished": len(finished),
        "slots_failed": len(failed),
        "runs_per_minute": round(per_minute, 1),
        "required_runs_per_minute": round(monitors * 60 / every, 1),
        "lag_p95_seconds": round(lags[int(0.95 * (len(lags) - 1))], 2) if lags else None,
        "lag_max_seconds": round(slowest, 2) if lags else None,
        "keeps_up": keeps_up,
        "anchor_statistics_seconds_per_period": round(anchor, 3),
        "worker_seconds_per_run": round(60 / per_minute, 3) if per_minute else None,
        "worker_cpu_seconds_per_run": round(cpu[0] / len(runs_done), 3) if runs_done else None,
        "scheduler_cpu_seconds": round(cpu[1], 2),
        "anchor_seconds_per_run": round(anchor / monitors, 4),
        "pages_still_queued": pages,
        "lags_median_seconds": round(statistics.median(lags), 2) if lags else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--monitors", type=int, default=200)
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument(
        "--every", type=int, default=60, help="seconds between slots (60: cron every minute)"
    )
    parser.add_argument("--periods", type=int, default=3, help="periods to measure")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    if not 1 <= options.every <= 60:
        parser.error("--every must be between 1 and 60 seconds")
    figures = run(
        monitors=options.monitors,
        deployments=min(options.deployments, options.monitors),
        every=options.every,
        periods=options.periods,
        seed=options.seed,
    )
    print(
        f"{figures['runs_per_minute']} runs/min finished (needed "
        f"{figures['required_runs_per_minute']}), slowest slot {figures['lag_max_seconds']} s "
        f"after its time, p95 {figures['lag_p95_seconds']} s; keeps up: {figures['keeps_up']}",
        flush=True,
    )
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
