"""The one adapter to Evidently 0.7: its rendered drift page and its per-column verdicts.

Warden computes drift itself (``monitors.drift``: the same methods, over 100 times faster, bounded
memory). Evidently is used for what it does well — the detailed, interactive drift page — on a
sample (at most ``SAMPLE_ROWS`` rows per side: the baseline's stored reference sample against a
sample of the window), and as an oracle: tests and the benchmark compare our verdicts with
``evidently_verdicts``. Evidently is imported lazily here and nowhere else (it takes seconds).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lineage.errors import InvalidInput
from monitors.baseline import Baseline
from monitors.spec import DriftMethod

__all__ = ["SAMPLE_ROWS", "EvidentlyVerdict", "evidently_verdicts", "render_drift_html"]

SAMPLE_ROWS = 5000
"""Rows per side Evidently's page is rendered on (it is slow on large windows)."""

_METHODS = {
    "K-S p_value": DriftMethod.KS,
    "chi-square p_value": DriftMethod.CHI_SQUARE,
    "Z-test p_value": DriftMethod.Z,
    "Wasserstein distance (normed)": DriftMethod.WASSERSTEIN,
    "Jensen-Shannon distance": DriftMethod.JENSEN_SHANNON,
}


@dataclass(frozen=True, slots=True)
class EvidentlyVerdict:
    """Evidently's drift verdict on one column.

    Attributes:
        column: The column.
        method: The method Evidently chose, or ``None`` for one Warden does not implement.
        method_name: Evidently's display name of the method.
        value: The drift score (p-value or distance).
        threshold: The threshold Evidently applied.
        drifted: Whether its test failed.
    """

    column: str
    method: DriftMethod | None
    method_name: str
    value: float
    threshold: float
    drifted: bool


def _run(reference: pd.DataFrame, current: pd.DataFrame) -> Any:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import Report
    from evidently.presets import DataDriftPreset

    report = Report([DataDriftPreset()], include_tests=True)
    with warnings.catch_warnings():
        # Evidently's chi-square divides by zero on categories the reference never saw and
        # reports p = 0 (drift), as Warden does; scipy's warning about it is noise here.
        warnings.simplefilter("ignore", RuntimeWarning)
        return report.run(current, reference)


def evidently_verdicts(
    reference: pd.DataFrame, current: pd.DataFrame
) -> dict[str, EvidentlyVerdict]:
    """Run Evidently's ``DataDriftPreset`` and return its verdict per column."""
    snapshot = _run(reference, current)
    data = snapshot.dict()
    drifted: dict[str, bool] = {}
    for test in data["tests"]:
        params = test["metric_config"]["params"]
        if params.get("type") == "evidently:metric_v2:ValueDrift":
            drifted[params["column"]] = test["status"] == "FAIL"
    verdicts: dict[str, EvidentlyVerdict] = {}
    for metric in data["metrics"]:
        config = metric["config"]
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        column = config["column"]
        verdicts[column] = EvidentlyVerdict(
            column=column,
            method=_METHODS.get(config["method"]),
            method_name=config["method"],
            value=float(metric["value"]),
            threshold=float(config["threshold"]),
            drifted=drifted.get(column, False),
        )
    return verdicts


def render_drift_html(
    baseline: Baseline,
    window: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> str:
    """Render Evidently's detailed drift page: the baseline's sample against a window sample.

    Raises:
        InvalidInput: The baseline was built without a reference sample.
    """
    if baseline.sample is None or baseline.sample.empty:
        raise InvalidInput(
            "the baseline keeps no reference sample; rebuild it with sample_size > 0 to "
            "render Evidently's drift page",
            field="baseline",
        )
    names = columns or [name for name in baseline.sample.columns if name in window.columns]
    reference = baseline.sample[names]
    if len(reference) > sample_rows:
        reference = reference.sample(n=sample_rows, random_state=seed)
    current = window[names]
    if len(current) > sample_rows:
        current = current.sample(n=sample_rows, random_state=seed)
    snapshot = _run(reference.reset_index(drop=True), current.reset_index(drop=True))
    html: str = snapshot.get_html_str(as_iframe=False)
    return html
