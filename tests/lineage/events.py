"""Build OpenLineage 2-0-2 events as plain dicts, the way the stock client serialises them."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from lineage import ModelVersionCreate, ingest_event, register_model_version

PRODUCER = "https://example.com/warden-tests"
RUN_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def dataset(
    namespace: str, name: str, *, version: str | None = None, **facets: Any
) -> dict[str, Any]:
    """Return an input/output dataset with the given facets (and a version facet if given)."""
    all_facets = dict(facets)
    if version is not None:
        all_facets["version"] = {"datasetVersion": version}
    return {"namespace": namespace, "name": name, "facets": all_facets}


def run_event(
    *,
    event_type: str,
    run_id: uuid.UUID,
    job: str,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    minutes: int = 0,
    namespace: str = "pipelines",
) -> dict[str, Any]:
    """Return a RunEvent of ``job`` at ``T0 + minutes``."""
    return {
        "eventType": event_type,
        "eventTime": (T0 + timedelta(minutes=minutes)).isoformat(),
        "run": {"runId": str(run_id), "facets": {}},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": inputs or [],
        "outputs": outputs or [],
        "producer": PRODUCER,
        "schemaURL": RUN_SCHEMA,
    }


def encode(event: dict[str, Any]) -> bytes:
    """Return the event as the UTF-8 JSON body a client posts."""
    return json.dumps(event).encode()


DB = "postgres://db.internal:5432"


def train_generation(
    session: Session, project_id: uuid.UUID, raw_version: str, minutes: int
) -> str:
    """Run featurize(raw@raw_version) → features, train(features) → a new model version."""
    featurize, train = uuid.uuid4(), uuid.uuid4()
    raw = dataset(DB, "public.adult", version=raw_version)
    features = dataset("file", "/features.parquet")
    for event in (
        run_event(
            event_type="START", run_id=featurize, job="featurize", inputs=[raw], minutes=minutes
        ),
        run_event(
            event_type="COMPLETE",
            run_id=featurize,
            job="featurize",
            inputs=[raw],
            outputs=[features],
            minutes=minutes + 1,
        ),
        run_event(
            event_type="COMPLETE", run_id=train, job="train", inputs=[features], minutes=minutes + 2
        ),
    ):
        ingest_event(session=session, project_id=project_id, body=encode(event))
    spec = ModelVersionCreate(
        source_run_id=train, artifact_uri="m", artifact_sha256=hashlib.sha256(b"m").hexdigest()
    )
    return register_model_version(
        session=session, project_id=project_id, name="income", spec=spec
    ).version
