"""Check an event against the OpenLineage spec as the openlineage-python package ships it.

The package carries the spec as generated classes (``openlineage.client.generated``), each with
its schema URL and field validators. An event passes when it rebuilds from those classes field for
field and serialises back to itself; Warden's custom facets (``warden_*``) are checked for the
producer and a schema URL of their own, as the spec asks of custom facets.
"""

from __future__ import annotations

from typing import Any

from openlineage.client.generated import base
from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet
from openlineage.client.generated.datasource_dataset import DatasourceDatasetFacet
from openlineage.client.generated.output_statistics_output_dataset import (
    OutputStatisticsOutputDatasetFacet,
)
from openlineage.client.generated.schema_dataset import (
    SchemaDatasetFacet,
    SchemaDatasetFacetFields,
)
from openlineage.client.serde import Serde

from lineage.openlineage_events import PRODUCER

_DATASET_FACETS: dict[str, Any] = {
    "version": DatasetVersionDatasetFacet,
    "dataSource": DatasourceDatasetFacet,
    "schema": SchemaDatasetFacet,
}


def _fields(facet: dict[str, Any]) -> dict[str, Any]:
    assert facet["_producer"] == PRODUCER
    return {key: value for key, value in facet.items() if not key.startswith("_")}


def _dataset_facets(facets: dict[str, Any]) -> dict[str, Any]:
    built: dict[str, Any] = {}
    for key, facet in facets.items():
        fields = _fields(facet)
        if key == "schema":
            fields["fields"] = [SchemaDatasetFacetFields(**item) for item in fields["fields"]]
        built[key] = _DATASET_FACETS[key](**fields, producer=PRODUCER)
    return built


def _custom_run_facets(event: dict[str, Any]) -> dict[str, Any]:
    facets = event["run"].get("facets", {})
    for name, facet in facets.items():
        assert name.startswith("warden_"), f"run facet {name!r} is neither standard nor warden_*"
        assert facet["_producer"] == PRODUCER
        assert facet["_schemaURL"].startswith(PRODUCER + "/"), facet["_schemaURL"]
    return dict(facets)


def assert_spec_event(event: dict[str, Any]) -> None:
    """Fail unless ``event`` is a spec-conformant RunEvent or DatasetEvent from Warden."""
    assert event["producer"] == PRODUCER
    if "run" in event:
        custom = _custom_run_facets(event)
        rebuilt: Any = base.RunEvent(
            eventType=base.EventType[event["eventType"]],
            eventTime=event["eventTime"],
            producer=event["producer"],
            run=base.Run(runId=event["run"]["runId"]),
            job=base.Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
            inputs=[
                base.InputDataset(
                    namespace=item["namespace"],
                    name=item["name"],
                    facets=_dataset_facets(item["facets"]),
                )
                for item in event["inputs"]
            ],
            outputs=[
                base.OutputDataset(
                    namespace=item["namespace"],
                    name=item["name"],
                    facets=_dataset_facets(item["facets"]),
                    outputFacets={
                        "outputStatistics": OutputStatisticsOutputDatasetFacet(
                            **_fields(item["outputFacets"]["outputStatistics"]),
                            producer=PRODUCER,
                        )
                    }
                    if "outputFacets" in item
                    else {},
                )
                for item in event["outputs"]
            ],
        )
        expected = {**event, "run": {"runId": event["run"]["runId"]}}
        assert _without_empty(Serde.to_dict(rebuilt)) == _without_empty(expected)
        assert isinstance(custom, dict)
        return
    dataset = event["dataset"]
    rebuilt = base.DatasetEvent(
        eventTime=event["eventTime"],
        producer=event["producer"],
        dataset=base.StaticDataset(
            namespace=dataset["namespace"],
            name=dataset["name"],
            facets=_dataset_facets(dataset["facets"]),
        ),
    )
    assert _without_empty(Serde.to_dict(rebuilt)) == _without_empty(event)


def _without_empty(value: Any) -> Any:
    """Drop empty lists, mappings and nulls, which the spec treats as absent."""
    if isinstance(value, dict):
        kept = {key: _without_empty(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in ({}, [], None)}
    if isinstance(value, list):
        return [_without_empty(item) for item in value]
    return value
