"""Benchmark: inference logging over REST, against parsing the same payload and writing Parquet.

Run ``python -m bench.inference_ingest`` (defaults: 10 batches of 10,000 records, 15 features —
10 numeric, 5 categorical — plus prediction, score and time, 3 runs; ``--batches`` runs it small;
``--random-ids`` sends random UUIDs as request ids instead of ``<run>-<batch>-<row>`` everywhere).

One ``warden serve`` process on a fresh SQLite store; one client posts the batches one after the
other, each answer must be 201 with every record accepted, and the store must hold every row
afterwards. Measured side by side in each run, on the same bytes:

* **JSON**: ``POST …/deployments/{id}/inferences`` — the schema checks, the de-duplication of
  request ids, the Parquet partition and one audit entry per batch;
* **Parquet upload**: the same number of records as one ``.parquet`` file to
  ``…/inferences/upload`` (a plain table: checked and stored column by column, bounded by the
  table limits rather than 10,000 rows), once as a multipart field and once as the body itself
  (``Content-Type: application/vnd.apache.parquet``), each with fresh request ids; the file holds
  the columns and types the log stores (times in nanoseconds), so it is checked and kept as it
  came, not decoded and written again;
* **random request ids**: the same JSON batches and uploads (both ways) again in each run with
  random UUIDs as request ids, what serving code usually sends (``uuid4``), reported under their
  own keys (``…_random_ids_…``): 36 random bytes an id hash and store as they come, where the
  sequential ids are short and compress;
* **anchor**: parsing each JSON body and writing its records as Parquet (``pq.write_table``'s
  defaults), in this process, with the faster of two parsers: ``orjson`` (then
  ``pyarrow.Table.from_pylist``) and Arrow's JSON reader (columns directly).

The uploads of a run go in a rotated order (the first of a run in one run is the last in the
next), so no way of sending always follows the same one: an upload's answer leaves work behind
on another thread (the id runs merged in memory) that the next one's CPU figure may count.

Reported: rows per second of each (median of the runs) and the ratios of Warden's times to the
anchor's; and, since a loaded machine shares its cores unevenly between the client, the server
and the anchor, rows per CPU second of the server process (``/proc``) and of the anchor. The
last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.processes import cpu_seconds, free_port, running, wait_ready
from bench.seeding import service_key

NUMERIC = [f"num_{index}" for index in range(10)]
CATEGORICAL = [f"cat_{index}" for index in range(5)]
SCHEMA = {**dict.fromkeys(NUMERIC, "float"), **dict.fromkeys(CATEGORICAL, "category")}


def _seed(database_url: str) -> tuple[str, str]:
    """Migrate a store; add the project, deployment and key the bench logs with."""
    from api.migrate import upgrade
    from governance.actors import Actor
    from governance.roles import Role
    from lineage import create_store_engine, session_scope
    from lineage.deployments import DeploymentCreate, record_deployment
    from lineage.model_versions import ModelVersionCreate, register_model_version
    from lineage.projects import create_project

    upgrade(database_url)
    engine = create_store_engine(database_url)
    system = Actor.system()
    try:
        with session_scope(engine) as session:
            project = create_project(session=session, name="bench")
            register_model_version(
                session=session,
                project_id=project.id,
                name="scorer",
                spec=ModelVersionCreate(
                    artifact_uri="models:/scorer/1", external=True, feature_schema=SCHEMA
                ),
            )
            deployment = record_deployment(
                session=session,
                project_id=project.id,
                spec=DeploymentCreate(
                    name="scorer-api",
                    environment="production",
                    model_name="scorer",
                    model_version="1",
                ),
            )
            key = service_key(
                session=session,
                actor=system,
                project_id=project.id,
                name="bench-logger",
                role=Role.DATA_SCIENTIST,
            )
            return key, str(deployment.id)
    finally:
        engine.dispose()


def make_batches(
    batches: int, size: int, prefix: str, seed: int, *, random_ids: bool = False
) -> list[list[dict[str, Any]]]:
    """Return ``batches`` lists of ``size`` records with fresh request ids (UUIDs if random)."""
    rng = np.random.default_rng(seed)
    start = datetime.now(UTC) - timedelta(hours=1)
    out = []
    for number in range(batches):
        values = rng.normal(size=(size, len(NUMERIC)))
        codes = rng.integers(0, 20, size=(size, len(CATEGORICAL)))
        predictions = rng.integers(0, 2, size=size)
        scores = rng.random(size)
        ids = (
            [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(size)]
            if random_ids
            else [f"{prefix}-{number}-{row}" for row in range(size)]
        )
        out.append(
            [
                {
                    "request_id": ids[row],
                    "time": (start + timedelta(milliseconds=row)).isoformat(),
                    "features": {
                        **{name: float(values[row, i]) for i, name in enumerate(NUMERIC)},
                        **{name: f"v{codes[row, i]}" for i, name in enumerate(CATEGORICAL)},
                    },
                    "prediction": int(predictions[row]),
                    "score": float(scores[row]),
                }
                for row in range(size)
            ]
        )
    return out


def _parquet(batch: list[dict[str, Any]]) -> bytes:
    """Return a batch as the upload route's table: request_id, time, features, outputs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "request_id": record["request_id"],
            "time": datetime.fromisoformat(record["time"]),
            **record["features"],
            "prediction": record["prediction"],
            "score": record["score"],
        }
        for record in batch
    ]
    table = pa.Table.from_pylist(rows)
    # Times in nanoseconds, as the log stores them (and pandas writes them): the file already
    # is a partition, so Warden keeps its bytes rather than decoding and writing them again.
    table = table.set_column(1, "time", table.column("time").cast(pa.timestamp("ns", tz="UTC")))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _anchor(bodies: list[bytes]) -> tuple[float, float, str]:
    """Parse each body and write its records as Parquet; the faster parser's seconds and CPU.

    Two parsers: ``orjson`` (then ``Table.from_pylist``) and Arrow's own JSON reader, which
    yields columns directly; each body is written with ``pq.write_table``'s defaults.
    """
    import orjson
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    started, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        records = orjson.loads(body)["records"]
        pq.write_table(pa.Table.from_pylist(records), io.BytesIO())
    by_orjson = (time.perf_counter() - started, time.process_time() - cpu, "orjson")
    started, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        read = pj.ReadOptions(block_size=len(body) + 1, use_threads=False)
        table = pj.read_json(io.BytesIO(body), read_options=read)
        records = table.column("records").combine_chunks().flatten()
        pq.write_table(pa.Table.from_struct_array(records), io.BytesIO())
    by_arrow = (time.perf_counter() - started, time.process_time() - cpu, "pyarrow.json")
    return min(by_orjson, by_arrow)


def _post(
    client: httpx.Client, url: str, payloads: list[dict[str, Any]], rows: int, pid: int = 0
) -> tuple[float, float]:
    """Post the payloads one after the other; return the seconds and the server's CPU seconds."""
    started, cpu = time.perf_counter(), cpu_seconds(pid) or 0.0
    for payload in payloads:
        answer = client.post(url, **payload)
        if answer.status_code != 201 or answer.json()["accepted"] != rows:
            raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:500]}")
    # /proc counts CPU in clock ticks: a small run may use less than one.
    tick = 1 / os.sysconf("SC_CLK_TCK")
    return time.perf_counter() - started, max((cpu_seconds(pid) or 0.0) - cpu, tick)


def _records(
    batches: int, size: int, prefix: str, seed: int = 97, *, random: bool = False
) -> list[dict[str, Any]]:
    """Return ``batches * size`` fresh records as one list (an upload's worth)."""
    made = make_batches(batches, size, prefix, seed, random_ids=random)
    return [record for batch in made for record in batch]


def _stored(path: Path) -> int:
    with closing(sqlite3.connect(path)) as connection:
        found = connection.execute(
            "SELECT sum(length(hashes)) FROM monitors_request_run WHERE kind = 'inferences'"
        )
        return int(found.fetchone()[0] or 0) // 8  # 8 bytes per id hash


def run(
    batches: int, size: int, repeat: int, folder: Path, *, random_ids: bool = False
) -> dict[str, Any]:
    """Start one API process, log the batches through it, return the figures."""
    database = folder / "warden.db"
    key, deployment_id = _seed(f"sqlite:///{database}")
    port = free_port()
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": f"sqlite:///{database}",
        "WARDEN_DATA_DIR": str(folder / "data"),
        # One upload holds a run's records (11.7 MiB at 100,000 rows): above the 10 MiB default.
        "WARDEN_MAX_BODY_BYTES": str(256 * 2**20),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    command = [sys.executable, "-c", "from api.cli import main; main()", "serve", "--port"]
    base = f"http://127.0.0.1:{port}/api/v1/projects/bench/deployments/{deployment_id}"
    headers = {"Authorization": f"Bearer {key}"}
    kinds = (
        "json",
        "json_random_ids",
        "parquet",
        "parquet_body",
        "parquet_random_ids",
        "parquet_body_random_ids",
        "anchor",
    )
    figures: dict[str, list[float]] = {f"{k}{cpu}": [] for k in kinds for cpu in ("", "_cpu")}
    as_parquet = {"content-type": "application/vnd.apache.parquet"}
    with running([*command, str(port)], env, folder / "warden.log") as pid:
        wait_ready(f"http://127.0.0.1:{port}/healthz", folder / "warden.log")
        with httpx.Client(timeout=600, headers=headers) as client:
            # Warm up on what is measured: a JSON batch, and an upload of a round's size each
            # way (a 10,000-row warm-up left the first timed 100,000-row upload paying for the
            # process's first large one: its round came out at about half the others' rate).
            warm = make_batches(1, size, "warm", seed=99)[0]
            whole = batches * size
            for url, payload, rows in (
                (
                    f"{base}/inferences",
                    {
                        "content": json.dumps({"records": warm}),
                        "headers": {"content-type": "application/json"},
                    },
                    size,
                ),
                (
                    f"{base}/inferences/upload",
                    {"files": {"file": ("warm.parquet", _parquet(_records(batches, size, "w2")))}},
                    whole,
                ),
                (
                    f"{base}/inferences/upload",
                    {"content": _parquet(_records(batches, size, "w3")), "headers": as_parquet},
                    whole,
                ),
            ):
                _post(client, url, [payload], rows)
            rows = batches * size
            for index in range(repeat):
                made = make_batches(batches, size, f"j{index}", index, random_ids=random_ids)
                bodies = [json.dumps({"records": batch}).encode() for batch in made]
                uuids = [
                    json.dumps({"records": batch}).encode()
                    for batch in make_batches(
                        batches, size, f"r{index}", index + 5000, random_ids=True
                    )
                ]
                # One file of the run's records: an upload is bounded by size, not batch count.
                uploads = {
                    kind: _parquet(
                        _records(batches, size, f"{kind}{index}", index + seed, random=randomly)
                    )
                    for kind, seed, randomly in (
                        ("parquet", 1000, random_ids),
                        ("parquet_body", 2000, random_ids),
                        ("parquet_random_ids", 3000, True),
                        ("parquet_body_random_ids", 4000, True),
                    )
                }
                anchor, anchor_cpu, parser = _anchor(bodies)
                for name, value in zip(("anchor", "anchor_cpu"), (anchor, anchor_cpu), strict=True):
                    figures[name].append(value)
                for kind, sent in (("json", bodies), ("json_random_ids", uuids)):
                    seconds, cpu_used = _post(
                        client,
                        f"{base}/inferences",
                        [
                            {"content": body, "headers": {"content-type": "application/json"}}
                            for body in sent
                        ],
                        size,
                        pid,
                    )
                    figures[kind].append(seconds)
                    figures[f"{kind}_cpu"].append(cpu_used)
                turn = index % len(uploads)
                for kind in [*uploads][turn:] + [*uploads][:turn]:
                    payload = (
                        {"content": uploads[kind], "headers": as_parquet}
                        if kind.startswith("parquet_body")
                        else {"files": {"file": ("batch.parquet", uploads[kind])}}
                    )
                    seconds, cpu_used = _post(
                        client, f"{base}/inferences/upload", [payload], rows, pid
                    )
                    figures[kind].append(seconds)
                    figures[f"{kind}_cpu"].append(cpu_used)

                def rate(kind: str) -> str:
                    return f"{rows / figures[kind][-1]:,.0f}"

                def cpu_rate(kind: str) -> str:
                    return f"{rows / figures[f'{kind}_cpu'][-1]:,.0f}"

                print(
                    f"run {index + 1}: JSON {rate('json')} rows/s, Parquet upload "
                    f"{rate('parquet')} rows/s; anchor ({parser} + Parquet) "
                    f"{rows / anchor:,.0f} rows/s; JSON takes "
                    f"{figures['json'][-1] / anchor:.1f}x the anchor, the Parquet upload "
                    f"{figures['parquet'][-1] / anchor:.2f}x; as the body "
                    f"{rate('parquet_body')} rows/s, {figures['parquet_body'][-1] / anchor:.2f}x. "
                    f"Random UUIDs: JSON {rate('json_random_ids')}, upload "
                    f"{rate('parquet_random_ids')}, as the body "
                    f"{rate('parquet_body_random_ids')} rows/s. CPU: the server's "
                    f"{cpu_rate('json')} rows/s JSON, {cpu_rate('parquet')} upload, "
                    f"{cpu_rate('parquet_body')} as the body (random UUIDs "
                    f"{cpu_rate('json_random_ids')}, {cpu_rate('parquet_random_ids')}, "
                    f"{cpu_rate('parquet_body_random_ids')}); the anchor's "
                    f"{rows / anchor_cpu:,.0f}",
                    flush=True,
                )
    rows = batches * size
    stored = _stored(database)
    expected = repeat * 6 * rows + size + 2 * rows  # the warm-up: a batch, two uploads
    if stored != expected:
        raise RuntimeError(f"the store holds {stored} request ids, {expected} were sent")
    ratios = [s / a for s, a in zip(figures["json"], figures["anchor"], strict=True)]
    upload_ratios = [u / a for u, a in zip(figures["parquet"], figures["anchor"], strict=True)]
    body_ratios = [u / a for u, a in zip(figures["parquet_body"], figures["anchor"], strict=True)]

    def cpu(name: str) -> int:
        return round(rows / statistics.median(figures[f"{name}_cpu"]))

    return {
        "batches": batches,
        "batch_rows": size,
        "features": len(SCHEMA),
        "repeat": repeat,
        "json_rows_per_s": round(rows / statistics.median(figures["json"])),
        "parquet_rows_per_s": round(rows / statistics.median(figures["parquet"])),
        "anchor_rows_per_s": round(rows / statistics.median(figures["anchor"])),
        "json_to_anchor_ratio": round(statistics.median(ratios), 2),
        "parquet_to_anchor_ratio": round(statistics.median(upload_ratios), 2),
        "parquet_body_rows_per_s": round(rows / statistics.median(figures["parquet_body"])),
        "parquet_body_to_anchor_ratio": round(statistics.median(body_ratios), 2),
        "random_ids": random_ids,
        "json_random_ids_rows_per_s": round(rows / statistics.median(figures["json_random_ids"])),
        "parquet_random_ids_rows_per_s": round(
            rows / statistics.median(figures["parquet_random_ids"])
        ),
        "parquet_body_random_ids_rows_per_s": round(
            rows / statistics.median(figures["parquet_body_random_ids"])
        ),
        "server_cpu_json_random_ids_rows_per_s": cpu("json_random_ids"),
        "server_cpu_parquet_random_ids_rows_per_s": cpu("parquet_random_ids"),
        "server_cpu_parquet_body_random_ids_rows_per_s": cpu("parquet_body_random_ids"),
        "json_body_mib": round(len(bodies[0]) / 2**20, 2),
        "server_cpu_json_rows_per_s": cpu("json"),
        "server_cpu_parquet_rows_per_s": cpu("parquet"),
        "server_cpu_parquet_body_rows_per_s": cpu("parquet_body"),
        "anchor_cpu_rows_per_s": cpu("anchor"),
        "stored_rows": stored,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=10, help="batches per run")
    parser.add_argument("--size", type=int, default=10_000, help="records per batch")
    parser.add_argument("--repeat", type=int, default=3, help="runs (median)")
    parser.add_argument(
        "--random-ids", action="store_true", help="random UUIDs as request ids (a B-tree's worst)"
    )
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="warden-ingest-bench-") as folder:
        figures = run(
            options.batches,
            options.size,
            options.repeat,
            Path(folder),
            random_ids=options.random_ids,
        )
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
