"""Per-slice drift and performance, with Benjamini-Hochberg control across slices and columns.

"The model got worse for customers in one region" is invisible in a window-wide number when the
region is small. For each slicing column (``spec.slices``, typically a context column of role
``slice``) the ``top_k`` values by window volume are judged one by one and the rest pooled as
``(other)``; a slice with fewer than ``min_rows`` rows is ``insufficient``. Per slice:

* **drift** of each judged column: the slice's window rows against the *same slice* of the
  reference (two-sample KS for numbers, chi-square for categories), so a slice that always
  differed from the population (older customers in one region) is not an alarm; a reference
  without the slicing column cannot be sliced, which the report says;
* **performance**: the slice's accuracy against the rest of the window (one-sided
  two-proportion z-test: is this slice worse than the others?), which needs no reference;
* **fairness** (``sensitive_features``): per group, selection rate and (with labels) TPR and
  FPR inside the slice, and whether the group's gap to the other groups in this slice differs
  from the typical slice's (:mod:`monitors.fairness.slices`).

All p-values of a run (every slice, column and test) are adjusted together with Benjamini-Hochberg
at ``spec.fdr`` (0.05 when unset), so testing fifty slice-column pairs does not flag one by
chance: an adjusted p-value below the level is an ``alert``. Findings carry the scope
``slice:<column>=<value>`` or ``slice:<column>=<value>/column:<name>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from monitors.drift.statistics import benjamini_hochberg
from monitors.findings import Finding, Status

__all__ = ["OTHER", "SliceConfig", "slice_findings"]

OTHER = "(other)"
"""The pooled slice of every value outside the top ``k``."""


@dataclass(frozen=True, slots=True)
class SliceConfig:
    """How slices are formed and judged.

    Attributes:
        columns: Slicing columns.
        top_k: Values judged on their own per slicing column; the rest are pooled.
        min_rows: The fewest window rows a slice is judged on.
        fdr: The false-discovery rate controlled across every slice test of the run.
    """

    columns: tuple[str, ...]
    top_k: int = 5
    min_rows: int = 100
    fdr: float = 0.05


def _slices(values: pd.Series, top_k: int) -> list[tuple[str, pd.Series]]:
    """Return ``(label, mask)`` for the top ``k`` values by volume and the pooled rest."""
    text = values.astype("string").fillna("(missing)")
    counts = text.value_counts()
    top = [str(v) for v in counts.index[:top_k]]
    chosen = [(value, text == value) for value in top]
    rest = ~text.isin(top)
    if bool(rest.any()):
        chosen.append((OTHER, rest))
    return chosen


def _reference_mask(reference: pd.Series, label: str, top: list[str]) -> pd.Series:
    text = reference.astype("string").fillna("(missing)")
    return ~text.isin(top) if label == OTHER else text == label


def _drift_p(current: pd.Series, reference: pd.Series) -> tuple[str, float] | None:
    """Return the test and p-value of one column's slice against its reference slice."""
    current, reference = current.dropna(), reference.dropna()
    if len(current) < 2 or len(reference) < 2:
        return None
    if pd.api.types.is_numeric_dtype(current) and pd.api.types.is_numeric_dtype(reference):
        result = stats.ks_2samp(current.to_numpy(float), reference.to_numpy(float))
        return "ks", float(result.pvalue)
    table = pd.crosstab(
        pd.concat([current.astype(str), reference.astype(str)], ignore_index=True),
        np.r_[np.zeros(len(current)), np.ones(len(reference))],
    )
    if table.shape[0] < 2:
        return "chisquare", 1.0
    return "chisquare", float(stats.chi2_contingency(table.to_numpy())[1])


def _worse_p(hits: int, rows: int, rest_hits: int, rest_rows: int) -> float:
    """Return the one-sided p-value that the slice's accuracy is below the rest's."""
    if rows == 0 or rest_rows == 0:
        return 1.0
    pooled = (hits + rest_hits) / (rows + rest_rows)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / rows + 1 / rest_rows))
    if spread == 0:
        return 1.0
    z = (hits / rows - rest_hits / rest_rows) / spread
    return float(stats.norm.cdf(z))


def slice_findings(
    frame: pd.DataFrame,
    *,
    config: SliceConfig,
    monitor: str,
    reference: pd.DataFrame | None = None,
    columns: list[str] | None = None,
    label_column: str | None = None,
    prediction_column: str | None = None,
    sensitive_features: list[str] | None = None,
    positive_label: int | str = 1,
    min_group_size: int = 30,
) -> tuple[list[Finding], dict[str, Any]]:
    """Judge drift (``columns`` against ``reference``), accuracy and fairness per slice.

    Fairness is judged when ``sensitive_features`` and ``prediction_column`` are given.
    Returns the findings (scopes ``slice:…``) and a JSON-ready report section.
    """
    from monitors.fairness.slices import judge_gaps, slice_fairness

    tests: list[dict[str, Any]] = []
    notes: list[str] = []
    group_rates: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    for slicing in config.columns:
        if slicing not in frame.columns:
            notes.append(f"the window has no column {slicing!r} to slice by")
            continue
        chosen = _slices(frame[slicing], config.top_k)
        top = [label for label, _ in chosen if label != OTHER]
        sliced_reference = reference is not None and slicing in reference.columns
        if columns and reference is not None and not sliced_reference:
            notes.append(f"the reference has no column {slicing!r}: drift is not sliced by it")
        for label, mask in chosen:
            scope = f"slice:{slicing}={label}"
            rows = int(mask.sum())
            if rows < config.min_rows:
                tests.append({"scope": scope, "metric": "slice_rows", "rows": rows, "p": None})
                continue
            if columns and sliced_reference and reference is not None:
                ref_rows = reference[_reference_mask(reference[slicing], label, top)]
                for name in columns:
                    if name == slicing or name not in frame.columns or name not in ref_rows:
                        continue
                    found = _drift_p(frame.loc[mask, name], ref_rows[name])
                    if found is not None:
                        tests.append({
                            "scope": f"{scope}/column:{name}", "metric": f"slice_drift_{found[0]}",
                            "rows": rows, "reference_rows": len(ref_rows), "p": found[1],
                        })  # fmt: skip
            if label_column and prediction_column:
                known = frame[label_column].notna()
                hit = (frame[label_column] == frame[prediction_column]) & known
                inside, outside = mask & known, ~mask & known
                n, m = int(inside.sum()), int(outside.sum())
                if n >= config.min_rows and m > 0:
                    hits, rest = int(hit[inside].sum()), int(hit[outside].sum())
                    tests.append({
                        "scope": scope, "metric": "slice_accuracy", "rows": n,
                        "value": hits / n, "rest": rest / m, "rest_rows": m,
                        "p": _worse_p(hits, n, rest, m),
                    })  # fmt: skip
            if sensitive_features and prediction_column:
                fair_tests, rates = slice_fairness(
                    frame, slicing=slicing, scope=scope, mask=mask.to_numpy(bool),
                    sensitive_features=sensitive_features, prediction_column=prediction_column,
                    label_column=label_column, positive_label=positive_label,
                    min_group_size=min_group_size,
                )  # fmt: skip
                gaps.extend(fair_tests)
                group_rates.extend(rates)
    tests.extend(judge_gaps(gaps))
    judged = [t for t in tests if t["p"] is not None]
    adjusted = benjamini_hochberg([t["p"] for t in judged]) if judged else []
    for test, q in zip(judged, adjusted, strict=True):
        test["adjusted_p"] = q
    findings: list[Finding] = []
    for test in tests:
        if test["p"] is None:
            status, value = Status.INSUFFICIENT, None
        else:
            status = Status.ALERT if test["adjusted_p"] < config.fdr else Status.OK
            value = test.get("value", test["p"])
        detail = {k: v for k, v in test.items() if k not in ("scope", "metric")}
        findings.append(
            Finding(
                monitor=monitor, metric=test["metric"], scope=test["scope"], value=value,
                threshold=config.fdr, status=status, detail=detail,
            )
        )  # fmt: skip
    report = {
        "columns": list(config.columns),
        "top_k": config.top_k,
        "min_rows": config.min_rows,
        "fdr": config.fdr,
        "tests": tests,
        "alerts": [f.scope for f in findings if f.status == Status.ALERT],
        "notes": notes,
    }
    if sensitive_features:
        report["fairness"] = group_rates
    return findings, report
