"""Benchmark: what logging to Warden costs the serving code, with warden-client and without.

Run ``python -m bench.client_overhead`` (defaults: 50,000 records through the client, 1,000
plain posts); ``--records`` runs it small. Two stand-ins for Warden run in threads of this
process: a healthy one (answers every POST at once, 201) and a stalled one (accepts the
connection, never answers: Warden hung, or a network partition).

What is measured, per call on the caller's thread (``perf_counter_ns`` around the call):

* ``WardenClient.log`` against each server: median, p99 and max microseconds;
* a plain synchronous ``httpx.post`` of each record (what serving code would otherwise do), and
  the same through one reused ``httpx.Client`` (healthy server only), against the same servers:
  against the stalled one every call waits for its timeout, so only a few are made;
* memory: ``tracemalloc``'s peak while the client logs ``--records`` and a quarter of that into
  the stalled server (timing runs are untraced). The client holds at most ``--max-queue``
  records and spills the rest to its disk spool, so the peak stays flat as records grow.

The last line printed is one JSON object with the figures. Needs warden-client importable
(``make`` installs it with ``pip install -e client``).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from warden_client import WardenClient

DEPLOYMENT = "6f1c2a52-8d6b-4c61-9b0e-5b8f0c6f2a10"
PATH = f"/api/v1/projects/bench/deployments/{DEPLOYMENT}/inferences"


class _Accept(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"batch_id":null,"accepted":1,"duplicates":0}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the benchmark's output to its figures."""


@contextmanager
def healthy_server() -> Iterator[str]:
    """Serve 201 to every POST on 127.0.0.1; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def stalled_server() -> Iterator[str]:
    """Listen on 127.0.0.1 and never answer (the kernel completes connections); yield the URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def record(index: int) -> dict[str, Any]:
    """Return the features of one made-up credit decision."""
    return {"amount": index % 997 / 7, "country": ("fr", "de", "us")[index % 3], "age": index % 90}


def _summary(nanoseconds: list[int]) -> dict[str, float]:
    ordered = sorted(nanoseconds)
    return {
        "median_us": round(statistics.median(ordered) / 1000, 2),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000, 2),
        "max_us": round(ordered[-1] / 1000, 2),
    }


def time_client(url: str, records: int, options: argparse.Namespace) -> tuple[list[int], int]:
    """Time ``log`` per record; return the timings and how many records went to the spool."""
    timings: list[int] = []
    with tempfile.TemporaryDirectory() as spool:
        client = WardenClient(
            url, "bench", deployment=DEPLOYMENT, api_key="bench", spool_dir=Path(spool),
            batch_size=options.batch_size, max_queue=options.max_queue,
            timeout=options.timeout,
        )  # fmt: skip
        clock = time.perf_counter_ns
        for index in range(records):
            features = record(index)
            started = clock()
            client.log(features, prediction=index % 2, score=0.5)
            timings.append(clock() - started)
        client.close(timeout=options.timeout)
        return timings, client.stats.spooled


def peak_mib(run: Callable[[], object]) -> float:
    """Return ``tracemalloc``'s peak, in MiB, while ``run`` runs."""
    tracemalloc.start()
    try:
        run()
        return round(tracemalloc.get_traced_memory()[1] / 2**20, 2)
    finally:
        tracemalloc.stop()


def time_plain(
    url: str, records: int, timeout: float, *, session: bool = False
) -> tuple[list[int], int]:
    """Time one synchronous post per record; return the timings and failures.

    ``httpx.post`` builds a client (and its TLS context) per call, as most serving code does;
    ``session=True`` reuses one ``httpx.Client`` and its connection, the best a plain post gets.
    """
    timings: list[int] = []
    failures = 0
    with httpx.Client(timeout=timeout) as reused:
        post = reused.post if session else httpx.post
        for index in range(records):
            body = {"records": [{"request_id": uuid.uuid4().hex, "features": record(index)}]}
            started = time.perf_counter_ns()
            try:
                post(url + PATH, json=body, timeout=timeout)
            except httpx.HTTPError:
                failures += 1
            timings.append(time.perf_counter_ns() - started)
    return timings, failures


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Measure every figure; return them."""
    figures: dict[str, Any] = {
        "records": options.records,
        "plain_records": options.plain_records,
        "max_queue": options.max_queue,
        "batch_size": options.batch_size,
        "timeout_s": options.timeout,
    }
    with healthy_server() as url:
        timings, _ = time_client(url, options.records, options)
        figures["client_healthy"] = _summary(timings)
        timings, _ = time_plain(url, options.plain_records, options.timeout)
        figures["plain_healthy"] = _summary(timings)
        timings, _ = time_plain(url, options.plain_records, options.timeout, session=True)
        figures["plain_session_healthy"] = _summary(timings)
    with stalled_server() as url:
        timings, spooled = time_client(url, options.records, options)
        figures["client_stalled"] = _summary(timings)
        figures["client_stalled_spooled"] = spooled
        timings, failures = time_plain(url, options.stalled_plain, options.timeout)
        figures["plain_stalled"] = _summary(timings)
        figures["plain_stalled_failures"] = failures
        quarter = max(options.records // 4, options.max_queue)
        figures["client_stalled_peak_mib"] = peak_mib(
            lambda: time_client(url, options.records, options)
        )
        figures["client_stalled_peak_mib_quarter"] = peak_mib(
            lambda: time_client(url, quarter, options)
        )
        figures["quarter_records"] = quarter
        figures["plain_stalled_peak_mib"] = peak_mib(
            lambda: time_plain(url, options.stalled_plain, options.timeout)
        )
    figures["healthy_median_speedup"] = round(
        figures["plain_healthy"]["median_us"] / figures["client_healthy"]["median_us"], 1
    )
    figures["stalled_median_speedup"] = round(
        figures["plain_stalled"]["median_us"] / figures["client_stalled"]["median_us"], 1
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print a table and the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=50_000, help="records through the client")
    parser.add_argument("--plain-records", type=int, default=1_000, help="plain posts, healthy")
    parser.add_argument("--stalled-plain", type=int, default=5, help="plain posts, stalled")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--max-queue", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request")
    figures = run(parser.parse_args(argv))
    print(f"{'per call (µs)':<28}{'median':>12}{'p99':>12}{'max':>14}")
    names = ("client_healthy", "plain_healthy", "plain_session_healthy")
    for name in (*names, "client_stalled", "plain_stalled"):
        row = figures[name]
        print(f"{name:<28}{row['median_us']:>12}{row['p99_us']:>12}{row['max_us']:>14}")
    print(
        f"peak memory into a stalled server: client {figures['client_stalled_peak_mib']} MiB "
        f"for {figures['records']:,} records, {figures['client_stalled_peak_mib_quarter']} MiB "
        f"for {figures['quarter_records']:,}"
    )
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
