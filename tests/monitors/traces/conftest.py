"""Trace fixtures: the four dialect payloads and a factory for LLM deployments."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from lineage.deployments import DeploymentCreate, record_deployment
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import Deployment
from lineage.projects import Project
from lineage.store import session_scope
from monitors.traces import OtlpSpan, ingest_spans

FIXTURES = Path(__file__).parent / "fixtures"
DIALECTS = ("semconv", "semconv_legacy", "openinference", "mlflow_langfuse")


def payload(dialect: str) -> dict[str, Any]:
    """Return the OTLP/JSON request of one model call written in ``dialect``."""
    document: dict[str, Any] = json.loads((FIXTURES / f"{dialect}.json").read_text())
    return document


def make_llm_deployment(
    engine: Engine, project: Project, name: str = "support-bot", environment: str = "production"
) -> Deployment:
    """Record a prompt version (a model version) live as deployment ``name``."""
    with session_scope(engine) as session:
        version = register_model_version(
            session=session,
            project_id=project.id,
            name=f"{name}-prompt",
            spec=ModelVersionCreate(artifact_uri="prompts:/support/1", artifact_sha256="0" * 64),
        )
        return record_deployment(
            session=session,
            project_id=project.id,
            spec=DeploymentCreate(
                name=name,
                environment=environment,
                model_name=version.name,
                model_version=version.version,
            ),
        )


@pytest.fixture
def llm_deployment(
    engine: Engine, make_project: Callable[[str], Project]
) -> Callable[..., Deployment]:
    """Return a factory: ``llm_deployment(project="acme", name="support-bot")``."""

    def make(
        *, project: str = "acme", name: str = "support-bot", environment: str = "production"
    ) -> Deployment:
        return make_llm_deployment(engine, make_project(project), name, environment)

    return make


#: A fixed span start (ns since the epoch), so tests place spans by offsets from it.
START = 1_765_000_000_000_000_000


def otlp_span(
    trace: str, span: str, parent: str | None, at_ms: int, ms: int, **attrs: Any
) -> OtlpSpan:
    """Return a span of trace ``trace*32`` starting ``at_ms`` after START and lasting ``ms``."""
    status = str(attrs.pop("status", "unset"))
    return OtlpSpan(
        trace_id=trace * 32,
        span_id=span * 16,
        parent_span_id=parent * 16 if parent else None,
        name=f"step {span}",
        kind="client",
        start_ns=START + at_ms * 1_000_000,
        end_ns=START + (at_ms + ms) * 1_000_000,
        status=status,
        status_message="",
        attributes=attrs,
    )


def store_spans(engine: Engine, deployment: Deployment, spans: list[OtlpSpan]) -> None:
    """Store spans through the real ingest service, as the OTLP route does."""
    with session_scope(engine) as session:
        ingest_spans(
            session=session,
            project_id=deployment.project_id,
            deployment_id=deployment.id,
            spans=spans,
        )
