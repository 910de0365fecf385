"""The baseline summary: one mergeable summary per reference column, plus named extras.

A monitor run compares a window against a ``Baseline`` and never needs the raw reference data.
Besides the column summaries (:mod:`monitors.baseline.column_summary`), ``extras`` holds named
JSON-ready sections other kinds own (``"performance"``: reference metrics;
``"performance_estimate"``: the calibrated reference of CBPE; ``"fairness"``:
reference group metrics; ``"explanations"``: reference importance), and ``sample`` optionally
holds a small reference sample for Evidently's rendered drift page only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lineage.errors import InvalidInput
from monitors.baseline.column_summary import (
    BINS,
    SAMPLE_LIMIT,
    CategoricalSummary,
    ColumnSummary,
    NumericSummary,
    column_type,
    merge_numeric,
    numeric_values,
)

__all__ = ["Baseline", "build_baseline", "merge"]


@dataclass(slots=True)
class Baseline:
    """The stored reference of a monitor: one summary per column plus named extras.

    Attributes:
        rows: Reference rows summarised.
        columns: Summary per column name, in the reference's column order.
        extras: Named JSON-ready sections owned by other kinds (performance, fairness,
            explanations); merging keeps the first baseline's extras.
        sample: A small reference sample for Evidently's rendered drift page, if kept.
    """

    rows: int
    columns: dict[str, ColumnSummary]
    extras: dict[str, Any] = field(default_factory=dict)
    sample: pd.DataFrame | None = None

    def column(self, name: str) -> ColumnSummary:
        """Return the summary of ``name`` or fail naming the columns that exist."""
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidInput(
                f"column {name!r} is not in the baseline; it has {sorted(self.columns)}",
                field="columns",
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the sample column-wise, missing values as ``null``)."""
        sample = None
        if self.sample is not None:
            sample = {
                "columns": [str(name) for name in self.sample.columns],
                "dtypes": [dtype.name for dtype in self.sample.dtypes],
                "data": json.loads(self.sample.to_json(orient="split", index=False))["data"],
            }
        return {
            "format": "warden.baseline/1",
            "rows": self.rows,
            "columns": {name: summary.to_dict() for name, summary in self.columns.items()},
            "extras": self.extras,
            "sample": sample,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        """Rebuild a baseline from ``to_dict`` output."""
        if data.get("format") != "warden.baseline/1":
            raise InvalidInput("not a Warden baseline (format warden.baseline/1)", field="format")
        columns: dict[str, ColumnSummary] = {}
        for name, summary in data["columns"].items():
            if summary["type"] == "numeric":
                columns[name] = NumericSummary.from_dict(summary)
            else:
                columns[name] = CategoricalSummary.from_dict(summary)
        sample = None
        if data.get("sample") is not None:
            raw = data["sample"]
            sample = pd.DataFrame(raw["data"], columns=raw["columns"])
            for name, dtype in zip(raw["columns"], raw["dtypes"], strict=True):
                if dtype != "object":
                    sample[name] = sample[name].astype(dtype)
        return cls(rows=int(data["rows"]), columns=columns, extras=data["extras"], sample=sample)

    def to_json(self) -> str:
        """Serialise to a JSON document (what the artifact store keeps)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Baseline:
        """Read a baseline written by ``to_json``."""
        return cls.from_dict(json.loads(text))


def build_baseline(
    frame: pd.DataFrame,
    *,
    categorical: list[str] | None = None,
    numeric: list[str] | None = None,
    bins: int = BINS,
    sample_size: int = SAMPLE_LIMIT,
    seed: int = 0,
    extras: dict[str, Any] | None = None,
) -> Baseline:
    """Summarise a reference DataFrame column by column.

    Args:
        frame: The reference data, typically the training set (with label and prediction
            columns when performance or prediction drift will be judged).
        categorical: Columns forced categorical, overriding Evidently's inference.
        numeric: Columns forced numeric.
        bins: Quantile bins per numeric column.
        sample_size: Rows kept as a reference sample for Evidently's page (0 keeps none).
        seed: Seed of the sample draw.
        extras: Named sections other kinds need (see the module docstring).
    """
    if bins < 2:
        raise InvalidInput("bins must be at least 2", field="bins")
    forced_categorical = set(categorical or [])
    forced_numeric = set(numeric or [])
    for name in forced_categorical | forced_numeric:
        if name not in frame.columns:
            raise InvalidInput(f"column {name!r} is not in the reference data", field="columns")
    columns: dict[str, ColumnSummary] = {}
    for name in frame.columns:
        series = frame[name]
        kind = column_type(series)
        if name in forced_categorical:
            kind = "categorical"
        elif name in forced_numeric:
            kind = "numeric"
        if kind == "numeric":
            finite = numeric_values(series)
            columns[str(name)] = NumericSummary.from_values(
                finite, missing=len(series) - finite.size, bins=bins, dtype=series.dtype.name
            )
        else:
            columns[str(name)] = CategoricalSummary.from_series(series)
    sample = None
    if sample_size > 0:
        take = min(sample_size, len(frame))
        sample = frame.sample(n=take, random_state=seed).reset_index(drop=True)
    return Baseline(rows=len(frame), columns=columns, extras=dict(extras or {}), sample=sample)


def merge(first: Baseline, second: Baseline, *, bins: int = BINS, seed: int = 0) -> Baseline:
    """Merge two baselines of the same columns (e.g. two partitions of the training data).

    Counts, frequencies and moments merge exactly; numeric bins are re-cut at the combined
    quantiles (exact at every edge and atom of either side, linear inside bins).
    """
    if set(first.columns) != set(second.columns):
        raise InvalidInput(
            "baselines summarise different columns: "
            f"{sorted(set(first.columns) ^ set(second.columns))}",
            field="columns",
        )
    columns: dict[str, ColumnSummary] = {}
    for name, left in first.columns.items():
        right = second.columns[name]
        if isinstance(left, NumericSummary) and isinstance(right, NumericSummary):
            columns[name] = merge_numeric(left, right, bins=bins)
        elif isinstance(left, CategoricalSummary) and isinstance(right, CategoricalSummary):
            frequencies = dict(left.frequencies)
            for key, count in right.frequencies.items():
                frequencies[key] = frequencies.get(key, 0) + count
            columns[name] = CategoricalSummary(
                frequencies=frequencies, missing=left.missing + right.missing, dtype=left.dtype
            )
        else:
            raise InvalidInput(
                f"column {name!r} is numeric in one baseline and categorical in the other",
                field="columns",
            )
    sample = _merge_samples(first, second, seed=seed)
    return Baseline(
        rows=first.rows + second.rows, columns=columns, extras=dict(first.extras), sample=sample
    )


def _merge_samples(first: Baseline, second: Baseline, *, seed: int) -> pd.DataFrame | None:
    samples = [sample for sample in (first.sample, second.sample) if sample is not None]
    if not samples:
        return None
    limit = max(len(sample) for sample in samples)
    combined = pd.concat(samples, ignore_index=True)
    if len(combined) > limit:
        combined = combined.sample(n=limit, random_state=seed).reset_index(drop=True)
    return combined
