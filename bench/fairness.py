"""Benchmark: Warden's fairness metrics against fairlearn's ``MetricFrame`` on the same window.

Run ``python -m bench.fairness`` (default: 1,000,000 rows, sensitive features ``sex`` and
``race`` as categorical columns, the three feature sets ``sex``, ``race`` and ``sex&race``);
``--rows`` runs it small.

What is measured, in one process, in each of ``--repeats`` side-by-side rounds:

* fairlearn: one ``MetricFrame`` per feature set (selection rate, TPR, FPR, accuracy per group,
  the same four metrics Warden reports), point estimates only;
* Warden: ``compute_fairness`` on the same rows, with 300 bootstrap replicates per feature set
  (the default) on top of the point estimates; its time is the median of five calls around
  fairlearn's, and the speed-up is the median of the rounds' ratios;
* the reading anchor: one pass over every value of the window (``sum`` of the codes, labels and
  predictions);
* identity: every per-group number of Warden's against fairlearn's (largest absolute difference;
  a rate without a denominator, e.g. the TPR of a group without positives, is undefined in
  Warden and 0 in scikit-learn, and is left out — at 1,000,000 rows there is none).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("DO_NOT_TRACK", "1")

RACES = ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"]
SCOPES = [("sex",), ("race",), ("sex", "race")]


def make_window(rows: int, *, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Return sensitive columns (categorical, Adult's shares), labels and predictions."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(2, rows, p=[0.33, 0.67])
    race = rng.choice(5, rows, p=[0.854, 0.096, 0.031, 0.01, 0.009])
    base = 0.1 + 0.2 * sex + 0.03 * (race == 0)
    labels = (rng.random(rows) < base).astype(np.int64)
    flip = rng.random(rows) < 0.12 + 0.04 * (1 - sex)
    predicted = np.where(flip, 1 - labels, labels).astype(np.int64)
    frame = pd.DataFrame(
        {
            "sex": pd.Categorical.from_codes(sex.tolist(), categories=pd.Index(["Female", "Male"])),
            "race": pd.Categorical.from_codes(race.tolist(), categories=pd.Index(sorted(RACES))),
        }
    )
    return frame, labels, predicted


def _read_once(frame: pd.DataFrame, labels: np.ndarray, predicted: np.ndarray) -> int:
    codes = sum(int(frame[name].cat.codes.to_numpy().sum()) for name in frame.columns)
    return codes + int(labels.sum()) + int(predicted.sum())


def _seconds(call: Any, times: int) -> list[float]:
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def _fairlearn_frames(frame: pd.DataFrame, labels: np.ndarray, predicted: np.ndarray) -> Any:
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    metrics = {
        "selection_rate": selection_rate,
        "true_positive_rate": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "accuracy": accuracy_score,
    }
    return [
        MetricFrame(
            metrics=metrics, y_true=labels, y_pred=predicted, sensitive_features=frame[list(scope)]
        ).by_group
        for scope in SCOPES
    ]


def _largest_difference(ours: Any, theirs: list[pd.DataFrame]) -> float:
    worst = 0.0
    for scope, by_group in zip(SCOPES, theirs, strict=True):
        disparity = next(d for d in ours.disparities if d.features == scope)
        if len(disparity.groups) != len(by_group):
            return float("inf")
        for group in disparity.groups:
            key = group.values[0] if len(scope) == 1 else group.values
            for metric, expected in by_group.loc[key].items():
                value = group.metrics[str(metric)].value
                if value is None:  # no denominator: Warden says undefined, sklearn says 0
                    continue
                worst = max(worst, abs(value - float(expected)))
    return worst


def run(rows: int, *, seed: int, repeats: int) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    from monitors.fairness import FairnessConfig, compute_fairness

    frame, labels, predicted = make_window(rows, seed=seed)
    config = FairnessConfig(sensitive_features=("sex", "race"), min_group_size=1)
    ours_call = partial(
        compute_fairness, sensitive=frame, y_pred=predicted, y_true=labels, config=config
    )
    ours = ours_call()  # warm up
    reading = float(np.median(_seconds(partial(_read_once, frame, labels, predicted), 5)))
    ratios: list[float] = []
    rounds: list[dict[str, float]] = []
    theirs: list[pd.DataFrame] = []
    for number in range(1, repeats + 1):
        before = _seconds(ours_call, 3)
        started = time.perf_counter()
        theirs = _fairlearn_frames(frame, labels, predicted)
        fairlearn_seconds = time.perf_counter() - started
        after = _seconds(ours_call, 2)
        warden_seconds = float(np.median(before + after))
        ratios.append(fairlearn_seconds / warden_seconds)
        rounds.append(
            {"fairlearn_seconds": round(fairlearn_seconds, 3),
             "warden_seconds": round(warden_seconds, 4), "ratio": round(ratios[-1], 1)}
        )  # fmt: skip
        print(
            f"round {number}: fairlearn {fairlearn_seconds:.3f} s (3 frames, no intervals); "
            f"warden {warden_seconds:.4f} s (with {config.bootstrap_samples} bootstrap "
            f"replicates); ratio {ratios[-1]:.1f}x",
            flush=True,
        )
    median_round = rounds[int(np.argsort(ratios)[len(ratios) // 2])]
    difference = _largest_difference(ours, theirs)
    print(
        f"speedup {np.median(ratios):.1f}x (median of {repeats}); reading every value once "
        f"{reading:.4f} s (warden {median_round['warden_seconds'] / reading:.1f}x); "
        f"largest difference from fairlearn {difference:.2e}",
        flush=True,
    )
    return {
        "rows": rows,
        "scopes": ["&".join(scope) for scope in SCOPES],
        "bootstrap_samples": config.bootstrap_samples,
        "rounds": rounds,
        "fairlearn_seconds": median_round["fairlearn_seconds"],
        "warden_seconds": median_round["warden_seconds"],
        "speedup": round(float(np.median(ratios)), 1),
        "read_once_seconds": round(reading, 5),
        "warden_read_ratio": round(median_round["warden_seconds"] / reading, 2),
        "max_abs_difference": difference,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="side-by-side rounds")
    options = parser.parse_args(argv)
    figures = run(options.rows, seed=options.seed, repeats=options.repeats)
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
