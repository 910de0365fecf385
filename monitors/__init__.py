"""Monitors: specs, reference baselines, runners, typed findings and reports."""

from monitors.baseline import Baseline, CategoricalSummary, NumericSummary, build_baseline, merge
from monitors.findings import Finding, FindingSink, Status, worst_status
from monitors.registry import (
    Chart,
    KindResult,
    Model,
    MonitorContext,
    MonitorResult,
    get_kind,
    register_kind,
    registered_kinds,
    run_monitor,
)
from monitors.spec import DriftMethod, Kind, MonitorSpec

__all__ = [
    "Baseline",
    "CategoricalSummary",
    "Chart",
    "DriftMethod",
    "Finding",
    "FindingSink",
    "Kind",
    "KindResult",
    "Model",
    "MonitorContext",
    "MonitorResult",
    "MonitorSpec",
    "NumericSummary",
    "Status",
    "build_baseline",
    "get_kind",
    "merge",
    "register_kind",
    "registered_kinds",
    "run_monitor",
    "worst_status",
]
