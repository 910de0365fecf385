"""Retrain: pipelines and their runs, the MLflow adapter, deployers, findings → actions."""

from retrain.champions import Promotion, current_champion
from retrain.deployers import AliasDeployer, Deployer, EmbeddedDeployer, VerifiedModelLoader
from retrain.eval_datasets import EvalDataset, EvalDatasetVersion, EvalRecord
from retrain.eval_runs import EVAL_RUN, EvalResult, EvalRun
from retrain.evaluation import Evaluation, evaluate_version
from retrain.llm_deployments import LlmDeployment
from retrain.mlflow_registry import Registry
from retrain.pipelines import (
    PIPELINE_RUN,
    Pipeline,
    PipelineRun,
    PipelineRunState,
    PipelineSpec,
    request_run,
)
from retrain.promotion import (
    promote,
    promote_prompt,
    record_live,
    redeploy,
    request_promotion,
    rollback,
)
from retrain.prompts import register_prompt
from retrain.runner import execute_pipeline_run, pipeline_handler
from retrain.runner_config import RunnerConfig
from retrain.sandbox import BubblewrapExecutor, SandboxSpec, StepExecutor, UnsandboxedExecutor

__all__ = [
    "EVAL_RUN",
    "PIPELINE_RUN",
    "AliasDeployer",
    "BubblewrapExecutor",
    "Deployer",
    "EmbeddedDeployer",
    "EvalDataset",
    "EvalDatasetVersion",
    "EvalRecord",
    "EvalResult",
    "EvalRun",
    "Evaluation",
    "LlmDeployment",
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
    "promote_prompt",
    "record_live",
    "redeploy",
    "register_prompt",
    "request_promotion",
    "request_run",
    "rollback",
]
