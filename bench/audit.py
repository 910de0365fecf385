"""Benchmark: the audit log — audited actions through the API, batched appends, verification.

Run ``python -m bench.audit`` (defaults: 8 writers x 250 actions through the API, 100,000 batched
appends in batches of 1,000, verification of a 1,000,000-entry chain, each ``--repeats`` (3)
times; ``--actions``, ``--entries``, ``--chain`` run it small). Everything runs on a fresh SQLite
store (WAL, ``synchronous=NORMAL``: a commit survives a crash of the process, not a power cut)
with the checkpoint key attached, so a signed checkpoint lands every 100 entries as in
production. Each round measures Warden and its anchor back to back; a figure is the median of the
rounds (each round's figures are in the JSON line). Measured side by side in the same run:

* **single audited actions**: ``warden serve`` and 8 client threads, each sending
  ``PATCH …/budgets/{id}`` (authenticated with an API key, permission checked, the budget
  changed and its ``budget.update`` entry appended in one transaction) one after the other on
  its own keep-alive connection (a minimal HTTP/1.1 client on a socket, see :func:`_writer`);
  throughput, latency percentiles, and the CPU per action of the server and of the writers
  (they share the machine). Each round runs it twice on fresh stores: one API process (keys
  ``api_…``), then ``--workers`` ``--api-processes`` (2 by default, each held to a core of its
  own, ``api/cpu_slots.py``; keys ``api_multi_…``), whose writes queue on the lock file beside
  the database; the kernel hands each writer's connection to one of them, so the split may be
  uneven (each process's CPU is in the round's ``…_process_cpu_s``). Anchor: the same number of
  bare ``sqlite3`` commits of one row each, with the same journal settings, in this process.
* **batched appends** (:func:`governance.audit.append_many`, for internal bulk writers):
  entries per second. Anchor: inserting the same rows (same columns, same indexes) with a bare
  ``sqlite3`` ``executemany`` per batch.
* **verification** (:func:`governance.audit_verify.verify_store`) of a chain of ``--chain``
  entries, checkpoints and signatures included (the chain is built once, by ``append_many`` in
  batches of ``--seed-batch``, then verified each round). Anchors: SHA-256 of the same canonical
  bytes with ``hashlib`` alone, and reading the same rows in seq order with bare ``sqlite3``.
  CPU is reported for this process and, separately, for the worker processes a long chain is
  split across (``verify_worker_cpu_seconds``).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.processes import free_port, running, tree_cpu_seconds, wait_ready
from bench.seeding import service_key

WRITERS = 8
API_PROCESSES = 2
_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _seed_api(database_url: str, writers: int) -> tuple[str, list[str]]:
    """Migrate a store; add a project, one budget per writer and an admin service account."""
    from api.migrate import upgrade
    from governance.actors import Actor
    from governance.budgets import BudgetCreate, BudgetPeriod, create_budget
    from governance.roles import Role
    from lineage import create_store_engine, session_scope
    from lineage.projects import create_project

    upgrade(database_url)
    engine = create_store_engine(database_url)
    system = Actor.system()
    try:
        with session_scope(engine) as session:
            project = create_project(session=session, name="bench")
            budgets = [
                create_budget(
                    session=session,
                    project_id=project.id,
                    spec=BudgetCreate(name=f"b{n}", period=BudgetPeriod.DAILY, limit_usd=10.0),
                    actor=system,
                )
                for n in range(writers)
            ]
            key = service_key(
                session=session,
                actor=system,
                project_id=project.id,
                name="bench-writer",
                role=Role.ADMIN,
            )
            return key, [str(budget.id) for budget in budgets]
    finally:
        engine.dispose()


def _writer(
    base: str, key: str, budget_id: str, actions: int, latencies: list[float], errors: list[str]
) -> None:
    """Send ``actions`` PATCHes one after the other on one keep-alive HTTP/1.1 connection.

    A minimal HTTP/1.1 client on a plain socket: each request is one ``sendall`` of prepared
    bytes, each answer is read to its ``Content-Length`` and its status checked. The server
    under test shares the machine with the writers, so what they spend is CPU it does not get:
    ``http.client`` spent 0.19-0.23 ms an action (its header parsing goes through
    ``email.parser``) and httpx about 0.7; this about 0.1 (one API process, 8 writers,
    2026-12-07 19:45 UTC under load, three rounds each way: 465-469 actions/s against 326-445
    with ``http.client``).
    """
    url = urlsplit(f"{base}/budgets/{budget_id}")
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = (
        f"PATCH {url.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=120) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answer = _Answers(connection)
        for number in range(actions):
            body = json.dumps({"limit_usd": 10.0 + (number % 100)}).encode()
            started = time.perf_counter()
            connection.sendall(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body))
            status, text = answer.next()
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{status}: {text[:300]!r}")
                return


class _Answers:
    """The answers arriving on one keep-alive connection, read one at a time."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._buffer = b""

    def _more(self) -> None:
        chunk = self._connection.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        self._buffer += chunk

    def next(self) -> tuple[int, bytes]:
        """Return the next answer's status and body (framed by ``Content-Length``)."""
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._more()
        lines = self._buffer[:end].decode("latin-1").split("\r\n")
        self._buffer = self._buffer[end + 4 :]
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise ValueError(f"an answer without Content-Length: {lines[0]!r}")
        while len(self._buffer) < length:
            self._more()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return int(lines[0].split(" ", 2)[1]), body


def _audit_count(path: Path, action: str) -> int:
    with closing(sqlite3.connect(path)) as connection:
        query = "SELECT count(*) FROM governance_audit_entry WHERE action = ?"
        return int(connection.execute(query, (action,)).fetchone()[0])


def _anchor_commits(folder: Path, commits: int) -> float:
    """Commit ``commits`` one-row transactions with the store's journal settings; the seconds."""
    with closing(sqlite3.connect(folder / "anchor-commits.db", isolation_level=None)) as connection:
        for pragma in _PRAGMAS:
            connection.execute(pragma)
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        started = time.perf_counter()
        for number in range(commits):
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO t (body) VALUES (?)", (f"row {number}",))
            connection.execute("COMMIT")
        return time.perf_counter() - started


def _warm_up(base: str, key: str, budgets: list[str]) -> None:
    """Send a few actions on each writer's budget at once: every API process gets some."""
    errors: list[str] = []
    threads = [
        threading.Thread(target=_writer, args=(base, key, budget, 5, [], errors))
        for budget in budgets
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"warm-up failed: {errors[0]}")


def run_api(
    folder: Path, actions: int, writers: int = WRITERS, processes: int = 1
) -> dict[str, Any]:
    """Start ``warden serve --workers processes``; ``writers`` threads send ``actions`` each.

    Keys start ``api_`` for one process and ``api_multi_`` for several; the server's CPU is
    its processes' together (uvicorn's parent included), ``…_process_cpu_s`` each one's.
    """
    database = folder / "api.db"
    key, budgets = _seed_api(f"sqlite:///{database}", writers)
    port = free_port()
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": f"sqlite:///{database}",
        "WARDEN_DATA_DIR": str(folder / "data"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    command = [sys.executable, "-c", "from api.cli import main; main()", "serve"]
    command += ["--workers", str(processes), "--port", str(port)]
    base = f"http://127.0.0.1:{port}/api/v1/projects/bench"
    latencies: list[float] = []
    errors: list[str] = []
    with running(command, env, folder / "warden.log") as pid:
        wait_ready(f"http://127.0.0.1:{port}/healthz", folder / "warden.log")
        _warm_up(base, key, budgets)
        before = _audit_count(database, "budget.update")
        cpu = tree_cpu_seconds(pid)
        client_cpu = time.process_time()
        threads = [
            threading.Thread(target=_writer, args=(base, key, budget, actions, latencies, errors))
            for budget in budgets
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        used = {member: s - cpu.get(member, 0.0) for member, s in tree_cpu_seconds(pid).items()}
        client_cpu = time.process_time() - client_cpu
    if errors:
        raise RuntimeError(f"{len(errors)} writers failed; first: {errors[0]}")
    sent = writers * actions
    stored = _audit_count(database, "budget.update") - before
    if stored != sent:
        raise RuntimeError(f"{sent} audited actions answered 200 but {stored} entries are stored")
    prefix = "api_" if processes == 1 else "api_multi_"
    return {
        f"{prefix}processes": processes,
        f"{prefix}writers": writers,
        f"{prefix}actions": sent,
        f"{prefix}actions_per_s": round(sent / elapsed, 1),
        f"{prefix}p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        f"{prefix}p95_ms": round(_percentile(latencies, 0.95) * 1000, 1),
        f"{prefix}p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        f"{prefix}server_cpu_ms_per_action": round(sum(used.values()) / sent * 1000, 2),
        f"{prefix}client_cpu_ms_per_action": round(client_cpu / sent * 1000, 2),
        f"{prefix}process_cpu_s": sorted(round(seconds, 2) for seconds in used.values()),
    }


def run_api_anchor(folder: Path, commits: int) -> dict[str, Any]:
    """The API's anchor: as many bare one-row ``sqlite3`` commits, in this process."""
    return {"anchor_commits_per_s": round(commits / _anchor_commits(folder, commits), 1)}


def _open_store(folder: Path, name: str) -> Any:
    from api.migrate import upgrade
    from governance.checkpoints import attach_signer
    from governance.signing import load_or_create_signer
    from lineage import create_store_engine

    url = f"sqlite:///{folder / name}"
    upgrade(url)
    engine = create_store_engine(url)
    signer = load_or_create_signer(folder / "keys" / f"{name}.pem")
    attach_signer(engine, signer, every=100)
    return engine, signer


def _pending(count: int, offset: int) -> list[Any]:
    from governance.audit import PendingEntry

    return [
        PendingEntry(
            action="inference.log",
            target=f"deployment:{(offset + n) % 50}",
            detail={"batch": offset + n, "accepted": 10_000, "rejected": 0},
        )
        for n in range(count)
    ]


def _append_batches(engine: Any, entries: int, batch: int) -> tuple[float, float]:
    from governance.actors import Actor
    from governance.audit import append_many
    from lineage import session_scope

    actor = Actor.system()
    seconds = cpu = 0.0
    for offset in range(0, entries, batch):
        pending = _pending(min(batch, entries - offset), offset)
        started, used = time.perf_counter(), time.process_time()
        with session_scope(engine) as session:
            append_many(session=session, actor=actor, entries=pending)
        seconds += time.perf_counter() - started
        cpu += time.process_time() - used
    return seconds, cpu


def _anchor_inserts(folder: Path, source: Path, entries: int, batch: int) -> float:
    """Insert the rows of ``source``'s chain into an empty copy of its table, batch by batch."""
    with closing(sqlite3.connect(source)) as connection:
        # The table's own column names: no outside input reaches these statements.
        columns = [
            row[1] for row in connection.execute("PRAGMA table_info(governance_audit_entry)")
        ]
        names = ", ".join(columns)
        rows = connection.execute(
            f"SELECT {names} FROM governance_audit_entry ORDER BY seq LIMIT ?",  # noqa: S608
            (entries,),
        ).fetchall()
        schema = [
            sql
            for (sql,) in connection.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'governance_audit_entry' "
                "AND type IN ('table', 'index') AND sql IS NOT NULL"
            )
        ]
    target = folder / "anchor-inserts.db"
    marks = ", ".join("?" for _ in columns)
    insert = f"INSERT INTO governance_audit_entry ({names}) VALUES ({marks})"  # noqa: S608
    with closing(sqlite3.connect(target, isolation_level=None)) as connection:
        for pragma in _PRAGMAS:
            connection.execute(pragma)
        for sql in schema:
            connection.execute(sql)
        started = time.perf_counter()
        for offset in range(0, len(rows), batch):
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(insert, rows[offset : offset + batch])
            connection.execute("COMMIT")
        return time.perf_counter() - started


def run_batched(folder: Path, entries: int, batch: int) -> dict[str, Any]:
    """Append ``entries`` in batches of ``batch``; compare with bare inserts of the same rows."""
    engine, _signer = _open_store(folder, "batched.db")
    try:
        seconds, cpu = _append_batches(engine, entries, batch)
    finally:
        engine.dispose()
    anchor = _anchor_inserts(folder, folder / "batched.db", entries, batch)
    return {
        "batched_entries": entries,
        "batch_size": batch,
        "batched_per_s": round(entries / seconds),
        "batched_cpu_us_per_entry": round(cpu / entries * 1e6, 1),
        "anchor_inserts_per_s": round(entries / anchor),
    }


def _anchor_hashing(path: Path) -> tuple[float, int]:
    """Hash the exact bytes each entry's hash covers with hashlib alone; the seconds and bytes.

    The bytes are read back from the store and serialised first, a chunk at a time, untimed.
    """
    from governance.audit import AuditEntry, canonical_json, entry_payload
    from lineage import create_store_engine

    engine = create_store_engine(f"sqlite:///{path}")
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    seconds, size = 0.0, 0
    try:
        with engine.connect() as connection:
            result = connection.execute(table.select().order_by(table.c.seq)).mappings()
            while rows := result.fetchmany(50_000):
                payloads = [canonical_json(entry_payload(row)).encode() for row in rows]
                started = time.perf_counter()
                for payload in payloads:
                    hashlib.sha256(payload).hexdigest()
                seconds += time.perf_counter() - started
                size += sum(len(payload) for payload in payloads)
    finally:
        engine.dispose()
    return seconds, size


def build_chain(folder: Path, chain: int, batch: int) -> dict[str, Any]:
    """Build the chain to verify (``append_many`` in batches of ``batch``); its build rate."""
    engine, _signer = _open_store(folder, "chain.db")
    try:
        built, _cpu = _append_batches(engine, chain, batch)
    finally:
        engine.dispose()
    return {
        "chain_entries": chain,
        "chain_seed_batch": batch,
        "chain_built_per_s": round(chain / built),
    }


def _anchor_reading(path: Path) -> tuple[float, float]:
    """Read every entry in seq order with bare ``sqlite3``, 20,000 at a time; seconds, CPU."""
    with closing(sqlite3.connect(path)) as connection:
        started, cpu = time.perf_counter(), time.process_time()
        cursor = connection.execute("SELECT * FROM governance_audit_entry ORDER BY seq")
        while cursor.fetchmany(20_000):
            pass
        return time.perf_counter() - started, time.process_time() - cpu


def _children_cpu() -> float:
    """CPU seconds of this process's finished child processes (verification's workers)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_verify(folder: Path, chain: int) -> dict[str, Any]:
    """Verify the chain built by :func:`build_chain`; hash its bytes with hashlib alone."""
    from governance.audit_verify import verify_store
    from governance.checkpoints import attach_signer
    from governance.signing import load_or_create_signer
    from lineage import create_store_engine

    engine = create_store_engine(f"sqlite:///{folder / 'chain.db'}")
    signer = load_or_create_signer(folder / "keys" / "chain.db.pem")
    attach_signer(engine, signer, every=100)
    try:
        workers = _children_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        report = verify_store(engine=engine, public_key=signer.public_key, every=100)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        workers = _children_cpu() - workers
    finally:
        engine.dispose()
    if not report.intact or report.entries != chain:
        raise RuntimeError(f"verification failed: {report.as_dict()}")
    anchor, size = _anchor_hashing(folder / "chain.db")
    reading, reading_cpu = _anchor_reading(folder / "chain.db")
    return {
        "verify_seconds": round(seconds, 2),
        "verify_cpu_seconds": round(cpu, 2),
        "verify_worker_cpu_seconds": round(workers, 2),
        "verify_per_s": round(chain / seconds),
        "checkpoints_verified": report.checkpoints_verified,
        "anchor_hash_seconds": round(anchor, 3),
        "anchor_read_seconds": round(reading, 2),
        "anchor_read_cpu_seconds": round(reading_cpu, 2),
        "verify_to_anchor_ratio": round(seconds / anchor, 1),
        "hashed_mib": round(size / 2**20, 1),
    }


def _median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Return each figure's median over the rounds (counts are the same in every round)."""
    return {
        name: round(statistics.median(r[name] for r in rounds), 2)
        if isinstance(rounds[0][name], float)
        else statistics.median_low(r[name] for r in rounds)
        for name in rounds[0]
        if not isinstance(rounds[0][name], list)  # each process's CPU: in the rounds only
    }


def _api_line(number: int, api: dict[str, Any], prefix: str) -> str:
    processes = api[f"{prefix}processes"]
    split = " + ".join(f"{seconds:g}" for seconds in api[f"{prefix}process_cpu_s"])
    return (
        f"round {number}, API, {processes} process{'es' if processes > 1 else ''}, "
        f"{api[f'{prefix}writers']} writers: {api[f'{prefix}actions_per_s']:,.0f} audited "
        f"actions/s, p50 {api[f'{prefix}p50_ms']} ms, p95 {api[f'{prefix}p95_ms']} ms, "
        f"p99 {api[f'{prefix}p99_ms']} ms; server CPU "
        f"{api[f'{prefix}server_cpu_ms_per_action']} ms per action ({split} s by process), "
        f"the writers' {api[f'{prefix}client_cpu_ms_per_action']} ms"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the three measurements, print the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--actions", type=int, default=250, help="API actions per writer")
    parser.add_argument("--writers", type=int, default=WRITERS, help="concurrent API writers")
    parser.add_argument("--entries", type=int, default=100_000, help="batched appends")
    parser.add_argument("--batch", type=int, default=1000, help="entries per append_many")
    parser.add_argument("--chain", type=int, default=1_000_000, help="entries to verify")
    parser.add_argument(
        "--seed-batch", type=int, default=10_000, help="entries per append_many building the chain"
    )
    parser.add_argument(
        "--api-processes",
        type=int,
        default=API_PROCESSES,
        help="API processes (warden serve --workers) of the second API run of each round, "
        "after one process; 1 runs only the one-process run",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds; figures are medians")
    options = parser.parse_args(argv)
    figures: dict[str, Any] = {"load_average_1min": round(os.getloadavg()[0], 1)}
    rounds: dict[str, list[dict[str, Any]]] = {"api": [], "batched": [], "verify": []}
    with tempfile.TemporaryDirectory(prefix="warden-audit-bench-") as name:
        folder = Path(name)
        for number in range(1, options.repeats + 1):
            with tempfile.TemporaryDirectory(dir=folder) as round_folder:
                api = run_api(Path(round_folder), options.actions, options.writers)
            print(_api_line(number, api, "api_"), flush=True)
            if options.api_processes > 1:
                with tempfile.TemporaryDirectory(dir=folder) as round_folder:
                    api |= run_api(
                        Path(round_folder),
                        options.actions,
                        options.writers,
                        options.api_processes,
                    )
                print(_api_line(number, api, "api_multi_"), flush=True)
            with tempfile.TemporaryDirectory(dir=folder) as round_folder:
                api |= run_api_anchor(Path(round_folder), api["api_actions"])
            print(
                f"round {number}, anchor of the API: bare one-row SQLite commits, "
                f"{api['anchor_commits_per_s']:,.0f}/s",
                flush=True,
            )
            rounds["api"].append(api)
        for number in range(1, options.repeats + 1):
            with tempfile.TemporaryDirectory(dir=folder) as round_folder:
                batched = run_batched(Path(round_folder), options.entries, options.batch)
            rounds["batched"].append(batched)
            print(
                f"round {number}, append_many, batches of {options.batch}: "
                f"{batched['batched_per_s']:,}/s (CPU {batched['batched_cpu_us_per_entry']} µs "
                f"per entry); anchor (bare executemany of the same rows): "
                f"{batched['anchor_inserts_per_s']:,}/s",
                flush=True,
            )
        built = build_chain(folder, options.chain, options.seed_batch)
        print(
            f"chain of {options.chain:,} built by append_many (batches of "
            f"{options.seed_batch:,}): {built['chain_built_per_s']:,}/s",
            flush=True,
        )
        for number in range(1, options.repeats + 1):
            verify = run_verify(folder, options.chain)
            rounds["verify"].append(verify)
            print(
                f"round {number}, verify {options.chain:,} entries: {verify['verify_seconds']} s "
                f"({verify['verify_per_s']:,}/s; CPU {verify['verify_cpu_seconds']} s here, "
                f"{verify['verify_worker_cpu_seconds']} s in workers); anchors: "
                f"hashlib over the same "
                f"{verify['hashed_mib']} MiB {verify['anchor_hash_seconds']} s "
                f"({verify['verify_to_anchor_ratio']}x), bare sqlite3 reading the rows "
                f"{verify['anchor_read_seconds']} s (CPU {verify['anchor_read_cpu_seconds']} s)",
                flush=True,
            )
        figures.update(built)
        for part in rounds.values():
            figures.update(_median(part))
        figures["rounds"] = rounds
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
