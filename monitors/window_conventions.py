"""Window conventions: which columns of a logged window a kind judges, and under which names.

Window conventions: the window's columns are the model's features, the context values under
their own names (``context.race`` is stored, ``race`` is judged; the model never sees them),
plus ``prediction``, ``score`` and ``label``; a spec that leaves ``label_column``,
``prediction_column`` or ``score_column`` unset gets those names when the window has data in
them; drift judges the features and quality the features and context columns unless the spec
names columns. Performance judges the labelled rows; fairness judges labelled rows with labels
when at least ``min_rows`` have one, else selection rates over every row; a performance estimate
judges every row and measures the labelled ones beside it (it also reads ``probabilities``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lineage.errors import InvalidInput
from lineage.models import ModelVersion
from monitors.baseline import Baseline
from monitors.inferences import CONTEXT_PREFIX
from monitors.spec import Kind, MonitorSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HIDDEN_COLUMNS",
    "OUTPUT_COLUMNS",
    "DriftColumns",
    "context_names",
    "drift_columns",
    "fill_conventions",
    "has_data",
    "judged_frame",
    "model_features",
    "with_context",
    "without_columns",
]

HIDDEN_COLUMNS = ("request_id", "time", "probabilities")
"""Stored beside every logged inference, never judged as a feature."""
OUTPUT_COLUMNS = ("prediction", "score", "label", "attributions")
"""What the model answered and what was learnt later: judged only as outputs."""


def has_data(frame: pd.DataFrame, name: str) -> bool:
    """Say whether ``frame`` has a column ``name`` holding at least one value."""
    return name in frame.columns and bool(frame[name].notna().any())


def context_names(columns: list[str]) -> dict[str, str]:
    """Return each stored context column's judged name (``context.race`` is judged as ``race``)."""
    stored = [c for c in columns if c.startswith(CONTEXT_PREFIX)]
    names = {c: c.removeprefix(CONTEXT_PREFIX) for c in stored}
    clash = sorted(set(names.values()) & set(columns))
    if clash:
        raise InvalidInput(
            f"context columns {clash} share their names with logged features; rename one",
            field="context",
        )
    return names


def with_context(window: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Return the window with context columns under their own names, and those names."""
    names = context_names([str(c) for c in window.columns])
    return window.rename(columns=names, copy=False), list(names.values())


def model_features(
    model_version: ModelVersion, columns: list[str], context: list[str]
) -> list[str]:
    """Return the model's inputs: its schema's, else the window's columns that are neither."""
    return list(model_version.feature_schema) or [
        c for c in columns if c not in (*HIDDEN_COLUMNS, *OUTPUT_COLUMNS) and c not in context
    ]


@dataclass(frozen=True, slots=True)
class DriftColumns:
    """What a drift run reads of a window: the columns it judges, nothing else.

    Attributes:
        features: The model's inputs (:func:`model_features` of the whole window).
        context: The window's context columns, by their judged names.
        sources: Each judged column the window stores, and the stored column it comes from.
    """

    features: list[str]
    context: list[str]
    sources: dict[str, str]


def drift_columns(
    spec: MonitorSpec, model_version: ModelVersion, stored: list[str]
) -> DriftColumns | None:
    """Return the columns a drift run judges of a window storing ``stored``, else ``None``.

    They are those it would judge of the whole window read (:func:`judged_frame`); ``None``
    when it judges ``label``, which only the whole window has (joined by request id).
    Request ids, times, probabilities, attributions and the label column are never judged.
    """
    names = list(dict.fromkeys([*stored, "probabilities", "label"]))  # the read window's
    context = context_names(names)
    judged = {context.get(name, name): name for name in names}
    features = model_features(model_version, list(judged), list(context.values()))
    wanted = features if spec.columns is None else list(spec.columns)
    if "label" in wanted:
        return None
    never = {*HIDDEN_COLUMNS, "attributions", spec.label_column}
    sources = {
        name: judged[name]
        for name in wanted
        if name in judged and name not in never and judged[name] in stored
    }
    return DriftColumns(features=features, context=list(context.values()), sources=sources)


def fill_conventions(
    spec: MonitorSpec,
    filled: set[str],
    features: list[str],
    context: list[str],
    baseline: Baseline,
) -> MonitorSpec:
    """Fill the column names the window uses where the spec leaves them unset.

    ``filled`` names the window's columns holding at least one value.
    """
    update: dict[str, Any] = {}
    for attribute, name in (
        ("label_column", "label"),
        ("prediction_column", "prediction"),
        ("score_column", "score"),
    ):
        if getattr(spec, attribute) is None and name in filled:
            update[attribute] = name
    if spec.columns is None and spec.kind == Kind.DRIFT:
        update["columns"] = list(features)
    if spec.columns is None and spec.kind == Kind.QUALITY:
        update["columns"] = [*features, *(c for c in context if c in baseline.columns)]
    return spec.model_copy(update=update)


def without_columns(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """Return ``frame`` without ``names``, sharing the other columns (``drop`` copies them all)."""
    import pandas as pd

    kept = {column: frame[column] for column in frame.columns if column not in names}
    return pd.DataFrame(kept, index=frame.index, copy=False)


def judged_frame(spec: MonitorSpec, window: pd.DataFrame) -> tuple[MonitorSpec, pd.DataFrame]:
    """Return the rows and spec a kind judges (labelled rows for performance and fairness)."""
    hidden: tuple[str, ...] = (
        HIDDEN_COLUMNS if spec.kind == Kind.EXPLANATIONS else (*HIDDEN_COLUMNS, "attributions")
    )
    if spec.kind == Kind.PERFORMANCE_ESTIMATE:
        hidden = tuple(c for c in hidden if c != "probabilities")
    frame = without_columns(window, hidden)
    label = spec.label_column
    if label is None or label not in frame.columns or spec.kind == Kind.PERFORMANCE_ESTIMATE:
        # An estimate judges every row; labels already in are measured beside it.
        return spec, frame
    labelled = frame[frame[label].notna()]
    if spec.kind == Kind.FAIRNESS and len(labelled) < spec.min_rows:
        return spec.model_copy(update={"label_column": None}), without_columns(frame, (label,))
    if spec.kind in (Kind.PERFORMANCE, Kind.FAIRNESS):
        labelled = labelled.copy()
        prediction = spec.prediction_column
        if (
            prediction in labelled.columns
            and labelled[prediction].dtype.kind in "iub"
            and labelled[label].dtype.kind == "f"
        ):
            labelled[label] = labelled[label].astype(labelled[prediction].dtype)
        return spec, labelled.reset_index(drop=True)
    return spec, without_columns(frame, (label,))
