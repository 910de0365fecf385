"""``create_app(settings)``: the one place the HTTP application is assembled.

Nothing happens at import time: the lifespan builds the engine from the settings it was given
(or uses one handed in by a test) and disposes of it on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from starlette.formparsers import MultiPartParser

from api.dashboard import install_dashboard
from api.gate_cache import GateCache
from api.headers import SecurityHeaders
from api.limits import BodySizeLimit
from api.problems import install_problem_handlers
from api.prometheus import install_metrics
from api.route_index import prefilter_included_routers
from api.routes import alerts as alert_routes
from api.routes import (
    api_docs,
    approvals,
    deployments_serving,
    federation,
    health,
    pipelines,
    principals,
    projects,
)
from api.routes import audit as audit_routes
from api.routes import budgets as budget_routes
from api.routes import evaluation_datasets as evaluation_dataset_routes
from api.routes import evaluation_runs as evaluation_run_routes
from api.routes import inferences as inference_routes
from api.routes import lineage as lineage_routes
from api.routes import llm_deployments as llm_deployment_routes
from api.routes import llm_governance as llm_governance_routes
from api.routes import model_versions as model_version_routes
from api.routes import monitors as monitor_routes
from api.routes import otlp as otlp_routes
from api.routes import outbound as outbound_routes
from api.routes import policies as policy_routes
from api.routes import promotions as promotion_routes
from api.routes import prompts as prompt_routes
from api.routes import reports as report_routes
from api.routes import reports_monitor as monitor_report_routes
from api.routes import traces as trace_routes
from api.settings import Settings
from api.store import attach_audit_signer
from governance.identity_generation import LoopGenerationReader
from lineage import create_store_engine
from monitors.inferences.runs import set_memory_budget

__all__ = ["create_app"]


def create_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    """Build the Warden HTTP application.

    Args:
        settings: The configuration of this process.
        engine: An engine to use instead of building one from the settings (tests, ``warden up``).

    Returns:
        The FastAPI application, with every router, the problem+json handlers and the body limit.
    """
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owns_engine:
            app.state.engine = create_store_engine(settings.resolved_database_url())
            app.state.loop_generation = LoopGenerationReader.for_engine(app.state.engine)
        app.state.audit_signer = attach_audit_signer(app.state.engine, settings)
        set_memory_budget(settings.id_runs_memory_bytes)
        # An uploaded file (at most the body limit) stays in memory, where the routes read it
        # whole: spooled to disk past 1 MiB, a 12 MiB Parquet upload was written and read back
        # through a thread hop per chunk.
        MultiPartParser.spool_max_size = max(
            MultiPartParser.spool_max_size, settings.max_body_bytes
        )
        try:
            yield
        finally:
            if app.state.loop_generation is not None:
                app.state.loop_generation.close()
            if owns_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="Warden",
        version="0.1.0",
        summary="Governance and monitoring for ML models: lineage, monitors, policies, audit.",
        lifespan=lifespan,
        openapi_url=None,  # served by api_docs behind sign-in (only the probes are public)
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.gate_cache = GateCache()  # API-key answers of the permission gate (this process)
    if engine is not None:
        app.state.engine = engine
        app.state.loop_generation = LoopGenerationReader.for_engine(engine)
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(api_docs.router)
    app.include_router(projects.router)
    app.include_router(principals.router)
    app.include_router(federation.router)
    app.include_router(approvals.router)
    app.include_router(audit_routes.router)
    app.include_router(lineage_routes.router)
    app.include_router(model_version_routes.router)
    app.include_router(monitor_routes.router)
    app.include_router(alert_routes.router)
    app.include_router(outbound_routes.router)
    app.include_router(pipelines.router)
    app.include_router(promotion_routes.router)
    app.include_router(policy_routes.router)
    app.include_router(budget_routes.router)
    app.include_router(deployments_serving.router)
    install_dashboard(app)
    app.include_router(inference_routes.router)
    app.include_router(monitor_report_routes.router)
    app.include_router(report_routes.router)
    app.include_router(otlp_routes.router)
    app.include_router(llm_governance_routes.router)
    app.include_router(prompt_routes.router)
    app.include_router(llm_deployment_routes.router)
    app.include_router(trace_routes.router)
    app.include_router(evaluation_dataset_routes.router)
    app.include_router(evaluation_run_routes.router)
    install_metrics(app)
    app.add_middleware(SecurityHeaders)  # last added runs outermost: every response gets them
    prefilter_included_routers(app)
    return app
