"""Data quality of a window against the reference: schema, missing values, bad values.

Ingestion keeps well-formed records with bad values; this monitor counts them:

* schema: reference columns missing from the window (``alert``), extra columns (``warn``),
  a column whose type family changed, e.g. numbers arriving as text (``alert``);
* per column: the share of missing values against the reference's own share plus
  ``missing_share_increase``; for numeric columns the share of values that are not numbers at
  all (``type_error_share``) and of values outside the reference range, ±inf included
  (``out_of_range_share``); for categorical columns the share of categories the reference never
  saw (``unseen_share``).

Thresholds (``spec.thresholds`` keys, defaults in ``DEFAULT_THRESHOLDS``) are shares of the
window's rows; a share above its threshold is a ``warn``. The counts are a :class:`Fold` (Parquet
windows stream in batches; the Spark engine folds them in its tasks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lineage.errors import InvalidInput
from monitors.baseline.column_summary import (
    CategoricalSummary,
    ColumnType,
    NumericSummary,
    plain_value,
)
from monitors.baseline.summary import Baseline
from monitors.engine import BATCH_ROWS, Fold, fold_locally
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, MonitorContext, register_kind
from monitors.spec import Kind, MonitorSpec

if TYPE_CHECKING:
    from monitors.inferences.windows import WindowView

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ColumnQuality",
    "QualityResult",
    "check_quality",
    "quality_fold",
    "run_quality",
]

DEFAULT_THRESHOLDS: dict[str, float] = {
    "missing_share_increase": 0.05,
    "type_error_share": 0.0,
    "out_of_range_share": 0.01,
    "unseen_share": 0.01,
}
"""Shares of the window's rows above which a quality metric warns."""
EXAMPLES = 10


def _family(dtype: Any) -> str | None:
    """Return the type family of a dtype (number, bool, text, time); ``None`` when unknown."""
    if isinstance(dtype, pd.CategoricalDtype):
        return _family(dtype.categories.dtype)
    name = str(dtype).lower()
    if name == "category":
        return None
    if name.startswith(("int", "uint", "float")):
        return "number"
    if name in {"bool", "boolean"}:
        return "bool"
    if name.startswith("datetime"):
        return "time"
    return "text"


@dataclass(frozen=True, slots=True)
class ColumnQuality:
    """Counts of one window column.

    Attributes:
        column: The column.
        type: The reference's column type.
        rows: Rows in the window.
        missing: Missing values (``None``, ``NaN``).
        reference_missing_share: The reference's missing share.
        type_errors: Values present but not numbers, in a numeric column.
        out_of_range: Numbers outside the reference's ``[min, max]`` (±inf included).
        unseen: Categories the reference never saw.
        bad_values: Distinct type errors as text, the first ``EXAMPLES`` in text order.
        outliers: Distinct out-of-range numbers, the ``EXAMPLES`` furthest outside.
        unseen_values: Distinct unseen categories, the first ``EXAMPLES`` in text order.

    Examples are chosen by value, not by row position, so they are the same however the
    window is split into batches (and on either engine).
    """

    column: str
    type: ColumnType
    rows: int
    missing: int
    reference_missing_share: float
    type_errors: int = 0
    out_of_range: int = 0
    unseen: int = 0
    bad_values: tuple[str, ...] = ()
    outliers: tuple[float, ...] = ()
    unseen_values: tuple[Any, ...] = ()

    @property
    def examples(self) -> list[Any]:
        """Return a few offending values, for people to read."""
        if self.type == "numeric":
            return [*self.bad_values, *self.outliers][:EXAMPLES]
        return list(self.unseen_values)

    def share(self, count: int) -> float:
        """Return ``count`` as a share of the window's rows."""
        return count / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "column": self.column,
            "type": self.type,
            "rows": self.rows,
            "missing": self.missing,
            "missing_share": self.share(self.missing),
            "reference_missing_share": self.reference_missing_share,
            "type_errors": self.type_errors,
            "out_of_range": self.out_of_range,
            "unseen": self.unseen,
            "examples": [str(value) for value in self.examples],
        }


@dataclass(frozen=True, slots=True)
class QualityResult:
    """The schema differences and per-column counts of one window (also the fold's partial)."""

    rows: int
    missing_columns: list[str]
    extra_columns: list[str]
    type_changes: dict[str, tuple[str, str]]
    columns: list[ColumnQuality]

    def column(self, name: str) -> ColumnQuality:
        """Return the counts of one column."""
        for column in self.columns:
            if column.column == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "rows": self.rows,
            "missing_columns": self.missing_columns,
            "extra_columns": self.extra_columns,
            "type_changes": {
                name: {"reference": old, "current": new}
                for name, (old, new) in self.type_changes.items()
            },
            "columns": [column.to_dict() for column in self.columns],
        }


def _text_key(value: Any) -> tuple[str, str]:
    return str(value), type(value).__name__


def _first_in_text_order(values: Any) -> tuple[Any, ...]:
    return tuple(sorted(set(values), key=_text_key)[:EXAMPLES])


def _furthest_outside(values: Any, reference: NumericSummary) -> tuple[float, ...]:
    """Return the ``EXAMPLES`` distinct values furthest outside the reference range."""

    def key(value: float) -> tuple[float, float]:
        if not math.isfinite(value) or not reference.count:
            return -math.inf, value
        return -max(reference.minimum - value, value - reference.maximum), value

    return tuple(sorted({float(value) for value in values}, key=key)[:EXAMPLES])


def _numeric_quality(name: str, values: pd.Series, reference: NumericSummary) -> ColumnQuality:
    missing_mask = values.isna().to_numpy()
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    type_error_mask = np.isnan(numbers) & ~missing_mask
    present = numbers[~np.isnan(numbers)]
    outside = ~np.isfinite(present)
    if reference.count:
        outside |= (present < reference.minimum) | (present > reference.maximum)
    bad = values[type_error_mask]
    return ColumnQuality(
        column=name,
        type="numeric",
        rows=len(values),
        missing=int(missing_mask.sum()),
        reference_missing_share=reference.missing_share,
        type_errors=int(type_error_mask.sum()),
        out_of_range=int(outside.sum()),
        bad_values=_first_in_text_order(str(value) for value in bad.unique()) if len(bad) else (),
        outliers=_furthest_outside(np.unique(present[outside]), reference),
    )


def _categorical_quality(
    name: str, values: pd.Series, reference: CategoricalSummary
) -> ColumnQuality:
    counts = values.value_counts(dropna=True, sort=False)
    unseen = [
        (plain_value(key), int(count))
        for key, count in counts.items()
        if count and plain_value(key) not in reference.frequencies
    ]
    return ColumnQuality(
        column=name,
        type="categorical",
        rows=len(values),
        missing=int(values.isna().sum()),
        reference_missing_share=reference.missing_share,
        unseen=sum(count for _, count in unseen),
        unseen_values=_first_in_text_order(key for key, _ in unseen),
    )


def _check_frame(baseline: Baseline, window: pd.DataFrame, names: list[str]) -> QualityResult:
    type_changes: dict[str, tuple[str, str]] = {}
    results: list[ColumnQuality] = []
    for name in names:
        reference = baseline.columns[name]
        values = window[name]
        before, after = _family(reference.dtype), _family(values.dtype)
        if None not in (before, after) and before != after and not values.isna().all():
            type_changes[name] = (reference.dtype, values.dtype.name)
        if isinstance(reference, NumericSummary):
            results.append(_numeric_quality(name, values, reference))
        else:
            results.append(_categorical_quality(name, values, reference))
    return QualityResult(
        rows=len(window),
        missing_columns=[],
        extra_columns=[],
        type_changes=type_changes,
        columns=results,
    )


def _combine(total: ColumnQuality, part: ColumnQuality, reference: Any) -> ColumnQuality:
    return replace(
        total,
        rows=total.rows + part.rows,
        missing=total.missing + part.missing,
        type_errors=total.type_errors + part.type_errors,
        out_of_range=total.out_of_range + part.out_of_range,
        unseen=total.unseen + part.unseen,
        bad_values=_first_in_text_order([*total.bad_values, *part.bad_values]),
        outliers=(
            _furthest_outside([*total.outliers, *part.outliers], reference)
            if isinstance(reference, NumericSummary)
            else ()
        ),
        unseen_values=_first_in_text_order([*total.unseen_values, *part.unseen_values]),
    )


def _start(baseline: Baseline, names: list[str]) -> QualityResult:
    return QualityResult(
        rows=0,
        missing_columns=[],
        extra_columns=[],
        type_changes={},
        columns=[
            ColumnQuality(
                column=name,
                type=baseline.columns[name].type,
                rows=0,
                missing=0,
                reference_missing_share=baseline.columns[name].missing_share,
            )
            for name in names
        ],
    )


def _merge(
    baseline: Baseline, names: list[str], a: QualityResult, b: QualityResult
) -> QualityResult:
    """Add two partials; a type change is named in the columns' order, whichever saw it."""
    changes = {**b.type_changes, **a.type_changes}
    return QualityResult(
        rows=a.rows + b.rows,
        missing_columns=[],
        extra_columns=[],
        type_changes={name: changes[name] for name in names if name in changes},
        columns=[
            _combine(left, right, baseline.columns[left.column])
            for left, right in zip(a.columns, b.columns, strict=True)
        ],
    )


def _add(
    baseline: Baseline, names: list[str], state: QualityResult, batch: pd.DataFrame
) -> QualityResult:
    return _merge(baseline, names, state, _check_frame(baseline, batch, names))


def quality_fold(baseline: Baseline, names: list[str]) -> Fold[QualityResult]:
    """Return the fold counting ``names`` (columns of the window) against the baseline."""
    return Fold(
        columns=tuple(names),
        start=partial(_start, baseline, names),
        add=partial(_add, baseline, names),
        merge=partial(_merge, baseline, names),
    )


def check_quality(
    baseline: Baseline,
    window: pd.DataFrame | Path | WindowView,
    *,
    columns: list[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    context: MonitorContext | None = None,
) -> QualityResult:
    """Count schema differences and bad values of a window against the baseline.

    A Parquet window streams in batches of ``batch_rows``; counts add up across batches.
    With a ``context`` (whose window this is), its engine counts (Spark or here); a logged
    window read in place (:class:`monitors.inferences.windows.WindowView`) needs one.
    """
    names = list(baseline.columns) if columns is None else columns
    for name in names:
        baseline.column(name)
    if context is not None:
        present = context.window_columns()
    elif isinstance(window, pd.DataFrame):
        present = [str(name) for name in window.columns]
    elif isinstance(window, Path):
        import pyarrow.parquet as pq

        present = [str(name) for name in pq.ParquetFile(window).schema_arrow.names]
    else:
        raise TypeError("a window read in place is checked through its context, on Spark")
    fold = quality_fold(baseline, [name for name in names if name in present])
    if context is not None:
        result = context.summarise(fold)
    else:
        assert isinstance(window, pd.DataFrame | Path)
        result = fold_locally(fold, window, batch_rows=batch_rows)
    return replace(
        result,
        missing_columns=[name for name in names if name not in present],
        extra_columns=(
            [name for name in present if name not in baseline.columns] if columns is None else []
        ),
    )


def _share_finding(
    metric: str, column: ColumnQuality, count: int, threshold: float, detail: dict[str, Any]
) -> Finding:
    share = column.share(count)
    return Finding(
        monitor=Kind.QUALITY.value,
        metric=metric,
        scope=f"column:{column.column}",
        value=share,
        threshold=threshold,
        status=Status.WARN if share > threshold else Status.OK,
        detail={"count": count, "rows": column.rows, **detail},
    )


def _findings(result: QualityResult, thresholds: dict[str, float]) -> list[Finding]:
    findings = [
        Finding(
            monitor=Kind.QUALITY.value,
            metric="missing_columns",
            scope="dataset",
            value=float(len(result.missing_columns)),
            threshold=0.0,
            status=Status.ALERT if result.missing_columns else Status.OK,
            detail={"columns": result.missing_columns},
        ),
        Finding(
            monitor=Kind.QUALITY.value,
            metric="extra_columns",
            scope="dataset",
            value=float(len(result.extra_columns)),
            threshold=0.0,
            status=Status.WARN if result.extra_columns else Status.OK,
            detail={"columns": result.extra_columns},
        ),
    ]
    for name, (before, after) in result.type_changes.items():
        findings.append(
            Finding(
                monitor=Kind.QUALITY.value,
                metric="type_changed",
                scope=f"column:{name}",
                value=1.0,
                threshold=0.0,
                status=Status.ALERT,
                detail={"reference": before, "current": after},
            )
        )
    for column in result.columns:
        allowed = column.reference_missing_share + thresholds["missing_share_increase"]
        findings.append(
            _share_finding(
                "missing_share", column, column.missing, allowed,
                {"reference_missing_share": column.reference_missing_share},
            )
        )  # fmt: skip
        examples = {"examples": [str(value) for value in column.examples]}
        if column.type == "numeric":
            checks = [
                ("type_error_share", column.type_errors),
                ("out_of_range_share", column.out_of_range),
            ]
        else:
            checks = [("unseen_share", column.unseen)]
        for metric, count in checks:
            findings.append(_share_finding(metric, column, count, thresholds[metric], examples))
    return findings


@register_kind(Kind.QUALITY)
def run_quality(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Run data quality: schema changes and bad-value shares per column.

    Thresholds: ``missing_share_increase``, ``type_error_share``, ``out_of_range_share``,
    ``unseen_share`` (shares of the window's rows; see ``DEFAULT_THRESHOLDS``).
    """
    unknown = sorted(set(spec.thresholds) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise InvalidInput(
            f"unknown thresholds {unknown} for quality; use {sorted(DEFAULT_THRESHOLDS)}",
            field="thresholds",
        )
    thresholds = {**DEFAULT_THRESHOLDS, **spec.thresholds}
    result = check_quality(context.baseline, context.window, columns=spec.columns, context=context)
    charts = [
        Chart(
            title="Missing share per column",
            kind="bars",
            data={
                "labels": [column.column for column in result.columns],
                "values": [column.share(column.missing) for column in result.columns],
            },
        ),
        Chart(
            title="Bad values per column (type errors, out of range, unseen)",
            kind="bars",
            data={
                "labels": [column.column for column in result.columns],
                "values": [
                    column.share(column.type_errors + column.out_of_range + column.unseen)
                    for column in result.columns
                ],
            },
        ),
    ]
    return KindResult(
        findings=_findings(result, thresholds),
        report={**result.to_dict(), "thresholds": thresholds},
        charts=charts,
    )
