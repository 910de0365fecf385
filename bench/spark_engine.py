"""Benchmark: the local and Spark engines summarising one drift window, and where Spark pays off.

Run ``python -m bench.spark_engine --rows 10000000`` for windows of 100,000, 1,000,000 and
10,000,000 rows resampled from Adult's test split with a planted shift, against the Adult
training baseline (``--rows`` sets the largest window, the others are 1/10 and 1/100 of it;
the default, 1,000,000, keeps a run to a few minutes).

Per window size, in one process, on the same Parquet file:

* local: ``compute_drift`` streaming the file in this process (the anchor);
* Spark: ``compute_drift(engine="spark")`` on a warm ``local[N]`` session (``--master``); the
  session's start (JVM and Python workers) is timed once, apart;
* agreement: both engines' verdicts per column must be identical and every statistic equal
  within 1e-9 relative, else the benchmark fails.

"Pays off" is the smallest size where the warm Spark run beats the local one; ``null`` when it
never does at the sizes run. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

os.environ.setdefault("DO_NOT_TRACK", "1")

CHUNK = 1_000_000


def write_window(path: Path, rows: int, *, seed: int) -> None:
    """Resample Adult's test rows (with replacement) into ``rows`` rows, shifted, in chunks."""
    from tests.adult import adult_test

    source = adult_test()
    source["hours_per_week"] = source["hours_per_week"] + 10
    source.loc[source.index[::5], "workclass"] = "?"
    rng = np.random.default_rng(seed)
    writer: pq.ParquetWriter | None = None
    try:
        for start in range(0, rows, CHUNK):
            take = min(CHUNK, rows - start)
            picked = source.iloc[rng.integers(0, len(source), take)]
            table = pa.Table.from_pandas(picked, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=250_000)
    finally:
        if writer is not None:
            writer.close()


def _agree(local: Any, spark: Any) -> bool:
    if isinstance(local, float) and isinstance(spark, float):
        both_nan = math.isnan(local) and math.isnan(spark)
        return both_nan or math.isclose(local, spark, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(local, dict) and isinstance(spark, dict):
        return local.keys() == spark.keys() and all(_agree(local[k], spark[k]) for k in local)
    if isinstance(local, list) and isinstance(spark, list):
        return len(local) == len(spark) and all(
            _agree(a, b) for a, b in zip(local, spark, strict=True)
        )
    return bool(local == spark)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print its figures (last line: one JSON object)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="largest window's rows")
    parser.add_argument("--master", default="local[2]", help="Spark master (local[N])")
    args = parser.parse_args(argv)

    from monitors.baseline import build_baseline
    from monitors.drift.verdicts import compute_drift
    from monitors.spark_engine import spark_session, stop_spark
    from tests.adult import adult_train

    baseline = build_baseline(adult_train())
    sizes = sorted({max(args.rows // 100, 1_000), max(args.rows // 10, 1_000), args.rows})
    started = time.perf_counter()
    spark_session(args.master)
    startup = time.perf_counter() - started
    print(f"spark session start ({args.master}): {startup:.1f} s", flush=True)
    runs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="warden-bench-spark-") as folder:
            for rows in sizes:
                path = Path(folder) / f"window-{rows}.parquet"
                write_window(path, rows, seed=rows)
                started = time.perf_counter()
                local = compute_drift(baseline, path)
                local_s = time.perf_counter() - started
                started = time.perf_counter()
                spark = compute_drift(baseline, path, engine="spark", spark_master=args.master)
                spark_s = time.perf_counter() - started
                agree = _agree(local.to_dict(), spark.to_dict())
                if not agree:
                    raise SystemExit(f"engines disagree on the {rows:,}-row window")
                run = {
                    "rows": rows,
                    "local_s": round(local_s, 2),
                    "spark_s": round(spark_s, 2),
                    "spark_over_local": round(spark_s / local_s, 2),
                    "identical_verdicts": agree,
                    "dataset_drift": spark.dataset_drift,
                    "drifted_columns": spark.drifted_columns,
                }
                runs.append(run)
                print(
                    f"{rows:>12,} rows  local {local_s:7.1f} s  spark {spark_s:7.1f} s  "
                    f"ratio {spark_s / local_s:5.2f}  drifted {spark.drifted_columns}",
                    flush=True,
                )
                path.unlink()
    finally:
        stop_spark()
    pays_off = next((run["rows"] for run in runs if run["spark_s"] < run["local_s"]), None)
    figures = {
        "bench": "spark_engine",
        "master": args.master,
        "cpus": os.cpu_count(),
        "spark_startup_s": round(startup, 2),
        "runs": runs,
        "spark_pays_off_from_rows": pays_off,
    }
    print(json.dumps(figures), flush=True)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
