"""Retrain: pipelines and their runs, the MLflow adapter, deployers, findings → actions."""

from retrain.handlers import default_registry, handle_monitor_run
from retrain.jobs import Job, JobKind, JobState, enqueue, get_job, queue_depth, queue_monitor_run
from retrain.leader import LeaderLease, current_leader, try_acquire_lease
from retrain.worker import HandlerRegistry, JobContext, Worker

__all__ = [
    "HandlerRegistry",
    "Job",
    "JobContext",
    "JobKind",
    "JobState",
    "LeaderLease",
    "Worker",
    "current_leader",
    "default_registry",
    "enqueue",
    "get_job",
    "handle_monitor_run",
    "queue_depth",
    "queue_monitor_run",
    "try_acquire_lease",
]
