"""Benchmark: list and get routes on a large store, against the raw SQL of the same page.

Run ``python -m bench.lookups`` (defaults: issue #19's store of 10,000 model versions, 100,000
monitor runs and 1,000,000 audit entries; ``--versions/--runs/--audit`` run it small).
``--store DIR`` seeds into ``DIR`` once and reuses it on later runs of the same sizes (migrated
again, so a new index is there), so repeated rounds time the same store without seeding it again.

Seeding goes straight to the tables in large ``executemany`` batches (values converted by the
column types) on a migrated SQLite store, with a large page cache on the seeding connection;
audit entries are hashed over the audit module's own canonical text (``payload_text``), so the
chain verifies (``--verify`` checks it with the audit module's verifier). One ``warden serve``
process then answers ``--requests`` GETs per route with an API key (an auditor, data scientist
and admin of the project, so audit reads are filtered by project), through HTTP with
keep-alive: each large list's first page, a deep page (reached by following cursors), filtered
pages, single-object reads, and a representative set of the configuration-sized lists.

Two anchors, measured in the same run: per route, the SQL query reading the same page with
``sqlite3`` in this process; for the whole run, ``/healthz`` (no authentication, no store) and
``/principals/me`` (authentication and one small read), the floor under any route on this
machine at this moment. Reported per route: p50, p95 and p99 in milliseconds; the server's CPU
time per request (user + system from ``/proc``: what the route costs, which a loaded machine's
queueing does not inflate as it does the latencies); the SQL anchor's p50/p95 and the ratio of
the p95s. A route whose warm-up requests take over 0.2 s each is timed on 20 requests only.
The last line printed is one JSON object with the figures.
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

from bench.processes import cpu_seconds, free_port, running, wait_ready

T0 = datetime(2025, 1, 1, tzinfo=UTC)
MODELS = 100  # the versions are spread over this many model names
MONITORS = 10  # the runs are spread over this many monitors
DEPLOYMENTS = 1_000  # deployment history, over SLOTS slots (a representative growing list)
SLOTS = 10
PROJECT = "bench"
RARE_ACTOR = "rare-writer"  # one audit entry in 1,000 (in the project): a filter matching few
SEEDED = "seeded.json"  # in --store: the sizes and the ids the routes are asked about
LAYOUT = 3  # what the seeding writes; a store seeded otherwise is seeded again


def _batches(rows: Iterator[dict[str, Any]], size: int = 20_000) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(connection: Any, table: Any, rows: Iterator[dict[str, Any]]) -> None:
    """Insert ``rows`` with the driver's ``executemany``, values converted by the column types."""
    columns = list(table.columns)
    dialect = connection.dialect
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

    for batch in _batches(rows):
        connection.exec_driver_sql(statement, [values(row) for row in batch])


def _seed(database_url: str, *, versions: int, runs: int, audit: int) -> dict[str, Any]:
    """Migrate a store and fill it; return the key and the ids the routes are asked about."""
    from api.migrate import upgrade
    from governance.actors import Actor
    from governance.audit import AuditEntry, head, payload_text
    from governance.checkpoints import format_time
    from governance.identity import create_service_account, issue_api_key
    from governance.roles import Role, grant_role
    from lineage import Deployment, ModelVersion, create_store_engine, session_scope
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
            for role in (Role.AUDITOR, Role.DATA_SCIENTIST, Role.ADMIN):
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
        # After the set-up's own entries: an entry's time never precedes the one before it.
        audit_t0 = datetime.now(UTC)

        version_ids: list[uuid.UUID] = []

        def model_versions() -> Iterator[dict[str, Any]]:
            for number in range(versions):
                version_id = uuid.uuid4()
                if number < DEPLOYMENTS:
                    version_ids.append(version_id)
                yield {
                    "id": version_id,
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

        def deployments() -> Iterator[dict[str, Any]]:
            per_slot = len(version_ids) // SLOTS
            for number, version_id in enumerate(version_ids[: per_slot * SLOTS]):
                slot, turn = number % SLOTS, number // SLOTS
                live_from = T0 + timedelta(hours=turn, minutes=slot)
                yield {
                    "id": uuid.uuid4(),
                    "created_at": live_from,
                    "project_id": project_id,
                    "name": f"service-{slot}",
                    "environment": "production",
                    "model_version_id": version_id,
                    "live_from": live_from,
                    "live_until": None if turn == per_slot - 1 else live_from + timedelta(hours=1),
                    "recorded_by": None,
                    "imported": False,
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
            import hashlib

            previous = start.hash
            projects = (project_id, other_id, project_id, None)
            texts = {p: None if p is None else str(p) for p in projects}
            actions = ("monitor.run", "model_version.register", "deployment.end")
            for number in range(audit):
                created_at = audit_t0 + timedelta(milliseconds=number * 10)
                entry_id, seq = uuid.uuid4(), start.seq + number + 1
                actor = RARE_ACTOR if number % 1000 == 998 else "bench-writer"
                project_of, action = projects[number % 4], actions[number % 3]
                target, detail = f"monitor:{number % 1000}", '{"after":{"n":' + str(number) + "}}"
                outcome = "denied" if number % 1000 == 496 else "success"
                text = payload_text(
                    action=action,
                    actor_id=None,
                    actor_kind="service",
                    actor_name=actor,
                    created_at=format_time(created_at),
                    detail=detail,
                    id=str(entry_id),
                    outcome=outcome,
                    prev_hash=previous,
                    project_id=texts[project_of],
                    reason="",
                    request_id=None,
                    seq=seq,
                    target=target,
                )
                row = {
                    "id": entry_id,
                    "created_at": created_at,
                    "seq": seq,
                    "actor_id": None,
                    "actor_name": actor,
                    "actor_kind": "service",
                    "project_id": project_of,
                    "action": action,
                    "target": target,
                    "outcome": outcome,
                    "reason": "",
                    "request_id": None,
                    "detail": detail,
                    "prev_hash": previous,
                }
                row["hash"] = previous = hashlib.sha256(text.encode("utf-8")).hexdigest()
                yield row

        with engine.connect() as connection:
            # A page cache large enough that random UUID keys do not make every insert a read.
            connection.exec_driver_sql("PRAGMA cache_size = -1000000")
            _insert(connection, ModelVersion.__table__, model_versions())  # type: ignore[attr-defined]
            _insert(connection, Deployment.__table__, deployments())  # type: ignore[attr-defined]
            pairs = list(jobs_and_runs())
            _insert(connection, RuntimeJob.__table__, (job for job, _ in pairs))  # type: ignore[attr-defined]
            _insert(connection, MonitorRun.__table__, (run for _, run in pairs))  # type: ignore[attr-defined]
            _insert(connection, AuditEntry.__table__, audit_entries())  # type: ignore[attr-defined]
            connection.commit()
        return {
            "layout": LAYOUT,
            "versions": versions,
            "runs": runs,
            "audit": audit,
            "key": key,
            "audit_t0": audit_t0.isoformat(),
            "project_id": project_id.hex,
            "monitor_id": monitors[0].hex,
            "run_ids": [r.hex for r in run_ids],
            "models": [f"model-{n:03d}" for n in range(0, MODELS, 17)],
        }
    finally:
        engine.dispose()


def _seeded_store(
    folder: Path, *, versions: int, runs: int, audit: int
) -> tuple[Path, dict[str, Any], float | None]:
    """Return the store in ``folder``, seeding it unless it holds these sizes already.

    Also returns the seconds seeding took (``None`` when the store was reused).
    """
    from api.migrate import upgrade

    database, marker = folder / "warden.db", folder / SEEDED
    if marker.exists():
        seeded: dict[str, Any] = json.loads(marker.read_text())
        sizes = (seeded.get("layout"), seeded["versions"], seeded["runs"], seeded["audit"])
        if sizes == (LAYOUT, versions, runs, audit):
            upgrade(f"sqlite:///{database}")  # migrations added since it was seeded (indexes)
            return database, seeded, None
    for stale in (database, marker):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    seeded = _seed(f"sqlite:///{database}", versions=versions, runs=runs, audit=audit)
    seed_s = time.perf_counter() - started
    marker.write_text(json.dumps(seeded))
    return database, seeded, seed_s


def _verify(database_url: str) -> bool:
    """Return whether the seeded chain verifies (with the audit module's own verifier)."""
    from governance.audit_verify import verify_store
    from lineage import create_store_engine

    engine = create_store_engine(database_url)
    try:
        return verify_store(engine=engine, public_key=None).intact
    finally:
        engine.dispose()


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def rank(share: float) -> float:
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] * 1000

    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(rank(0.95), 2),
        "p99_ms": round(rank(0.99), 2),
    }


SLOW_S = 0.2  # a route whose warm-up requests take longer than this each is timed on SLOW_COUNT
SLOW_COUNT = 20


def _time(call: Callable[[int], Any], count: int) -> list[float]:
    warm = min(5, count)
    started = time.perf_counter()
    for number in range(warm):  # warm caches and connections
        call(number)
    if warm and (time.perf_counter() - started) / warm > SLOW_S:
        count = min(count, SLOW_COUNT)  # far over the target anyway: keep the run short
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
    versions: int,
    runs: int,
    audit: int,
    requests: int,
    folder: Path,
    *,
    verify: bool = False,
) -> dict[str, Any]:
    """Seed a store (or reuse the one in ``folder``), start one API process, time the routes."""
    database, seeded, seed_s = _seeded_store(folder, versions=versions, runs=runs, audit=audit)
    url = f"sqlite:///{database}"
    intact = _verify(url) if verify else None
    if intact is not None:
        print(f"the seeded audit chain verifies: {intact}", flush=True)
    how = "reused" if seed_s is None else f"seeded in {seed_s:.1f}s"
    print(
        f"store: {versions:,} model versions, {runs:,} monitor runs, {audit:,} audit entries, "
        f"{DEPLOYMENTS:,} deployments ({how})",
        flush=True,
    )
    port = free_port()
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": url,
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
    audit_t0 = datetime.fromisoformat(seeded["audit_t0"])
    middle = (audit_t0 + timedelta(milliseconds=audit * 5)).isoformat()
    middle_end = (audit_t0 + timedelta(milliseconds=audit * 5 + 60_000)).isoformat()
    figures: dict[str, Any] = {}
    with (
        running([*command, str(port)], env, folder / "warden.log") as server,
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

            def seq_at(when: str) -> int:
                """Return the first seq at or after ``when`` (time rises with seq), as Warden."""
                found = sql.execute(
                    "SELECT seq FROM governance_audit_entry WHERE created_at >= ? "
                    "ORDER BY created_at, seq LIMIT 1",
                    (when.replace("T", " ").replace("+00:00", ""),),
                ).fetchone()
                return int(found[0]) if found else audit + 1_000

            mv = "SELECT * FROM lineage_model_version WHERE project_id = ?"
            runs_sql = (
                "SELECT * FROM monitors_monitor_run r LEFT JOIN lineage_runtime_job j "
                "ON j.id = r.job_id WHERE r.monitor_id = ? ORDER BY r.scheduled_for DESC LIMIT 101"
            )
            audit_sql = (
                "SELECT * FROM governance_audit_entry WHERE project_id IN (?) {extra}"
                "ORDER BY seq LIMIT 100"
            )
            deployments_sql = (
                "SELECT * FROM lineage_deployment WHERE project_id = ? {extra}"
                "ORDER BY live_from DESC, id DESC LIMIT 101"
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
                "healthz": (  # the floor: HTTP and the app, no authentication, no store
                    lambda _: get(f"{root}/healthz"),
                    sql_page("SELECT 1", ()),
                ),
                "whoami": (  # authentication and one small answer, no list
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
                    sql_page(runs_sql, (monitor,)),
                ),
                "monitor_runs_list_deep": (
                    lambda _: get(f"{base}/monitors/{monitor}/runs", deep_runs),
                    sql_page(
                        runs_sql.replace(
                            "WHERE r.monitor_id = ?",
                            "WHERE r.monitor_id = ? AND r.scheduled_for <= ?",
                        ),
                        (monitor, "2025-06-01 00:00:00.000000"),
                    ),
                ),
                "monitor_run_get": (
                    lambda n: get(f"{base}/monitor-runs/{uuid.UUID(run_ids[n % len(run_ids)])}"),
                    lambda n: sql.execute(
                        "SELECT * FROM monitors_monitor_run r LEFT JOIN lineage_runtime_job j "
                        "ON j.id = r.job_id WHERE r.id = ?",
                        (run_ids[n % len(run_ids)],),
                    ).fetchall(),
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
                "audit_list_by_actor": (
                    lambda _: get(f"{root}/api/v1/audit", {"actor": RARE_ACTOR}),
                    sql_page(audit_sql.format(extra="AND actor_name = ? "), (project, RARE_ACTOR)),
                ),
                "audit_list_denied": (
                    lambda _: get(f"{root}/api/v1/audit", {"outcome": "denied"}),
                    sql_page(audit_sql.format(extra="AND outcome = ? "), (project, "denied")),
                ),
                "audit_list_since": (
                    lambda _: get(f"{root}/api/v1/audit", {"since": middle}),
                    lambda _: sql.execute(
                        audit_sql.format(extra="AND seq >= ? "), (project, seq_at(middle))
                    ).fetchall(),
                ),
                "audit_list_window": (  # a minute in the middle of the log
                    lambda _: get(f"{root}/api/v1/audit", {"since": middle, "until": middle_end}),
                    lambda _: sql.execute(
                        audit_sql.format(extra="AND seq >= ? AND seq < ? "),
                        (project, seq_at(middle), seq_at(middle_end)),
                    ).fetchall(),
                ),
                "deployments_list": (
                    lambda _: get(f"{base}/deployments"),
                    sql_page(deployments_sql.format(extra=""), (project,)),
                ),
                "deployments_list_by_name": (
                    lambda n: get(f"{base}/deployments", {"name": f"service-{n % SLOTS}"}),
                    lambda n: sql.execute(
                        deployments_sql.format(extra="AND name = ? "),
                        (project, f"service-{n % SLOTS}"),
                    ).fetchall(),
                ),
                "projects_list": (
                    lambda _: get(f"{root}/api/v1/projects"),
                    sql_page("SELECT * FROM lineage_project ORDER BY name, id LIMIT 101", ()),
                ),
                "project_get": (
                    lambda _: get(base),
                    sql_page("SELECT * FROM lineage_project WHERE name = ?", (PROJECT,)),
                ),
                "monitors_list": (
                    lambda _: get(f"{base}/monitors"),
                    sql_page(
                        "SELECT * FROM monitors_monitor WHERE project_id = ? ORDER BY name, id "
                        "LIMIT 101",
                        (project,),
                    ),
                ),
                "monitor_get": (
                    lambda _: get(f"{base}/monitors/{uuid.UUID(monitor)}"),
                    sql_page("SELECT * FROM monitors_monitor WHERE id = ?", (monitor,)),
                ),
                "grants_list": (
                    lambda _: get(f"{base}/grants"),
                    sql_page(
                        "SELECT * FROM governance_role_grant WHERE project_id = ? "
                        "ORDER BY created_at, id LIMIT 101",
                        (project,),
                    ),
                ),
                "policies_list": (
                    lambda _: get(f"{base}/policies"),
                    sql_page(
                        "SELECT * FROM governance_policy WHERE project_id = ? ORDER BY name, id "
                        "LIMIT 101",
                        (project,),
                    ),
                ),
                "alert_channels_list": (
                    lambda _: get(f"{base}/alert-channels"),
                    sql_page(
                        "SELECT * FROM governance_alert_channel WHERE project_id = ? "
                        "ORDER BY name, id LIMIT 101",
                        (project,),
                    ),
                ),
                "approvals_list": (
                    lambda _: get(f"{base}/approvals"),
                    sql_page(
                        "SELECT * FROM governance_approval_request WHERE project_id = ? "
                        "ORDER BY created_at DESC, id DESC LIMIT 101",
                        (project,),
                    ),
                ),
            }
            for name, (route, anchor) in cases.items():
                before = cpu_seconds(server)
                timed = _percentiles(_time(route, requests))
                after = cpu_seconds(server)
                anchored = _percentiles(_time(anchor, requests))
                ratio = round(timed["p95_ms"] / max(anchored["p95_ms"], 0.001), 1)
                cpu_ms = (
                    None
                    if before is None or after is None
                    else round((after - before) * 1000 / (timed["count"] + min(5, requests)), 2)
                )
                figures[name] = {
                    **timed,
                    "server_cpu_ms": cpu_ms,
                    "anchor_p50_ms": anchored["p50_ms"],
                    "anchor_p95_ms": anchored["p95_ms"],
                    "x_anchor_p95": ratio,
                }
                print(
                    f"{name:26} p50 {timed['p50_ms']:7.2f}  p95 {timed['p95_ms']:7.2f}  "
                    f"p99 {timed['p99_ms']:7.2f} ms  server CPU {cpu_ms or 0:6.2f} ms   "
                    f"SQL p50 {anchored['p50_ms']:6.2f}  p95 {anchored['p95_ms']:6.2f} ms   "
                    f"{ratio:7.1f}x",
                    flush=True,
                )
    over = sorted(name for name, f in figures.items() if f["p95_ms"] > 50)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"routes over 50 ms at p95: {', '.join(over) or 'none'}; load average {load}", flush=True)
    return {
        "model_versions": versions,
        "monitor_runs": runs,
        "audit_entries": audit,
        "deployments": DEPLOYMENTS,
        "requests_per_route": requests,
        "seed_s": None if seed_s is None else round(seed_s, 1),
        "audit_chain_intact": intact,
        "routes": figures,
        "worst_p95_ms": max(f["p95_ms"] for f in figures.values()),
        "over_50ms_p95": over,
        "load_average": load,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--versions", type=int, default=10_000, help="model versions")
    parser.add_argument("--runs", type=int, default=100_000, help="monitor runs")
    parser.add_argument("--audit", type=int, default=1_000_000, help="audit entries")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per route")
    parser.add_argument("--verify", action="store_true", help="verify the seeded audit chain")
    parser.add_argument(
        "--store", type=Path, help="seed here once and reuse it (default: a temporary folder)"
    )
    options = parser.parse_args(argv)
    sizes = (options.versions, options.runs, options.audit, options.requests)
    if options.store is not None:
        options.store.mkdir(parents=True, exist_ok=True)
        figures = run(*sizes, options.store, verify=options.verify)
    else:
        with tempfile.TemporaryDirectory(prefix="warden-lookups-bench-") as folder:
            figures = run(*sizes, Path(folder), verify=options.verify)
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
