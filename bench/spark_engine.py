"""Benchmark: the local and Spark engines summarising one window, and where Spark pays off.

Run ``python -m bench.spark_engine --rows 10000000`` for windows of 100,000, 1,000,000 and
10,000,000 rows resampled from Adult's test split with a planted shift, against the Adult
training baseline (``--rows`` sets the largest window, the others are 1/10 and 1/100 of it;
the default, 1,000,000, keeps a run to a few minutes).

Per window size, in one process, on the same Parquet file:

* local: ``compute_drift`` streaming the file in this process (the anchor);
* Spark: ``compute_drift(engine="spark")`` on a warm ``local[N]`` session (``--master``); the
  session's start (JVM and Python workers) is timed once, apart;
* agreement: both engines' verdicts per column must be identical and every statistic equal
  within 1e-9 relative, else the benchmark fails;
* ``--kinds`` (default ``drift,quality,performance,fairness``): quality, performance (with ROC
  AUC) and fairness (sex, race and both) run through ``run_monitor`` on the same file on both
  engines, their findings and reports compared the same way. The window carries a rule's score
  and decision (``score``, ``prediction``) and Adult's income as ``label``.

"Pays off" is, per kind, the smallest size where the warm Spark run beats the local one;
``null`` when it never does at the sizes run. The last line printed is one JSON object with the
figures.
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
    logit = (
        0.35 * (source["education_num"] - 10)
        + 0.03 * (source["age"] - 38)
        + 0.02 * (source["hours_per_week"] - 40)
        + 0.0003 * source["capital_gain"]
        - 1.2
    )
    source["score"] = 1 / (1 + np.exp(-logit))
    source["prediction"] = (source["score"] > 0.5).astype(np.int64)
    source["label"] = source["income"]
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


KINDS = ("drift", "quality", "performance", "fairness")


def _spec(kind: str) -> Any:
    from monitors.spec import MonitorSpec

    if kind == "quality":
        return MonitorSpec(kind="quality")
    if kind == "performance":
        return MonitorSpec(
            kind="performance",
            label_column="label",
            prediction_column="prediction",
            score_column="score",
        )
    return MonitorSpec(
        kind="fairness",
        sensitive_features=["sex", "race"],
        label_column="label",
        prediction_column="prediction",
        options={"intersections": [["sex", "race"]]},
    )


def _timed_kind(kind: str, baseline: Any, path: Path, master: str) -> dict[str, Any]:
    """Run one kind on both engines; fail unless findings and reports agree."""
    from monitors.kinds import MonitorContext, run_monitor

    spec = _spec(kind)
    started = time.perf_counter()
    local = run_monitor(spec, MonitorContext(window=path, baseline=baseline))
    local_s = time.perf_counter() - started
    started = time.perf_counter()
    context = MonitorContext(window=path, baseline=baseline, engine="spark", spark_master=master)
    spark = run_monitor(spec, context)
    spark_s = time.perf_counter() - started
    left = [f.to_dict() for f in local.findings], local.report
    right = [f.to_dict() for f in spark.findings], spark.report
    if not _agree(list(left), list(right)):
        raise SystemExit(f"engines disagree on {kind}")
    return {
        "local_s": round(local_s, 2),
        "spark_s": round(spark_s, 2),
        "spark_over_local": round(spark_s / local_s, 2),
        "identical_verdicts": True,
        "status": spark.status.value,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print its figures (last line: one JSON object)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="largest window's rows")
    parser.add_argument("--master", default="local[2]", help="Spark master (local[N])")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    args = parser.parse_args(argv)
    kinds = [kind for kind in args.kinds.split(",") if kind]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; use {list(KINDS)}")

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
                run: dict[str, Any] = {"rows": rows, "kinds": {}}
                if "drift" in kinds:
                    started = time.perf_counter()
                    local = compute_drift(baseline, path)
                    local_s = time.perf_counter() - started
                    started = time.perf_counter()
                    spark = compute_drift(baseline, path, engine="spark", spark_master=args.master)
                    spark_s = time.perf_counter() - started
                    agree = _agree(local.to_dict(), spark.to_dict())
                    if not agree:
                        raise SystemExit(f"engines disagree on the {rows:,}-row window")
                    run["kinds"]["drift"] = {
                        "local_s": round(local_s, 2),
                        "spark_s": round(spark_s, 2),
                        "spark_over_local": round(spark_s / local_s, 2),
                        "identical_verdicts": agree,
                        "dataset_drift": spark.dataset_drift,
                        "drifted_columns": spark.drifted_columns,
                    }
                for kind in kinds:
                    if kind != "drift":
                        run["kinds"][kind] = _timed_kind(kind, baseline, path, args.master)
                runs.append(run)
                for kind, figures in run["kinds"].items():
                    print(
                        f"{rows:>12,} rows  {kind:<11} local {figures['local_s']:7.1f} s  "
                        f"spark {figures['spark_s']:7.1f} s  "
                        f"ratio {figures['spark_over_local']:5.2f}",
                        flush=True,
                    )
                path.unlink()
    finally:
        stop_spark()
    pays_off = {
        kind: next(
            (
                run["rows"]
                for run in runs
                if run["kinds"][kind]["spark_s"] < run["kinds"][kind]["local_s"]
            ),
            None,
        )
        for kind in kinds
    }
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
