"""Retrain: pipelines and their runs, the MLflow adapter, deployers, findings → actions.

Importing the package registers its tables (migrations and the metadata check rely on it);
the public names are loaded on first use (:mod:`lineage.lazy_exports`), so a process that only
reads pipelines or promotions does not load evaluation's statistics.
"""

from typing import TYPE_CHECKING

import retrain.champions
import retrain.eval_datasets
import retrain.eval_runs
import retrain.evaluation
import retrain.llm_deployments
import retrain.pipelines  # noqa: F401  (the tables above and this one)
from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
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
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "retrain.champions": ("Promotion", "current_champion"),
            "retrain.deployers": (
                "AliasDeployer",
                "Deployer",
                "EmbeddedDeployer",
                "VerifiedModelLoader",
            ),
            "retrain.eval_datasets": ("EvalDataset", "EvalDatasetVersion", "EvalRecord"),
            "retrain.eval_runs": ("EVAL_RUN", "EvalResult", "EvalRun"),
            "retrain.evaluation": ("Evaluation", "evaluate_version"),
            "retrain.llm_deployments": ("LlmDeployment",),
            "retrain.mlflow_registry": ("Registry",),
            "retrain.pipelines": (
                "PIPELINE_RUN",
                "Pipeline",
                "PipelineRun",
                "PipelineRunState",
                "PipelineSpec",
                "request_run",
            ),
            "retrain.promotion": (
                "promote",
                "promote_prompt",
                "record_live",
                "redeploy",
                "request_promotion",
                "rollback",
            ),
            "retrain.prompts": ("register_prompt",),
            "retrain.runner": ("execute_pipeline_run", "pipeline_handler"),
            "retrain.runner_config": ("RunnerConfig",),
            "retrain.sandbox": (
                "BubblewrapExecutor",
                "SandboxSpec",
                "StepExecutor",
                "UnsandboxedExecutor",
            ),
        },
    )

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
