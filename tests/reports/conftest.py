"""Fixtures for the reports room: a report needs a real history, trained the retrain room's way.

The project, its people, real MLflow and the Adult pipeline are the retrain room's fixtures,
shared here rather than copied.
"""

from __future__ import annotations

from tests.retrain.conftest import (
    approver,
    make_pipeline,
    mlflow_template,
    person,
    project,
    registry,
    runner_config,
    step_context,
    train_version,
    trainer,
)

__all__ = [
    "approver",
    "make_pipeline",
    "mlflow_template",
    "person",
    "project",
    "registry",
    "runner_config",
    "step_context",
    "train_version",
    "trainer",
]
