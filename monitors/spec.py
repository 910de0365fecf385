"""What a monitor run is asked to do: the declarative ``MonitorSpec`` every kind reads.

A spec is stored with a monitor and sent by clients, so it is strict (``extra="forbid"``) and
carries only configuration: no ids, owners or timestamps. Each kind reads the fields that concern
it and documents the ``thresholds`` keys it understands (unknown keys are refused by the kind).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SLICED_KINDS", "TRACE_KINDS", "DriftMethod", "Kind", "MonitorSpec", "Task"]


class Kind(StrEnum):
    """The monitor kinds Warden ships; each names a runner registered in monitors.kinds.

    The last four judge a deployment's LLM traces (:mod:`monitors.llm`), not its inference log.
    """

    DRIFT = "drift"
    PREDICTION_DRIFT = "prediction_drift"
    QUALITY = "quality"
    PERFORMANCE = "performance"
    PERFORMANCE_ESTIMATE = "performance_estimate"
    FAIRNESS = "fairness"
    EXPLANATIONS = "explanations"
    LLM_OPERATIONS = "llm_operations"
    TEXT_DESCRIPTORS = "text_descriptors"
    EMBEDDING_DRIFT = "embedding_drift"
    LLM_JUDGE = "llm_judge"


TRACE_KINDS = frozenset(
    {Kind.LLM_OPERATIONS, Kind.TEXT_DESCRIPTORS, Kind.EMBEDDING_DRIFT, Kind.LLM_JUDGE}
)
"""Kinds that read a deployment's LLM traces (model and tool calls) instead of its inference log."""
SLICED_KINDS = frozenset({Kind.DRIFT, Kind.PERFORMANCE, Kind.FAIRNESS})
"""Kinds that judge ``slices`` one by one beside the whole window (:mod:`monitors.drift.slices`)."""


class DriftMethod(StrEnum):
    """The per-column drift statistics, named as Evidently names its stat tests."""

    KS = "ks"
    CHI_SQUARE = "chisquare"
    Z = "z"
    WASSERSTEIN = "wasserstein"
    JENSEN_SHANNON = "jensenshannon"


Task = Literal["classification", "regression"]


class MonitorSpec(BaseModel):
    """Configure one monitor: which kind, on which columns, judged against which thresholds.

    Attributes:
        kind: The registered kind to run.
        columns: Columns to judge; ``None`` means every column the baseline summarises
            (minus label, prediction and score columns for data drift).
        thresholds: Named thresholds, per kind (see each kind's docstring), e.g.
            ``{"drift_share": 0.5}`` for drift or ``{"accuracy": 0.05}`` for performance.
        methods: Per-column drift method overrides, e.g. ``{"age": "ks"}``.
        column_thresholds: Per-column drift thresholds (p-value level or distance).
        fdr: False-discovery rate for p-value drift tests, controlled across columns by
            Benjamini-Hochberg; ``None`` judges raw p-values (as Evidently does).
        min_rows: A window with fewer rows yields ``insufficient`` findings, never an alert.
        label_column: The ground-truth column (performance, fairness).
        prediction_column: The model's predicted class or value.
        score_column: The predicted probability of the positive class (ROC AUC, score drift).
        task: Classification or regression; inferred from the labels when ``None``.
        positive_label: The positive class for binary metrics.
        sensitive_features: Columns whose groups fairness compares (and intersections of them).
        slices: Columns to slice drift, performance and fairness by (``region``,
            ``channel``): the top slices by volume are judged one by one, the rest pooled, with
            Benjamini-Hochberg control across slices, columns and groups
            (:mod:`monitors.drift.slices`; options ``top_slices``, default 5, and
            ``min_slice_rows``, default ``min_rows``).
        options: Kind-specific extras that are not thresholds (sample sizes, seeds, group minimums).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    columns: list[str] | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    methods: dict[str, DriftMethod] = Field(default_factory=dict)
    column_thresholds: dict[str, float] = Field(default_factory=dict)
    fdr: float | None = Field(default=0.05, gt=0, lt=1)
    min_rows: int = Field(default=100, ge=1)
    label_column: str | None = None
    prediction_column: str | None = None
    score_column: str | None = None
    task: Task | None = None
    positive_label: int | str = 1
    sensitive_features: list[str] = Field(default_factory=list)
    slices: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
