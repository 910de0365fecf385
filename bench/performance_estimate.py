"""Benchmark: Warden's performance estimation against NannyML 0.13 on the same window.

Run ``python -m bench.performance_estimate`` (defaults: NannyML's own shipped data, the car-loan
classifier with 50,000 reference and 50,000 window rows for CBPE, the car-price regressor with
60,000 and 60,000 for DLE); ``--rows N`` takes the first N rows of each side.

What is measured, in one process, each library importing before the clock starts:

* time: wall clock of fitting on the reference, then estimating the whole window as one chunk
  (NannyML: ``CBPE``/``DLE`` ``fit`` and ``estimate`` with ``chunk_size`` the window's length;
  Warden: ``fit_classification``/``fit_regression`` and ``estimate_*``); both tree learners
  run on one thread (LightGBM ``n_jobs=1``; Warden's loss model always does);
* memory: peak resident-set growth during each side (freed heap pages returned first, the
  high-water mark reset through ``/proc/self/clear_refs``), as ``bench.drift`` measures it;
* agreement: the largest difference between the two estimates of a metric (absolute for
  classification metrics, relative for MAE and RMSE).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd

from bench.drift import measure

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

CLASSIFICATION = ["accuracy", "precision", "recall", "f1", "roc_auc"]
CAR_PRICE_FEATURES = [
    "car_age", "km_driven", "price_new", "accident_count", "door_count", "fuel", "transmission",
]  # fmt: skip


def _data(name: str, rows: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    import nannyml

    reference, analysis, targets = getattr(nannyml, f"load_{name}")()
    analysis = analysis.merge(targets, on="id")
    if rows is not None:
        reference, analysis = reference.iloc[:rows], analysis.iloc[:rows]
    return reference.reset_index(drop=True), analysis.reset_index(drop=True)


def _cbpe(rows: int | None) -> dict[str, Any]:
    import nannyml

    from monitors.estimation import estimate_classification, fit_classification

    reference, window = _data("synthetic_car_loan_dataset", rows)
    with measure() as theirs:
        estimator = nannyml.CBPE(
            y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="repaid",
            problem_type="classification_binary", metrics=CLASSIFICATION,
            chunk_size=len(window),
        )  # fmt: skip
        estimator.fit(reference)
        expected = estimator.estimate(window).filter(period="analysis").to_df()
    with measure() as ours:
        fitted = fit_classification(
            reference["repaid"], reference["y_pred"], reference["y_pred_proba"]
        )
        estimate = estimate_classification(fitted, window["y_pred"], window["y_pred_proba"])
    difference = max(
        abs(float(estimate["metrics"][m]["value"]) - float(expected[(m, "value")].iloc[0]))
        for m in CLASSIFICATION
    )
    return {
        "cbpe_reference_rows": len(reference), "cbpe_window_rows": len(window),
        "cbpe_nannyml_seconds": round(theirs.seconds, 4),
        "cbpe_warden_seconds": round(ours.seconds, 4),
        "cbpe_speedup": round(theirs.seconds / max(ours.seconds, 1e-9), 1),
        "cbpe_nannyml_peak_mib": round(theirs.peak_mib, 1),
        "cbpe_warden_peak_mib": round(ours.peak_mib, 1),
        "cbpe_max_abs_difference": difference,
        "cbpe_accuracy": estimate["metrics"]["accuracy"]["value"],
    }  # fmt: skip


def _dle(rows: int | None) -> dict[str, Any]:
    import nannyml

    from monitors.estimation import estimate_regression, fit_regression

    reference, window = _data("synthetic_car_price_dataset", rows)
    with measure() as theirs:
        estimator = nannyml.DLE(
            feature_column_names=CAR_PRICE_FEATURES, y_pred="y_pred", y_true="y_true",
            metrics=["mae", "rmse"], chunk_size=len(window),
            hyperparameters={"verbosity": -1, "n_jobs": 1},
        )  # fmt: skip
        estimator.fit(reference)
        expected = estimator.estimate(window).filter(period="analysis").to_df()
    with measure() as ours:
        fitted = fit_regression(
            reference, features=CAR_PRICE_FEATURES, label_column="y_true",
            prediction_column="y_pred",
        )  # fmt: skip
        estimate = estimate_regression(fitted, window, prediction_column="y_pred")
    difference = max(
        abs(float(estimate["metrics"][m]["value"]) / float(expected[(m, "value")].iloc[0]) - 1)
        for m in ("mae", "rmse")
    )
    realised = float(np.abs(window["y_true"] - window["y_pred"]).mean())
    return {
        "dle_reference_rows": len(reference), "dle_window_rows": len(window),
        "dle_nannyml_seconds": round(theirs.seconds, 4),
        "dle_warden_seconds": round(ours.seconds, 4),
        "dle_speedup": round(theirs.seconds / max(ours.seconds, 1e-9), 2),
        "dle_nannyml_peak_mib": round(theirs.peak_mib, 1),
        "dle_warden_peak_mib": round(ours.peak_mib, 1),
        "dle_max_relative_difference": difference,
        "dle_mae": estimate["metrics"]["mae"]["value"], "dle_realised_mae": realised,
    }  # fmt: skip


def run(rows: int | None) -> dict[str, Any]:
    """Run both comparisons and return the figures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NannyML's dependencies' deprecation notices
        import nannyml  # noqa: F401 - imported before any clock starts

        return {**_cbpe(rows), **_dle(rows)}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=None, help="rows per side (default: all)")
    options = parser.parse_args(argv)
    print(json.dumps(run(options.rows), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
