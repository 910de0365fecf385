"""Benchmark: list and get routes on a large store, against the raw SQL of the same page.

Run ``python -m bench.lookups`` (defaults: 10,000 model versions, 100,000 monitor runs,
1,000,000 audit entries; ``--versions/--runs/--audit`` run it small).

Seeding goes straight to the tables (the driver's ``executemany``, values converted by the
column types) on a migrated SQLite store; audit entries are hashed with the audit module's own
``entry_payload``/``entry_hash``, so the chain verifies (``--verify`` checks it with the audit
module's verifier). One ``warden serve`` process then answers ``--requests`` GETs per route with
an API key (an auditor and data scientist of the project, so audit reads are filtered by
project), through HTTP with keep-alive: each list's first page, a deep page (reached by
following cursors), filtered pages and single-object reads, and ``/principals/me`` as the floor
of any request. The anchor, measured in the same run on the same file, is the SQL query reading
the same page with ``sqlite3`` in this process.

Reported per route: p50 and p95 in milliseconds, the anchor's p50/p95, and the ratio of the
p95s. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.processes import free_port, running, wait_ready

T0 = datetime(2025, 1, 1, tzinfo=UTC)
MODELS = 100  # the versions are spread over this many model names
MONITORS = 10  # the runs are spread over this many monitors
PROJECT = "bench"


def _batches(rows: Iterator[dict[str, Any]], size: int = 20_000) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(engine: Any, table: Any, rows: Iterator[dict[str, Any]]) -> None:
    """Insert ``rows`` with the driver's ``executemany``, values converted by the column types."""
    columns = list(table.columns)
    dialect = engine.dialect
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    names = ", ".join(column.name for column in columns)
    marks = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608
    defaults = {
        column.name: column.default.arg
        for column in columns
        if column.default is not None and not callable(column.default.arg)
    }

    def values(row: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for column, process in zip(columns, processors, strict=True):
            value = row.get(column.name, defaults.get(column.name))
            out.append(value if process is None or value is None else process(value))
        return tuple(out)

    with engine.begin() as connection:
        for batch in _batches(rows):
            connection.exec_driver_sql(statement, [values(row) for row in batch])


def _seed(database_url: str, *, versions: int, runs: int, audit: int) -> dict[str, Any]:
    """Migrate a store and fill it; return the key and the ids the routes are asked about."""
    from api.migrate import upgrade
    from governance.actors import Actor
    from governance.audit import AuditEntry, entry_hash, entry_payload, head
    from governance.identity import create_service_account, issue_api_key
    from governance.roles import Role, grant_role
    from lineage import ModelVersion, create_store_engine, session_scope
    from lineage.projects import create_project
    from lineage.runtime.queue import RuntimeJob
    from monitors.models import MonitorCreate, MonitorRun
    from monitors.schedules import create_monitor

    upgrade(database_url)
    engine = create_store_engine(database_url)
    system = Actor.system()
    try:
        with session_scope(engine) as session:
            project = create_project(session=session, name=PROJECT)
            other = create_project(session=session, name="other")
            account = create_service_account(session=session, actor=system, name="bench-reader")
            for role in (Role.AUDITOR, Role.DATA_SCIENTIST):
                grant_role(
                    session=session,
                    actor=system,
                    project_id=project.id,
                    principal_id=account.id,
                    role=role,
                )
            key = issue_api_key(session=session, actor=system, principal_id=account.id).secret
            monitors = [
                create_monitor(
                    session=session,
                    project_id=project.id,
                    spec=MonitorCreate.model_validate(
                        {
                            "name": f"drift-{number}",
                            "spec": {"kind": "drift"},
                            "schedule": {"interval_seconds": 3600},
                        }
                    ),
                    now=T0,
                ).id
                for number in range(MONITORS)
            ]
            start = head(session=session)
            project_id, other_id = project.id, other.id

        def model_versions() -> Iterator[dict[str, Any]]:
            for number in range(versions):
                yield {
                    "id": uuid.uuid4(),
                    "created_at": T0 + timedelta(seconds=number),
                    "project_id": project_id,
                    "name": f"model-{number % MODELS:03d}",
                    "version": str(number // MODELS + 1),
                    "kind": "model",
                    "external": True,
                    "artifact_uri": f"s3://models/{number}",
                    "parameters": {"max_depth": 6},
                    "metrics": {"auc": 0.9},
                    "feature_schema": {"age": "int", "income": "float"},
                    "context_schema": {},
                    "output_schema": {},
                    "description": "",
                }

        run_ids: list[uuid.UUID] = []

        def jobs_and_runs() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
            for number in range(runs):
                slot = T0 + timedelta(hours=number // MONITORS)
                job_id, run_id = uuid.uuid4(), uuid.uuid4()
                if number % max(1, runs // 7) == 0:
                    run_ids.append(run_id)
                job = {
                    "id": job_id,
                    "created_at": slot,
                    "project_id": project_id,
                    "kind": "monitor_run",
                    "payload": {"run_id": str(run_id)},
                    "state": "succeeded",
                    "attempts": 1,
                    "max_attempts": 3,
                    "available_at": slot,
                    "started_at": slot,
                    "finished_at": slot + timedelta(seconds=2),
                    "progress": 1.0,
                    "message": "",
                    "logs": "",
                }
                run = {
                    "id": run_id,
                    "created_at": slot,
                    "project_id": project_id,
                    "monitor_id": monitors[number % MONITORS],
                    "scheduled_for": slot,
                    "trigger": "schedule",
                    "window_start": slot - timedelta(hours=1),
                    "window_end": slot,
                    "job_id": job_id,
                    "summary": {"findings": 0, "drifted_columns": []},
                }
                yield job, run

        def audit_entries() -> Iterator[dict[str, Any]]:
            previous = start.hash
            projects = (project_id, other_id, project_id, None)
            for number in range(audit):
                row = {
                    "id": uuid.uuid4(),
                    "created_at": T0 + timedelta(milliseconds=number * 10),
                    "seq": start.seq + number + 1,
                    "actor_id": None,
                    "actor_name": "bench-writer",
                    "actor_kind": "service",
                    "project_id": projects[number % 4],
                    "action": ("monitor.run", "model_version.register", "deployment.end")[
                        number % 3
                    ],
                    "target": f"monitor:{number % 1000}",
                    "outcome": "success",
                    "reason": "",
                    "request_id": None,
                    "detail": '{"after":{"n":' + str(number) + "}}",
                    "prev_hash": previous,
                }
                row["hash"] = previous = entry_hash(entry_payload(row))
                yield row

        _insert(engine, ModelVersion.__table__, model_versions())  # type: ignore[attr-defined]
        pairs = list(jobs_and_runs())
        _insert(engine, RuntimeJob.__table__, (job for job, _ in pairs))  # type: ignore[attr-defined]
        _insert(engine, MonitorRun.__table__, (run for _, run in pairs))  # type: ignore[attr-defined]
        _insert(engine, AuditEntry.__table__, audit_entries())  # type: ignore[attr-defined]
        return {
            "key": key,
            "project_id": project_id.hex,
            "monitor_id": monitors[0],
            "run_ids": run_ids,
            "models": [f"model-{n:03d}" for n in range(0, MODELS, 17)],
        }
    finally:
        engine.dispose()


def _verify(database_url: str) -> bool:
    """Return whether the seeded chain verifies (with the audit module's own verifier)."""
    from governance.audit_export import verify_store
    from lineage import create_store_engine

    engine = create_store_engine(database_url)
    try:
        return verify_store(engine=engine, public_key=None).intact
    finally:
        engine.dispose()


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2)}


def _time(call: Callable[[int], Any], count: int) -> list[float]:
    for number in range(min(5, count)):  # warm caches and connections
        call(number)
    samples = []
    for number in range(count):
        started = time.perf_counter()
        call(number)
        samples.append(time.perf_counter() - started)
    return samples


def _cursor_of(answer: httpx.Response) -> str | None:
    link = answer.links.get("next")
    if link is None:
        return None
    return str(httpx.URL(link["url"]).params["cursor"])


def _audit_after(answer: httpx.Response) -> str | None:
    after = answer.json().get("next_after")
    return None if after is None else str(after)


def run(
    versions: int, runs: int, audit: int, requests: int, folder: Path, *, verify: bool = False
) -> dict[str, Any]:
    """Seed a store, start one API process, time the routes and their anchors."""
    database = folder / "warden.db"
    started = time.perf_counter()
    seeded = _seed(f"sqlite:///{database}", versions=versions, runs=runs, audit=audit)
    seed_s = time.perf_counter() - started
    intact = _verify(f"sqlite:///{database}") if verify else None
    if intact is not None:
        print(f"the seeded audit chain verifies: {intact}", flush=True)
    print(
        f"seeded {versions:,} model versions, {runs:,} monitor runs, {audit:,} audit entries "
        f"in {seed_s:.1f}s",
        flush=True,
    )
    port = free_port()
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": f"sqlite:///{database}",
        "WARDEN_DATA_DIR": str(folder / "data"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    command = [sys.executable, "-c", "from api.cli import main; main()", "serve", "--port"]
    root = f"http://127.0.0.1:{port}"
    base = f"{root}/api/v1/projects/{PROJECT}"
    project = seeded["project_id"]
    monitor = seeded["monitor_id"]
    models = seeded["models"]
    run_ids = seeded["run_ids"]
    per_model = max(1, versions // MODELS)
    figures: dict[str, Any] = {}
    with (
        running([*command, str(port)], env, folder / "warden.log"),
        closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as sql,
    ):
        wait_ready(f"{root}/healthz", folder / "warden.log")
        headers = {"Authorization": f"Bearer {seeded['key']}"}
        with httpx.Client(timeout=60, headers=headers) as client:

            def get(url: str, params: dict[str, Any] | None = None) -> httpx.Response:
                answer = client.get(url, params=params)
                if answer.status_code != 200:
                    raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:300]}")
                return answer

            def halfway(
                url: str, params: dict[str, Any], next_of: Callable[[httpx.Response], str | None]
            ) -> dict[str, Any]:
                """Walk to the middle page with 1000-item pages; return its parameters."""
                cursor_name = "after" if next_of is _audit_after else "cursor"
                total = get(url, {**params, "limit": 1000})
                position: str | None = None
                for _ in range(int(params.pop("_pages"))):
                    position = next_of(total)
                    if position is None:
                        break
                    total = get(url, {**params, "limit": 1000, cursor_name: position})
                return {**params, cursor_name: position} if position else params

            def sql_page(query: str, args: tuple[Any, ...]) -> Callable[[int], Any]:
                return lambda _: sql.execute(query, args).fetchall()

            mv = "SELECT * FROM lineage_model_version WHERE project_id = ?"
            runs_sql = (
                "SELECT * FROM monitors_monitor_run r LEFT JOIN lineage_runtime_job j "
                "ON j.id = r.job_id WHERE r.monitor_id = ? ORDER BY r.scheduled_for DESC LIMIT 101"
            )
            audit_sql = (
                "SELECT * FROM governance_audit_entry WHERE project_id IN (?) {extra}"
                "ORDER BY seq LIMIT 100"
            )
            deep_models = halfway(f"{base}/models", {"_pages": versions // 2000}, _cursor_of)
            deep_runs = halfway(
                f"{base}/monitors/{monitor}/runs",
                {"_pages": runs // MONITORS // 2000},
                _cursor_of,
            )
            deep_audit = halfway(f"{root}/api/v1/audit", {"_pages": audit // 8000}, _audit_after)
            middle_seq = int(deep_audit.get("after", 0))
            cases: dict[str, tuple[Callable[[int], Any], Callable[[int], Any]]] = {
                "whoami": (  # the floor: authentication and one small answer, no list
                    lambda _: get(f"{root}/api/v1/principals/me"),
                    sql_page("SELECT * FROM governance_principal LIMIT 1", ()),
                ),
                "models_list": (
                    lambda _: get(f"{base}/models"),
                    sql_page(f"{mv} ORDER BY name, created_at, id LIMIT 101", (project,)),
                ),
                "models_list_deep": (
                    lambda _: get(f"{base}/models", deep_models),
                    sql_page(
                        f"{mv} AND name >= ? ORDER BY name, created_at, id LIMIT 101",
                        (project, models[len(models) // 2]),
                    ),
                ),
                "model_versions_list": (
                    lambda n: get(f"{base}/models/{models[n % len(models)]}/versions"),
                    lambda n: sql.execute(
                        f"{mv} AND name = ? ORDER BY created_at, id LIMIT 101",
                        (project, models[n % len(models)]),
                    ).fetchall(),
                ),
                "model_version_get": (
                    lambda n: get(
                        f"{base}/models/{models[n % len(models)]}/versions/{n % per_model + 1}"
                    ),
                    lambda n: sql.execute(
                        f"{mv} AND name = ? AND version = ?",
                        (project, models[n % len(models)], str(n % per_model + 1)),
                    ).fetchall(),
                ),
                "monitor_runs_list": (
                    lambda _: get(f"{base}/monitors/{monitor}/runs"),
                    sql_page(runs_sql, (monitor.hex,)),
                ),
                "monitor_runs_list_deep": (
                    lambda _: get(f"{base}/monitors/{monitor}/runs", deep_runs),
                    sql_page(
                        runs_sql.replace(
                            "WHERE r.monitor_id = ?",
                            "WHERE r.monitor_id = ? AND r.scheduled_for <= ?",
                        ),
                        (monitor.hex, "2025-06-01 00:00:00.000000"),
                    ),
                ),
                "monitor_run_get": (
                    lambda n: get(f"{base}/monitor-runs/{run_ids[n % len(run_ids)]}"),
                    lambda n: sql.execute(
                        "SELECT * FROM monitors_monitor_run r LEFT JOIN lineage_runtime_job j "
                        "ON j.id = r.job_id WHERE r.id = ?",
                        (run_ids[n % len(run_ids)].hex,),
                    ).fetchall(),
                ),
                "monitors_list": (
                    lambda _: get(f"{base}/monitors"),
                    sql_page(
                        "SELECT * FROM monitors_monitor WHERE project_id = ? ORDER BY name, id "
                        "LIMIT 101",
                        (project,),
                    ),
                ),
                "audit_list": (
                    lambda _: get(f"{root}/api/v1/audit"),
                    sql_page(audit_sql.format(extra=""), (project,)),
                ),
                "audit_list_deep": (
                    lambda _: get(f"{root}/api/v1/audit", deep_audit),
                    sql_page(audit_sql.format(extra="AND seq > ? "), (project, middle_seq)),
                ),
                "audit_list_by_action": (
                    lambda _: get(f"{root}/api/v1/audit", {"action": "deployment.end"}),
                    sql_page(
                        audit_sql.format(extra="AND action = ? "), (project, "deployment.end")
                    ),
                ),
                "audit_list_by_target": (
                    lambda _: get(f"{root}/api/v1/audit", {"target": "monitor:500"}),
                    sql_page(audit_sql.format(extra="AND target = ? "), (project, "monitor:500")),
                ),
            }
            for name, (route, anchor) in cases.items():
                timed = _percentiles(_time(route, requests))
                anchored = _percentiles(_time(anchor, requests))
                ratio = round(timed["p95_ms"] / max(anchored["p95_ms"], 0.001), 1)
                figures[name] = {
                    **timed,
                    "anchor_p50_ms": anchored["p50_ms"],
                    "anchor_p95_ms": anchored["p95_ms"],
                    "x_anchor_p95": ratio,
                }
                print(
                    f"{name:24} p50 {timed['p50_ms']:7.2f} ms  p95 {timed['p95_ms']:7.2f} ms   "
                    f"anchor (sqlite3) p50 {anchored['p50_ms']:6.2f} ms  p95 "
                    f"{anchored['p95_ms']:6.2f} ms   {ratio:6.1f}x",
                    flush=True,
                )
    worst = max(figures.values(), key=lambda f: f["p95_ms"])
    return {
        "model_versions": versions,
        "monitor_runs": runs,
        "audit_entries": audit,
        "requests_per_route": requests,
        "seed_s": round(seed_s, 1),
        "audit_chain_intact": intact,
        "routes": figures,
        "worst_p95_ms": worst["p95_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--versions", type=int, default=10_000, help="model versions")
    parser.add_argument("--runs", type=int, default=100_000, help="monitor runs")
    parser.add_argument("--audit", type=int, default=1_000_000, help="audit entries")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per route")
    parser.add_argument("--verify", action="store_true", help="verify the seeded audit chain")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="warden-lookups-bench-") as folder:
        figures = run(
            options.versions,
            options.runs,
            options.audit,
            options.requests,
            Path(folder),
            verify=options.verify,
        )
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
