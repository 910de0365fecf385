"""Benchmark: how long the ``warden`` command takes to start, and ``warden up`` to be ready.

Run ``python -m bench.cli_startup`` (``--runs`` sets the repetitions, default 7; ``--up-runs``
the ``warden up`` starts, default 3). Everything runs as a child process and is timed from spawn
to exit, side by side with anchors measured in the same run; CPU seconds (user + system, from
``wait4``) are reported beside wall seconds, since a busy shared machine stretches wall time but
not CPU.

* ``warden --help``, ``warden monitors --help``: typer only, nothing of the server; anchor
  ``python -c pass`` (the price of any Python program here);
* client-mode commands (``whoami``, ``monitors list``, ``approvals list``, ``--json``) against a
  live ``warden up``: typer, httpx and one REST call;
* ``warden up`` on a fresh data directory (the first start migrates the store), then again on
  the same store: seconds from spawn until ``GET /readyz`` answers 200, and the CPU seconds the
  process had used by then (all its threads: API, scheduler, worker; from ``/proc`` on Linux).
  Anchors: ``python -c "import fastapi, uvicorn"``, and a one-route FastAPI app under uvicorn
  timed the same way, started alternately with ``warden up``; beside them ``import api.app``.

The children write and read Python's bytecode cache (in a directory of their own, warmed by one
untimed run of each command), as an installed program does; an environment that sets
``PYTHONDONTWRITEBYTECODE`` recompiles every module of Warden at each start, which the figure
``import_app_uncached`` shows. Medians of the runs; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.processes import cpu_seconds, free_port

REPO = Path(__file__).resolve().parents[1]
WARDEN = str(Path(sys.executable).with_name("warden"))
HELP_TARGET_S = 0.3
UP_TARGET_S = 3.0


MINIMAL_APP = """
import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/readyz")
def readyz() -> dict[str, str]:
    return {"status": "ready"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
_BYTECODE = Path(tempfile.gettempdir()) / "warden-bench-bytecode"


def _env(data_dir: Path | None = None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPYCACHEPREFIX": str(_BYTECODE),
        **extra,
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if data_dir is not None:
        env["WARDEN_DATA_DIR"] = str(data_dir)
        env.pop("WARDEN_DATABASE_URL", None)
    return env


def timed(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv`` to its end; return (wall seconds, CPU seconds); fail loudly on exit != 0."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        assert child.stderr is not None
        raise RuntimeError(f"{' '.join(argv)} exited {child.returncode}: {child.stderr.read()!r}")
    if child.stderr is not None:
        child.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def median_of(argv: Sequence[str], env: dict[str, str], runs: int) -> dict[str, float]:
    """Return the median wall and CPU seconds of ``runs`` runs of ``argv`` (after one untimed)."""
    timed(argv, env)
    walls, cpus = zip(*(timed(argv, env) for _ in range(runs)), strict=True)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def ready_after(
    argv: Sequence[str], env: dict[str, str], cwd: Path, port: int
) -> tuple[subprocess.Popen[bytes], float, float | None]:
    """Start ``argv``; return it, the seconds until its ``/readyz`` answered 200 and its CPU."""
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = start + 300
    # One client for every attempt: ``httpx.get`` builds a client (and its TLS context) per
    # call, about 20 ms of CPU, which polling every 20 ms took from the process being timed.
    with httpx.Client(timeout=1) as poll:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}")
            try:
                if poll.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return process, time.perf_counter() - start, cpu_seconds(process.pid)
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"{' '.join(argv)} was not ready within 300 s")


def start_up(data_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], float, float | None]:
    """Start ``warden up``; return it, the seconds until ``/readyz`` answered 200 and its CPU."""
    argv = [WARDEN, "up", "--host", "127.0.0.1", "--port", str(port)]
    return ready_after(argv, _env(data_dir), data_dir.parent, port)


def minimal_app_ready(port: int) -> tuple[float, float | None]:
    """Start the one-route FastAPI app under uvicorn; return its seconds and CPU until ready."""
    argv = [sys.executable, "-c", MINIMAL_APP, str(port)]
    process, seconds, cpu = ready_after(argv, _env(), REPO, port)
    stop(process)
    return seconds, cpu


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop ``warden up`` as Ctrl-C would."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _bootstrap(data_dir: Path) -> str:
    """Migrate a store, create an administrator and a project; return the administrator's key."""
    env = _env(data_dir)
    subprocess.run([WARDEN, "migrate"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [WARDEN, "admin", "bootstrap", "--username", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    subprocess.run(
        [WARDEN, "admin", "project", "create", "bench"], env=env, check=True, capture_output=True
    )
    key = re.search(r"wdn_\S+", made.stdout)
    if key is None:
        raise RuntimeError(f"no key in {made.stdout!r}")
    return key.group(0)


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Measure everything; return the figures."""
    figures: dict[str, Any] = {"runs": options.runs, "up_runs": options.up_runs}
    plain = _env()
    figures["anchor_python_pass"] = median_of([sys.executable, "-c", "pass"], plain, options.runs)
    for name, argv in (
        ("help", [WARDEN, "--help"]),
        ("monitors_help", [WARDEN, "monitors", "--help"]),
    ):
        figures[name] = median_of(argv, plain, options.runs)
    # What `warden up` pays before it can answer: the libraries every FastAPI server imports,
    # and importing the app (everything it pulls), with and without a bytecode cache.
    few = min(options.runs, 3)
    figures["anchor_import_fastapi_uvicorn"] = median_of(
        [sys.executable, "-c", "import fastapi, uvicorn"], plain, few
    )
    figures["import_app"] = median_of([sys.executable, "-c", "import api.app"], plain, few)
    uncached = {**plain, "PYTHONDONTWRITEBYTECODE": "1"}
    del uncached["PYTHONPYCACHEPREFIX"]  # the libraries' own __pycache__, Warden compiled anew
    figures["import_app_uncached"] = median_of(
        [sys.executable, "-c", "import api.app"], uncached, few
    )

    with tempfile.TemporaryDirectory(prefix="warden-bench-") as root:
        port = free_port()
        warm = Path(root) / "warm" / ".warden"  # an untimed start fills the bytecode cache
        warm.parent.mkdir()
        stop(start_up(warm, port)[0])
        fresh = Path(root) / "fresh" / ".warden"
        fresh.parent.mkdir()
        process, figures["up_fresh_ready_s"], figures["up_fresh_ready_cpu_s"] = start_up(
            fresh, port
        )
        stop(process)

        data_dir = Path(root) / "store" / ".warden"
        data_dir.parent.mkdir()
        key = _bootstrap(data_dir)
        ready: list[float] = []
        ready_cpu: list[float] = []
        minimal: list[float] = []
        minimal_cpu: list[float] = []
        for attempt in range(options.up_runs):
            seconds, cpu = minimal_app_ready(port)
            minimal.append(seconds)
            if cpu is not None:
                minimal_cpu.append(cpu)
            process, seconds, cpu = start_up(data_dir, port)
            ready.append(seconds)
            if cpu is not None:
                ready_cpu.append(cpu)
            if attempt < options.up_runs - 1:
                stop(process)
        figures["up_ready_s"] = statistics.median(ready)
        figures["up_ready_cpu_s"] = statistics.median(ready_cpu) if ready_cpu else None
        figures["anchor_minimal_app_ready_s"] = statistics.median(minimal)
        figures["anchor_minimal_app_ready_cpu_s"] = (
            statistics.median(minimal_cpu) if minimal_cpu else None
        )
        try:
            client = _env(
                WARDEN_URL=f"http://127.0.0.1:{port}", WARDEN_API_KEY=key, WARDEN_PROJECT="bench"
            )
            for name, argv in (
                ("client_whoami", [WARDEN, "whoami", "--json"]),
                ("client_monitors_list", [WARDEN, "monitors", "list", "--json"]),
                ("client_approvals_list", [WARDEN, "approvals", "list", "--json"]),
            ):
                figures[name] = median_of(argv, client, options.runs)
        finally:
            stop(process)

    anchor = figures["anchor_python_pass"]["wall_s"]
    for name in ("help", "monitors_help", "client_whoami", "client_monitors_list"):
        figures[name]["x_anchor"] = figures[name]["wall_s"] / anchor
    figures["client_approvals_list"]["x_anchor"] = (
        figures["client_approvals_list"]["wall_s"] / anchor
    )
    figures["load_average_1m"] = os.getloadavg()[0]
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures; the last line is one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7, help="Runs of each command (median).")
    parser.add_argument("--up-runs", type=int, default=3, help="Starts of warden up (median).")
    options = parser.parse_args(argv)
    figures = run(options)
    anchor = figures["anchor_python_pass"]
    print(f"anchor `python -c pass`: {anchor['wall_s']:.3f} s wall, {anchor['cpu_s']:.3f} s CPU")
    for name in (
        "help", "monitors_help", "client_whoami", "client_monitors_list", "client_approvals_list",
    ):  # fmt: skip
        got = figures[name]
        print(
            f"{name:<24} {got['wall_s']:.3f} s wall ({got['x_anchor']:.1f}x anchor), "
            f"{got['cpu_s']:.3f} s CPU (target {HELP_TARGET_S} s)"
        )
    for name, label in (
        ("anchor_import_fastapi_uvicorn", "anchor `import fastapi, uvicorn`"),
        ("import_app", "import api.app"),
        ("import_app_uncached", "import api.app, no bytecode cache"),
    ):
        got = figures[name]
        print(f"{label:<34} {got['wall_s']:.3f} s wall, {got['cpu_s']:.3f} s CPU")
    print(
        f"anchor one-route FastAPI app under uvicorn ready: "
        f"{figures['anchor_minimal_app_ready_s']:.2f} s wall, "
        f"{figures['anchor_minimal_app_ready_cpu_s'] or float('nan'):.2f} s CPU"
    )
    print(
        f"warden up ready: {figures['up_ready_s']:.2f} s on an existing store, "
        f"{figures['up_fresh_ready_s']:.2f} s on a fresh one (target {UP_TARGET_S} s); "
        f"load average {figures['load_average_1m']:.1f}"
    )
    if figures["up_ready_cpu_s"] is not None and figures["up_fresh_ready_cpu_s"] is not None:
        print(
            f"warden up CPU until ready: {figures['up_ready_cpu_s']:.2f} s on an existing store, "
            f"{figures['up_fresh_ready_cpu_s']:.2f} s on a fresh one"
        )
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
