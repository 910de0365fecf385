"""Retrain: pipelines and their runs, the MLflow adapter, deployers, findings → actions."""

from retrain.deployers import AliasDeployer, Deployer, EmbeddedDeployer, ModelLoader
from retrain.evaluation import Evaluation, evaluate_version
from retrain.handlers import MonitorRunHandler, default_registry
from retrain.jobs import Job, JobKind, JobState, enqueue, get_job, queue_depth, queue_monitor_run
from retrain.leader import LeaderLease, current_leader, try_acquire_lease
from retrain.pipelines import Pipeline, PipelineRun, PipelineRunState, PipelineSpec, request_run
from retrain.promotion import Promotion, current_champion, promote, request_promotion, rollback
from retrain.registry import Registry
from retrain.runner import RunnerConfig, execute_run, pipeline_handler
from retrain.worker import HandlerRegistry, JobContext, Worker

__all__ = [
    "AliasDeployer",
    "Deployer",
    "EmbeddedDeployer",
    "Evaluation",
    "HandlerRegistry",
    "Job",
    "JobContext",
    "JobKind",
    "JobState",
    "LeaderLease",
    "ModelLoader",
    "MonitorRunHandler",
    "Pipeline",
    "PipelineRun",
    "PipelineRunState",
    "PipelineSpec",
    "Promotion",
    "Registry",
    "RunnerConfig",
    "Worker",
    "current_champion",
    "current_leader",
    "default_registry",
    "enqueue",
    "evaluate_version",
    "execute_run",
    "get_job",
    "pipeline_handler",
    "promote",
    "queue_depth",
    "queue_monitor_run",
    "request_promotion",
    "request_run",
    "rollback",
    "try_acquire_lease",
]
