"""Fairness per slice: is one group treated differently *in this slice* than in the others?

A window-wide disparity (women selected less often than men everywhere) is the window-level
fairness findings' business; per slice the question is whether a slice adds a disparity of its
own ("in the north, women's loans are refused more often than elsewhere"). So, for each group of
each sensitive feature, the group's gap to the other groups is measured inside every slice:

* selection rate (share predicted ``positive_label``) over every row;
* true-positive rate over rows labelled positive and false-positive rate over rows labelled
  negative, when the window has labels.

Each slice's gap is then tested against the centre of all slices' gaps (their inverse-variance
weighted median, so one slice with a planted disparity does not drag the yardstick the others
are held to, as "the rest of the window" would), two-sided z-test with the slice's and the
median's sampling variance. A gap is measured only when the group and the other groups each
have at least ``min_group_size`` rows in the slice, and tested only when at least two slices
have one; a feature with two groups is tested once (the second group's gap is the first one's
mirror). The p-values join the run's other slice tests (:mod:`monitors.drift.slices`), so
Benjamini-Hochberg controls the false-discovery rate across slices, features, groups and metrics
together. Per-group rates per slice value go into the report whether or not a test was made.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

__all__ = ["judge_gaps", "slice_fairness"]

Mask = npt.NDArray[np.bool_]


def _positive(values: pd.Series, positive: int | str) -> Mask:
    """Return which values equal the positive class (``1``, ``1.0`` and ``"1"`` alike)."""
    if pd.api.types.is_numeric_dtype(values) and not isinstance(positive, str):
        numeric: Mask = values.to_numpy(np.float64) == float(positive)
        return numeric
    text = values.astype("string")
    matched: Mask = (text == str(positive)).fillna(value=False).to_numpy(bool)
    return matched


def _rate(hits: Mask, rows: Mask) -> tuple[int, int]:
    return int((hits & rows).sum()), int(rows.sum())


def _gap(a: int, n: int, b: int, m: int) -> tuple[float, float]:
    """Return a group's rate minus the others' rate, and its sampling variance.

    Rates are shrunk by half a success (Agresti-Caffo), so an all-zero cell has a variance.
    """
    p, q = (a + 0.5) / (n + 1), (b + 0.5) / (m + 1)
    return a / n - b / m, p * (1 - p) / n + q * (1 - q) / m


def _weighted_median(values: list[float], weights: list[float]) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(weights)[order])
    middle = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    return float(np.asarray(values)[order][middle])


def judge_gaps(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Test each slice's gap against the weighted median of its peers' gaps; add ``p``."""
    peers: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for candidate in candidates:
        peers.setdefault(candidate["key"], []).append(candidate)
    tests = []
    for group in peers.values():
        if len(group) < 2:
            continue
        gaps = [c["value"] for c in group]
        weights = [1 / c["variance"] for c in group]
        centre = _weighted_median(gaps, weights)
        # The median of k estimates is noisier than their mean by about pi/2.
        centre_variance = math.pi / 2 / sum(weights)
        for candidate in group:
            z = (candidate["value"] - centre) / math.sqrt(candidate["variance"] + centre_variance)
            test = {k: v for k, v in candidate.items() if k not in ("key", "variance")}
            tests.append({**test, "centre": centre, "p": float(2 * stats.norm.sf(abs(z)))})
    return tests


def slice_fairness(
    frame: pd.DataFrame,
    *,
    slicing: str,
    scope: str,
    mask: Mask,
    sensitive_features: list[str],
    prediction_column: str,
    label_column: str | None,
    positive_label: int | str,
    min_group_size: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the gaps to test (:func:`judge_gaps`) and the per-group rates of one slice.

    Gaps carry ``scope`` ``<slice scope>/group:<feature>=<group>`` and metric
    ``slice_selection_rate_gap``, ``slice_tpr_gap`` or ``slice_fpr_gap``; ``value`` is the
    group's rate minus the other groups' rate inside the slice.
    """
    selected = _positive(frame[prediction_column], positive_label)
    populations: list[tuple[str, Mask]] = [("selection_rate", np.ones(len(frame), dtype=bool))]
    if label_column is not None and label_column in frame.columns:
        known = frame[label_column].notna().to_numpy()
        truth = _positive(frame[label_column], positive_label)
        populations += [("tpr", known & truth), ("fpr", known & ~truth)]
    tests: list[dict[str, Any]] = []
    rates: list[dict[str, Any]] = []
    for feature in sensitive_features:
        groups = frame[feature].astype("string").fillna("(missing)").to_numpy(str)
        names = sorted(set(groups[mask].tolist()))
        table: dict[str, dict[str, Any]] = {}
        for name in names:
            member = groups == name
            row: dict[str, Any] = {"rows": int((member & mask).sum())}
            for metric, population in populations:
                hits, rows = _rate(selected, member & mask & population)
                row[metric] = hits / rows if rows >= min_group_size else None
            table[name] = row
        rates.append({"scope": scope, "feature": feature, "groups": table})
        tested = names[:1] if len(names) == 2 else names
        for name in tested if len(names) > 1 else []:
            member = groups == name
            for metric, population in populations:
                a, n = _rate(selected, member & mask & population)
                b, m = _rate(selected, ~member & mask & population)
                if min(n, m) < min_group_size:
                    continue
                value, variance = _gap(a, n, b, m)
                tests.append({
                    "scope": f"{scope}/group:{feature}={name}", "metric": f"slice_{metric}_gap",
                    "rows": n, "value": value, "group_rate": a / n, "others_rate": b / m,
                    "variance": variance, "key": (slicing, feature, name, metric),
                })  # fmt: skip
    return tests, rates
