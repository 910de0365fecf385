"""Benchmark: Warden's drift against Evidently 0.7's ``DataDriftPreset`` on the same data.

Run ``python -m bench.drift`` (defaults: 1,000,000 rows x 25 columns against a reference of the
same size, three side-by-side rounds, then a 10,000,000-row window streamed from Parquet);
``--rows`` runs it small.

What is measured, in one process:

* time: wall clock of Evidently's ``Report([DataDriftPreset()], include_tests=True).run`` and of
  Warden's ``compute_drift`` against a baseline built beforehand (building the baseline, done
  once per model version, is timed and printed apart). Each of ``--repeats`` rounds runs
  Evidently once and Warden five times around it (their median), and the speed-up is the
  median of the rounds' ratios, so a busy machine slows both sides of a ratio alike;
* CPU time: the process's CPU seconds (``time.process_time``, every thread) of the same calls,
  and their ratio per round: what each side costs whatever else the machine runs (on a shared
  machine wall time also holds the time spent waiting for a core). Warden's drift runs on one
  thread; the load average is printed with each round;
* the reading anchors: one vectorised pass over every value of the window in memory (``sum``
  of each numeric column and of each categorical column's codes), the least any statistic
  over every value can cost; for the Parquet window, decoding the file once batch by batch,
  as the window streams. Warden's times are reported as multiples of them;
* memory: the peak resident-set growth during each call: freed heap pages are handed back
  first (``malloc_trim``), then ``/proc/self/clear_refs`` resets the high-water mark and the
  growth is ``VmHWM`` minus ``VmRSS`` at the start. Warden's peak is cross-checked with
  ``tracemalloc`` (numpy reports its buffers to it) in a second, untimed run, and the larger
  of the two is the figure compared;
* accuracy: every Warden statistic against the exact value from scipy on the full data;
* agreement: Warden's drift verdict per column against Evidently's.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("DO_NOT_TRACK", "1")

NUMERIC = 20
CATEGORICAL = 5
SHIFTED_NUMERIC = {2, 5, 9, 13, 17}
SHIFTED_CATEGORICAL = {1, 3}
_LIBC = ctypes.CDLL("libc.so.6")
LETTERS = np.array([f"cat_{index:02d}" for index in range(40)])


def _numeric(index: int, rng: np.random.Generator, rows: int, *, shifted: bool) -> np.ndarray:
    kind = index % 5
    if kind == 0:
        values = rng.normal(0.0, 1.0, rows)
    elif kind == 1:
        values = rng.lognormal(0.0, 0.8, rows)
    elif kind == 2:
        values = rng.exponential(2.0, rows)
    elif kind == 3:
        values = rng.uniform(-5.0, 5.0, rows)
    else:
        values = np.where(rng.random(rows) < 0.3, rng.normal(-2, 0.5, rows), rng.gamma(3, 1, rows))
    if shifted:
        values = values * 1.25 + 0.5 * float(np.std(values[:10_000]))
    return values.astype(np.float64)


def _categorical(
    index: int, rng: np.random.Generator, rows: int, *, shifted: bool
) -> pd.Categorical:
    size = (5, 8, 12, 20, 40)[index]
    weights = np.linspace(1.0, 3.0, size)
    if shifted:
        weights = weights[::-1] ** 2
    codes = rng.choice(size, rows, p=weights / weights.sum())
    return pd.Categorical.from_codes(codes.tolist(), categories=pd.Index(LETTERS[:size]))


def make_frame(rows: int, *, seed: int, current: bool) -> pd.DataFrame:
    """Build 20 numeric and 5 categorical columns; in ``current`` some columns shift."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for index in range(NUMERIC):
        shifted = current and index in SHIFTED_NUMERIC
        columns[f"num_{index:02d}"] = _numeric(index, rng, rows, shifted=shifted)
    for index in range(CATEGORICAL):
        shifted = current and index in SHIFTED_CATEGORICAL
        columns[f"cat_{index}"] = _categorical(index, rng, rows, shifted=shifted)
    return pd.DataFrame(columns)


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


class Measure:
    """Wall time, CPU time and peak RSS growth of a block."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_mib: float = 0.0


@contextmanager
def measure() -> Iterator[Measure]:
    """Time a block and measure its peak resident-set growth."""
    result = Measure()
    gc.collect()
    _LIBC.malloc_trim(0)  # hand freed heap pages back, so reuse cannot hide new allocations
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    start_rss = _status_kib("VmRSS")
    started, cpu_started = time.perf_counter(), time.process_time()
    yield result
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu_started
    result.peak_mib = max(_status_kib("VmHWM") - start_rss, 0) / 1024


def _exact(reference: pd.DataFrame, current: pd.DataFrame, name: str, method: str) -> float:
    from scipy import stats
    from scipy.spatial import distance

    if method == "wasserstein":
        ref = reference[name].to_numpy(np.float64)
        return float(stats.wasserstein_distance(ref, current[name].to_numpy(np.float64))) / max(
            float(np.std(ref)), 0.001
        )
    keys = sorted(set(reference[name].unique()) | set(current[name].unique()), key=str)
    ref_counts = reference[name].value_counts()
    cur_counts = current[name].value_counts()
    ref_shares = np.array([ref_counts.get(key, 0) for key in keys]) / len(reference)
    cur_shares = np.array([cur_counts.get(key, 0) for key in keys]) / len(current)
    return float(distance.jensenshannon(ref_shares, cur_shares))


def _write_parquet(path: Path, rows: int, *, seed: int, chunk: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: Any = None
    written = 0
    part = 0
    while written < rows:
        size = min(chunk, rows - written)
        frame = make_frame(size, seed=seed + 1000 + part, current=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        written += size
        part += 1
    if writer is not None:
        writer.close()


def _read_once(frame: pd.DataFrame) -> float:
    """Touch every value once: the floor of any statistic over the whole window."""
    total = 0.0
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            total += float(column.cat.codes.to_numpy().sum())
        else:
            total += float(column.to_numpy().sum())
    return total


def _seconds(call: Any, times: int) -> list[tuple[float, float]]:
    """Return the wall and CPU seconds of each of ``times`` calls."""
    seconds = []
    for _ in range(times):
        started, cpu_started = time.perf_counter(), time.process_time()
        call()
        seconds.append((time.perf_counter() - started, time.process_time() - cpu_started))
    return seconds


def _median_seconds(call: Any, times: int) -> tuple[float, float]:
    """Return the median wall and median CPU seconds of ``times`` calls."""
    wall, cpu = zip(*_seconds(call, times), strict=True)
    return float(np.median(wall)), float(np.median(cpu))


def _load() -> str:
    return "load average " + ", ".join(f"{value:.1f}" for value in os.getloadavg())


def _read_file_once(path: Path) -> None:
    """Decode every value of a Parquet file once, batch by batch (as the window streams)."""
    import pyarrow.parquet as pq

    from monitors.drift import BATCH_ROWS

    source = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    for _ in source.iter_batches(batch_size=BATCH_ROWS, use_threads=False):
        pass


def run(
    rows: int, parquet_rows: int, *, seed: int, evidently: bool, repeats: int = 3
) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    from monitors.baseline import build_baseline
    from monitors.drift import compute_drift

    print(f"generating {rows:,} reference and {rows:,} current rows x 25 columns", flush=True)
    reference = make_frame(rows, seed=seed, current=False)
    current = make_frame(rows, seed=seed + 1, current=True)

    with measure() as building:
        baseline = build_baseline(reference, sample_size=0)
    print(f"warden baseline: {building.seconds:.3f} s (once per model version)", flush=True)
    # Load scipy and numba's compiled loops before measuring (the codes' loop is first used
    # here: the baseline build counts no codes); their one-time cost is stated apart.
    compute_drift(baseline, current)
    with measure() as warden:
        ours = compute_drift(baseline, current, fdr=None)
    print(f"warden drift:    {warden.seconds:.3f} s, peak +{warden.peak_mib:.1f} MiB", flush=True)
    reading, reading_cpu = _median_seconds(partial(_read_once, current), 5)
    warden_median, warden_cpu = _median_seconds(
        partial(compute_drift, baseline, current, fdr=None), 5
    )
    print(
        f"reading every value once: {reading:.4f} s ({reading_cpu:.4f} s CPU); warden (median "
        f"of 5) {warden_median:.4f} s = {warden_median / reading:.1f}x reading "
        f"({warden_cpu:.4f} s CPU = {warden_cpu / reading_cpu:.1f}x); {_load()}",
        flush=True,
    )
    tracemalloc.start()
    compute_drift(baseline, current, fdr=None)
    traced_mib = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"warden drift tracemalloc peak: {traced_mib:.1f} MiB", flush=True)
    warden_peak = max(warden.peak_mib, traced_mib)  # the less flattering of the two

    errors: dict[str, float] = {}
    for column in ours.columns:
        exact = _exact(reference, current, column.column, column.method.value)
        value = column.value or 0.0
        errors[column.column] = abs(value - exact) / exact if exact else abs(value)
    worst = max(errors, key=errors.__getitem__)
    print(f"max relative error vs scipy on full data: {errors[worst]:.5%} ({worst})", flush=True)

    figures: dict[str, Any] = {
        "rows": rows,
        "columns": len(reference.columns),
        "warden_seconds": round(warden_median, 4),
        "read_once_seconds": round(reading, 4),
        "warden_read_ratio": round(warden_median / reading, 2),
        "warden_cpu_seconds": round(warden_cpu, 4),
        "read_once_cpu_seconds": round(reading_cpu, 4),
        "warden_read_cpu_ratio": round(warden_cpu / reading_cpu, 2),
        "warden_peak_mib": round(warden_peak, 2),
        "warden_rss_peak_mib": round(warden.peak_mib, 2),
        "warden_tracemalloc_peak_mib": round(traced_mib, 2),
        "warden_baseline_seconds": round(building.seconds, 4),
        "max_relative_error": errors[worst],
        "drifted_columns": ours.drifted_columns,
        "memory_method": "peak RSS growth (VmHWM after clear_refs)",
    }
    if evidently:
        from monitors.evidently_report import evidently_verdicts

        evidently_verdicts(reference.head(200), current.head(200))  # import and warm up
        ratios: list[float] = []
        cpu_ratios: list[float] = []
        rounds: list[dict[str, Any]] = []
        for round_number in range(1, repeats + 1):
            load_before = _load()
            before = _seconds(partial(compute_drift, baseline, current, fdr=None), 3)
            with measure() as theirs_measure:
                theirs = evidently_verdicts(reference, current)
            after = _seconds(partial(compute_drift, baseline, current, fdr=None), 2)
            ours_seconds = float(np.median([wall for wall, _ in before + after]))
            ours_cpu = float(np.median([cpu for _, cpu in before + after]))
            ratios.append(theirs_measure.seconds / ours_seconds)
            cpu_ratios.append(theirs_measure.cpu_seconds / ours_cpu)
            rounds.append(
                {"evidently_seconds": round(theirs_measure.seconds, 3),
                 "evidently_cpu_seconds": round(theirs_measure.cpu_seconds, 3),
                 "evidently_peak_mib": round(theirs_measure.peak_mib, 1),
                 "warden_seconds": round(ours_seconds, 4), "warden_cpu_seconds": round(ours_cpu, 4),
                 "ratio": round(ratios[-1], 1), "cpu_ratio": round(cpu_ratios[-1], 1),
                 "load_before": load_before, "load_after": _load()}
            )  # fmt: skip
            print(
                f"round {round_number}: evidently {theirs_measure.seconds:.3f} s "
                f"({theirs_measure.cpu_seconds:.3f} s CPU), peak +{theirs_measure.peak_mib:.1f} "
                f"MiB; warden {ours_seconds:.4f} s ({ours_cpu:.4f} s CPU); ratio "
                f"{ratios[-1]:.1f}x (CPU {cpu_ratios[-1]:.1f}x); before: {load_before}, "
                f"after: {_load()}",
                flush=True,
            )
        median_round = rounds[int(np.argsort(ratios)[len(ratios) // 2])]
        agreeing = [c.column for c in ours.columns if c.drifted == theirs[c.column].drifted]
        figures.update(
            rounds=rounds,
            evidently_seconds=median_round["evidently_seconds"],
            evidently_peak_mib=median_round["evidently_peak_mib"],
            speedup=round(float(np.median(ratios)), 1),
            cpu_speedup=round(float(np.median(cpu_ratios)), 1),
            memory_ratio=round(median_round["evidently_peak_mib"] / max(warden_peak, 0.01), 1),
            verdict_agreement=len(agreeing),
            evidently_drifted_columns=sorted(c for c, v in theirs.items() if v.drifted),
        )
        print(
            f"speedup {figures['speedup']}x (median of {repeats} rounds; in CPU time "
            f"{figures['cpu_speedup']}x), "
            f"memory ratio {figures['memory_ratio']}x, "
            f"verdicts agree on {len(agreeing)}/{len(ours.columns)} columns",
            flush=True,
        )
    del reference, current

    if parquet_rows:
        with tempfile.TemporaryDirectory(prefix="warden-bench-") as directory:
            path = Path(directory) / "window.parquet"
            print(f"writing a {parquet_rows:,}-row Parquet window", flush=True)
            _write_parquet(path, parquet_rows, seed=seed, chunk=min(rows, 1_000_000))
            parquet_read = _median_seconds(lambda: _read_file_once(path), 3)[0]
            with measure() as streamed:
                from_file = compute_drift(baseline, path, fdr=None)
            print(
                f"parquet window:  {streamed.seconds:.3f} s, peak +{streamed.peak_mib:.1f} MiB, "
                f"drifted {from_file.drifted_columns}; reading the file once "
                f"{parquet_read:.3f} s ({streamed.seconds / parquet_read:.2f}x)",
                flush=True,
            )
            figures.update(
                parquet_rows=parquet_rows,
                parquet_seconds=round(streamed.seconds, 3),
                parquet_read_seconds=round(parquet_read, 3),
                parquet_read_ratio=round(streamed.seconds / parquet_read, 2),
                parquet_peak_mib=round(streamed.peak_mib, 1),
                parquet_file_mib=round(path.stat().st_size / 2**20, 1),
            )
    return figures


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side")
    parser.add_argument(
        "--parquet-rows", type=int, default=None, help="rows of the Parquet window (10x rows)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-evidently", action="store_true", help="time Warden only")
    parser.add_argument("--repeats", type=int, default=3, help="side-by-side rounds (median ratio)")
    options = parser.parse_args(argv)
    parquet_rows = options.rows * 10 if options.parquet_rows is None else options.parquet_rows
    figures = run(
        options.rows, parquet_rows, seed=options.seed, evidently=not options.skip_evidently,
        repeats=options.repeats,
    )  # fmt: skip
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
