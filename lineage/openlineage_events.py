"""The one builder of the OpenLineage events Warden itself emits (spec 2-0-2).

Monitor runs, reference uploads, pipeline runs and the MLflow import all describe what they read
and wrote as OpenLineage events, so Warden's own work shows in the same graph as an Airflow or
Spark job's. They build them here and nowhere else: one producer URI, the schema URLs of the
spec and of its standard facets, and Warden's custom facets each named ``warden_<name>`` with a
schema URL of its own. :func:`emit` records an event through the same ingestion path as
``POST /api/v1/lineage``, without a JSON round trip.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session

from lineage.openlineage_ingest import LineageIngestResult, ingest_payload

__all__ = [
    "PRODUCER",
    "DatasetRef",
    "EventType",
    "dataset_event",
    "emit",
    "run_event",
    "warden_facet_schema",
]

PRODUCER = "https://github.com/warden-governance/warden"
_SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/"
_FACETS = "https://openlineage.io/spec/facets/"
_RUN_EVENT = _SPEC + "RunEvent"
_DATASET_EVENT = _SPEC + "DatasetEvent"
_VERSION_FACET = _FACETS + "1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
_SOURCE_FACET = _FACETS + "1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet"
_SCHEMA_FACET = _FACETS + "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
_OUTPUT_STATS_FACET = (
    _FACETS
    + "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet"
)

EventType = Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]


def warden_facet_schema(name: str) -> str:
    """Return the schema URL of Warden's custom facet ``warden_<name>`` (see docs/lineage.md)."""
    return f"{PRODUCER}/blob/main/docs/lineage.md#warden_{name}"


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A dataset as an event names it: where it lives and, when known, which version.

    Attributes:
        namespace: The OpenLineage namespace (``warden`` for Warden's own stores, ``file``, ``s3://…``).
        name: The dataset's name in that namespace.
        version: The ``version`` facet's ``datasetVersion``; ``None`` lets ingestion derive one.
        uri: The ``dataSource`` facet's URI, when the dataset has a location worth recording.
        fields: ``(name, type)`` pairs for the ``schema`` facet.
        row_count: Rows written, for an output's ``outputStatistics`` facet.
    """

    namespace: str
    name: str
    version: str | None = None
    uri: str | None = None
    fields: tuple[tuple[str, str], ...] = ()
    row_count: int | None = None

    def facets(self) -> dict[str, Any]:
        """Return the standard dataset facets this reference carries."""
        facets: dict[str, Any] = {}
        if self.version is not None:
            facets["version"] = _facet(_VERSION_FACET, datasetVersion=self.version)
        if self.uri is not None:
            facets["dataSource"] = _facet(_SOURCE_FACET, name=self.namespace, uri=self.uri)
        if self.fields:
            facets["schema"] = _facet(
                _SCHEMA_FACET, fields=[{"name": n, "type": t} for n, t in self.fields]
            )
        return facets

    def as_input(self) -> dict[str, Any]:
        """Return the dataset as a run event's input."""
        return {"namespace": self.namespace, "name": self.name, "facets": self.facets()}

    def as_output(self) -> dict[str, Any]:
        """Return the dataset as a run event's output, with its row count when known."""
        output = self.as_input()
        if self.row_count is not None:
            output["outputFacets"] = {
                "outputStatistics": _facet(_OUTPUT_STATS_FACET, rowCount=self.row_count)
            }
        return output


def _facet(schema_url: str, **values: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **values}


def run_event(
    *,
    event_type: EventType,
    event_time: datetime,
    run_id: uuid.UUID,
    job_namespace: str,
    job_name: str,
    inputs: Sequence[DatasetRef] = (),
    outputs: Sequence[DatasetRef] = (),
    run_facets: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return a ``RunEvent``; ``run_facets`` are Warden's custom facets, keyed without the prefix.

    Raises:
        ValueError: ``event_time`` has no timezone (the spec needs an offset).
    """
    _aware(event_time)
    facets = {
        f"warden_{name}": _facet(warden_facet_schema(name), **dict(values))
        for name, values in (run_facets or {}).items()
    }
    run: dict[str, Any] = {"runId": str(run_id)}
    if facets:
        run["facets"] = facets
    return {
        "eventType": event_type,
        "eventTime": event_time.isoformat(),
        "producer": PRODUCER,
        "schemaURL": _RUN_EVENT,
        "run": run,
        "job": {"namespace": job_namespace, "name": job_name},
        "inputs": [dataset.as_input() for dataset in inputs],
        "outputs": [dataset.as_output() for dataset in outputs],
    }


def dataset_event(*, event_time: datetime, dataset: DatasetRef) -> dict[str, Any]:
    """Return a ``DatasetEvent`` announcing ``dataset`` (a version that exists, no run behind it).

    Raises:
        ValueError: ``event_time`` has no timezone.
    """
    _aware(event_time)
    return {
        "eventTime": event_time.isoformat(),
        "producer": PRODUCER,
        "schemaURL": _DATASET_EVENT,
        "dataset": {
            "namespace": dataset.namespace,
            "name": dataset.name,
            "facets": dataset.facets(),
        },
    }


def emit(*, session: Session, project_id: uuid.UUID, event: dict[str, Any]) -> LineageIngestResult:
    """Record an event Warden built in ``project_id``'s lineage, validated like a posted one."""
    return ingest_payload(session=session, project_id=project_id, payload=event)


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("an OpenLineage eventTime needs a timezone; pass an aware datetime")
