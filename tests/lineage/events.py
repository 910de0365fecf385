"""Build OpenLineage 2-0-2 events as plain dicts, the way the stock client serialises them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

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
