"""Retrain: pipelines and their runs, the MLflow adapter, deployers, findings → actions."""

from retrain.champions import Promotion, current_champion
from retrain.deployers import AliasDeployer, Deployer, EmbeddedDeployer, VerifiedModelLoader
from retrain.eval_datasets import EvalDataset, EvalDatasetVersion, EvalRecord
from retrain.evaluation import Evaluation, evaluate_version
from retrain.mlflow_registry import Registry
from retrain.pipelines import (
    PIPELINE_RUN,
    Pipeline,
    PipelineRun,
    PipelineRunState,
    PipelineSpec,
    request_run,
)
from retrain.promotion import promote, record_live, redeploy, request_promotion, rollback
from retrain.runner import execute_pipeline_run, pipeline_handler
from retrain.runner_config import RunnerConfig
from retrain.sandbox import BubblewrapExecutor, SandboxSpec, StepExecutor, UnsandboxedExecutor

__all__ = [
    "PIPELINE_RUN",
    "AliasDeployer",
    "BubblewrapExecutor",
    "Deployer",
    "EmbeddedDeployer",
    "EvalDataset",
    "EvalDatasetVersion",
    "EvalRecord",
    "Evaluation",
    "Pipeline",
    "PipelineRun",
    "PipelineRunState",
    "PipelineSpec",
    "Promotion",
    "Registry",
    "RunnerConfig",
    "SandboxSpec",
    "StepExecutor",
    "UnsandboxedExecutor",
    "VerifiedModelLoader",
    "current_champion",
    "evaluate_version",
    "execute_pipeline_run",
    "pipeline_handler",
    "promote",
    "record_live",
    "redeploy",
    "request_promotion",
    "request_run",
    "rollback",
]
