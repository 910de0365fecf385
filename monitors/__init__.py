"""Monitors: specs, reference baselines, runners, typed findings and reports.

Importing the package registers its tables (migrations and the metadata check rely on it) and
nothing more: the public names are loaded on first use (:mod:`lineage.lazy_exports`), since
most of them bring pandas, scipy or pyarrow, which the API does not need to start.
"""

from typing import TYPE_CHECKING

import monitors.baseline.storage
import monitors.inferences.partitions
import monitors.llm.assessments
import monitors.models
import monitors.traces.controls
import monitors.traces.models  # noqa: F401  (the tables above and this one)
from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from monitors.baseline import (
        Baseline,
        CategoricalSummary,
        NumericSummary,
        build_baseline,
        merge,
    )
    from monitors.baseline.storage import (
        BaselineCreate,
        BaselinePublic,
        StoredBaseline,
        create_baseline,
        get_baseline,
        latest_baseline,
        list_baselines,
    )
    from monitors.drift import ColumnDrift, DriftResult, compute_drift
    from monitors.execute import FindingsCallback, ModelLoader, execute_monitor_run, report_keys
    from monitors.findings import (
        Finding,
        FindingList,
        FindingSink,
        RunSummary,
        Status,
        run_status,
        worst_status,
    )
    from monitors.inferences import (
        MAX_BATCH,
        InferenceBatch,
        InferenceKey,
        InferenceRecord,
        IngestResult,
        LabelKey,
        LabelRecord,
        log_inferences,
        log_labels,
        read_window,
    )
    from monitors.kinds import (
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
    from monitors.models import (
        Monitor,
        MonitorCreate,
        MonitorPublic,
        MonitorRun,
        MonitorRunPublic,
        MonitorRunState,
        MonitorUpdate,
        RunTrigger,
        Schedule,
    )
    from monitors.performance import compute_performance, reference_performance
    from monitors.quality import QualityResult, check_quality
    from monitors.report import RunReport, build_report
    from monitors.run_jobs import (
        MONITOR_RUN,
        MonitorRunHandler,
        get_monitor_run,
        latest_runs,
        list_monitor_runs,
        queue_monitor_run,
        register_monitor_handlers,
    )
    from monitors.schedules import (
        MisfirePolicy,
        create_monitor,
        get_monitor,
        list_monitors,
        pause_monitor,
        resume_monitor,
        update_monitor,
    )
    from monitors.spec import DriftMethod, Kind, MonitorSpec
    from monitors.traces import Trace, TraceContent, TraceSpan, ingest_spans
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "monitors.baseline": (
                "Baseline",
                "CategoricalSummary",
                "NumericSummary",
                "build_baseline",
                "merge",
            ),
            "monitors.baseline.storage": (
                "BaselineCreate",
                "BaselinePublic",
                "StoredBaseline",
                "create_baseline",
                "get_baseline",
                "latest_baseline",
                "list_baselines",
            ),
            "monitors.drift": ("ColumnDrift", "DriftResult", "compute_drift"),
            "monitors.execute": (
                "FindingsCallback",
                "ModelLoader",
                "execute_monitor_run",
                "report_keys",
            ),
            "monitors.findings": (
                "Finding",
                "FindingList",
                "FindingSink",
                "RunSummary",
                "Status",
                "run_status",
                "worst_status",
            ),
            "monitors.inferences": (
                "MAX_BATCH",
                "InferenceBatch",
                "InferenceKey",
                "InferenceRecord",
                "IngestResult",
                "LabelKey",
                "LabelRecord",
                "log_inferences",
                "log_labels",
                "read_window",
            ),
            "monitors.kinds": (
                "Chart",
                "KindResult",
                "Model",
                "MonitorContext",
                "MonitorResult",
                "get_kind",
                "register_kind",
                "registered_kinds",
                "run_monitor",
            ),
            "monitors.models": (
                "Monitor",
                "MonitorCreate",
                "MonitorPublic",
                "MonitorRun",
                "MonitorRunPublic",
                "MonitorRunState",
                "MonitorUpdate",
                "RunTrigger",
                "Schedule",
            ),
            "monitors.performance": ("compute_performance", "reference_performance"),
            "monitors.quality": ("QualityResult", "check_quality"),
            "monitors.report": ("RunReport", "build_report"),
            "monitors.run_jobs": (
                "MONITOR_RUN",
                "MonitorRunHandler",
                "get_monitor_run",
                "latest_runs",
                "list_monitor_runs",
                "queue_monitor_run",
                "register_monitor_handlers",
            ),
            "monitors.schedules": (
                "MisfirePolicy",
                "create_monitor",
                "get_monitor",
                "list_monitors",
                "pause_monitor",
                "resume_monitor",
                "update_monitor",
            ),
            "monitors.spec": ("DriftMethod", "Kind", "MonitorSpec"),
            "monitors.traces": ("Trace", "TraceContent", "TraceSpan", "ingest_spans"),
        },
    )

__all__ = [
    "MAX_BATCH",
    "MONITOR_RUN",
    "Baseline",
    "BaselineCreate",
    "BaselinePublic",
    "CategoricalSummary",
    "Chart",
    "ColumnDrift",
    "DriftMethod",
    "DriftResult",
    "Finding",
    "FindingList",
    "FindingSink",
    "FindingsCallback",
    "InferenceBatch",
    "InferenceKey",
    "InferenceRecord",
    "IngestResult",
    "Kind",
    "KindResult",
    "LabelKey",
    "LabelRecord",
    "MisfirePolicy",
    "Model",
    "ModelLoader",
    "Monitor",
    "MonitorContext",
    "MonitorCreate",
    "MonitorPublic",
    "MonitorResult",
    "MonitorRun",
    "MonitorRunHandler",
    "MonitorRunPublic",
    "MonitorRunState",
    "MonitorSpec",
    "MonitorUpdate",
    "NumericSummary",
    "QualityResult",
    "RunReport",
    "RunSummary",
    "RunTrigger",
    "Schedule",
    "Status",
    "StoredBaseline",
    "Trace",
    "TraceContent",
    "TraceSpan",
    "build_baseline",
    "build_report",
    "check_quality",
    "compute_drift",
    "compute_performance",
    "create_baseline",
    "create_monitor",
    "execute_monitor_run",
    "get_baseline",
    "get_kind",
    "get_monitor",
    "get_monitor_run",
    "ingest_spans",
    "latest_baseline",
    "latest_runs",
    "list_baselines",
    "list_monitor_runs",
    "list_monitors",
    "log_inferences",
    "log_labels",
    "merge",
    "pause_monitor",
    "queue_monitor_run",
    "read_window",
    "reference_performance",
    "register_kind",
    "register_monitor_handlers",
    "registered_kinds",
    "report_keys",
    "resume_monitor",
    "run_monitor",
    "run_status",
    "update_monitor",
    "worst_status",
]
