"""Local explanations of logged inferences, computed in the worker on request.

Explaining one prediction needs the model, and models are loaded only in the process that runs
monitors (through the hash-checking loader), never in a request. So a request
(:func:`queue_explanation`) only checks that the inference was logged and queues an
:data:`EXPLANATION` job in the caller's transaction (the route audits the request in the same
transaction). :class:`ExplanationHandler` (registered by
:func:`monitors.run_jobs.register_monitor_handlers`) reads the logged record from the inference
log, loads the deployment's model version and stores the contributions (base value, per-feature
contributions, output, method: :func:`monitors.explanations.explain_one`) as the job's result,
which :func:`latest_explanation` finds again by deployment and request id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lineage.errors import NotFound
from lineage.runtime.handlers import JobContext
from lineage.runtime.queue import JobState, RuntimeJob, enqueue
from lineage.storage import ObjectStore
from lineage.store import session_scope
from monitors.baseline.storage import latest_baseline, load_baseline
from monitors.inferences import RESERVED_COLUMNS, deployment_of, read_inference
from monitors.inferences.runs import batch_of

if TYPE_CHECKING:
    from monitors.execute import ModelLoader

__all__ = ["EXPLANATION", "ExplanationHandler", "latest_explanation", "queue_explanation"]

EXPLANATION = "explanation"
"""The job kind of a local explanation."""
_MAX_ATTEMPTS = 2


def _jobs(project_id: uuid.UUID, deployment_id: uuid.UUID, request_id: str) -> Any:
    payload = RuntimeJob.__table__.c.payload  # type: ignore[attr-defined]
    return (
        select(RuntimeJob)
        .where(
            RuntimeJob.project_id == project_id,
            RuntimeJob.kind == EXPLANATION,
            payload["deployment_id"].as_string() == str(deployment_id),
            payload["request_id"].as_string() == request_id,
        )
        .order_by(sa.desc(col(RuntimeJob.created_at)))
    )


def latest_explanation(
    *, session: Session, project_id: uuid.UUID, deployment_id: uuid.UUID, request_id: str
) -> RuntimeJob:
    """Return the newest explanation job of one logged inference (its ``result`` once done).

    Raises:
        NotFound: Nobody asked for an explanation of this inference yet.
    """
    job = session.exec(_jobs(project_id, deployment_id, request_id)).first()
    if job is None:
        raise NotFound(
            f"no explanation of inference {request_id!r} was requested; POST to this URL first"
        )
    assert isinstance(job, RuntimeJob)
    return job


def queue_explanation(
    *,
    session: Session,
    project_id: uuid.UUID,
    deployment_id: uuid.UUID,
    request_id: str,
) -> tuple[RuntimeJob, bool]:
    """Queue the explanation of one logged inference (never commits); say whether it is new.

    An explanation already queued or running is returned (with ``False``) instead of queuing a
    second one; a finished one is computed again (the deployment may serve another version by
    now).

    Raises:
        NotFound: The deployment is not the project's, or logged no such request id.
    """
    deployment, _ = deployment_of(
        session=session, project_id=project_id, deployment_id=deployment_id
    )
    logged = batch_of(
        session=session, kind="inferences", deployment_id=deployment.id, request_id=request_id
    )
    if logged is None:
        raise NotFound(f"deployment {deployment_id} logged no inference {request_id!r}")
    pending = session.exec(_jobs(project_id, deployment_id, request_id)).first()
    if isinstance(pending, RuntimeJob) and pending.state in (JobState.QUEUED, JobState.RUNNING):
        return pending, False
    job = enqueue(
        session=session,
        project_id=project_id,
        kind=EXPLANATION,
        payload={"deployment_id": str(deployment_id), "request_id": request_id},
        max_attempts=_MAX_ATTEMPTS,
    )
    return job, True


@dataclass(frozen=True, slots=True)
class ExplanationHandler:
    """Execute ``explanation`` jobs: explain one logged inference with the deployment's model.

    Attributes:
        store: The artifact store (inference logs, baselines).
        loader: Loads registered, hash-checked model versions; without one nothing is explained.
    """

    store: ObjectStore
    loader: ModelLoader | None = None

    def __call__(self, context: JobContext) -> dict[str, Any]:
        """Explain the job's inference and return the contributions (the job's result).

        Raises:
            NotFound: The deployment or the logged inference no longer exists.
            RuntimeError: The worker was started without a model loader.
        """
        from monitors.explanations import explain_one

        if self.loader is None:
            raise RuntimeError("this worker has no model loader, so it cannot explain inferences")
        deployment_id = uuid.UUID(str(context.payload["deployment_id"]))
        request_id = str(context.payload["request_id"])
        with session_scope(context.engine) as session:
            deployment, model_version = deployment_of(
                session=session, project_id=context.project_id, deployment_id=deployment_id
            )
            row = read_inference(
                session=session,
                store=self.store,
                deployment=deployment,
                request_id=request_id,
            )
            try:
                stored = latest_baseline(session=session, deployment=deployment)
            except NotFound:
                stored = None
        features = list(model_version.feature_schema) or [
            str(name) for name in row.columns if name not in RESERVED_COLUMNS
        ]
        context.progress(0.2, f"loading model {model_version.name} v{model_version.version}")
        model = self.loader.load(model_version)
        background = None
        if stored is not None:
            sample = load_baseline(store=self.store, stored=stored).sample
            if sample is not None and set(features) <= set(sample.columns):
                background = sample[features]
        context.progress(0.6, f"explaining inference {request_id}")
        contributions = explain_one(model, row[features], background=background)
        return {
            "deployment_id": str(deployment_id),
            "request_id": request_id,
            "model_version_id": str(model_version.id),
            **contributions.to_dict(),
        }
