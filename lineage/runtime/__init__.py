"""The runtime: the durable job queue, the worker loop, the leader lease, the handler registry.

It runs work without knowing what the work is: a job's kind is a string its user declares, and
each user package offers the handler for its kinds (contract in :mod:`lineage.runtime.handlers`).
"""

from lineage.runtime.handlers import Handler, HandlerRegistry, JobContext, Permanent
from lineage.runtime.lease import (
    LeaderLease,
    current_leader,
    holds_lease,
    release_lease,
    try_acquire_lease,
)
from lineage.runtime.presence import (
    WORKER_STALE,
    WorkerBeat,
    beat_worker,
    last_worker_beat,
    worker_alive,
)
from lineage.runtime.queue import (
    DEFAULT_MAX_ATTEMPTS,
    JobState,
    RuntimeJob,
    append_log,
    cancel_job,
    claim,
    complete,
    enqueue,
    fail,
    get_job,
    heartbeat,
    queue_depth,
    report_progress,
    requeue_expired,
)
from lineage.runtime.worker import Worker, worker_name

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "WORKER_STALE",
    "Handler",
    "HandlerRegistry",
    "JobContext",
    "JobState",
    "LeaderLease",
    "Permanent",
    "RuntimeJob",
    "Worker",
    "WorkerBeat",
    "append_log",
    "beat_worker",
    "cancel_job",
    "claim",
    "complete",
    "current_leader",
    "enqueue",
    "fail",
    "get_job",
    "heartbeat",
    "holds_lease",
    "last_worker_beat",
    "queue_depth",
    "release_lease",
    "report_progress",
    "requeue_expired",
    "try_acquire_lease",
    "worker_alive",
    "worker_name",
]
