"""The stock openlineage-python client, unchanged, posting a pipeline to a live Warden."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    DatasetFacet,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from governance.roles import Role
from lineage import DeploymentCreate, get_project, record_deployment, session_scope
from tests.api.going_live import approve_version
from tests.conftest import Issued, bearer
from tests.lineage.counts import row_counts
from tests.lineage.events import DB as GRAPH_DB
from tests.lineage.events import train_generation

PRODUCER = "https://github.com/warden/tests"
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """Serve Warden with uvicorn on a free port in a thread; yield its base URL."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _client(url: str, key: str, *, gzip: bool) -> OpenLineageClient:
    config = HttpConfig(
        url=url,
        endpoint="api/v1/lineage?project=acme",
        auth=ApiKeyTokenProvider({"apiKey": key}),
        compression=HttpCompression.GZIP if gzip else None,
        retry={"total": 0},
    )
    return OpenLineageClient(transport=HttpTransport(config))


def _event(
    state: RunState,
    run_id: str,
    job: str,
    minutes: int,
    inputs: list[InputDataset] | None = None,
    outputs: list[OutputDataset] | None = None,
) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=(T0 + timedelta(minutes=minutes)).isoformat(),
        run=Run(runId=run_id),
        job=Job(namespace="adult", name=job),
        producer=PRODUCER,
        inputs=inputs or [],
        outputs=outputs or [],
    )


def _schema(*names: str) -> dict[str, DatasetFacet]:
    fields = [schema_dataset.SchemaDatasetFacetFields(name=n, type="string") for n in names]
    return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}


@pytest.mark.slow
def test_the_stock_client_posts_a_pipeline_whose_graph_provenance_and_impact_read_back(
    live_url: str, make_principal: Callable[..., Issued], engine: Engine
) -> None:
    ingester = make_principal(role=Role.DATA_SCIENTIST, project="acme", service=True)
    featurize_run, train_run = str(uuid.uuid4()), str(uuid.uuid4())
    raw = InputDataset(namespace="file", name="/data/adult.csv", facets=_schema("age", "sex"))
    features = OutputDataset(
        namespace="file",
        name="/data/features.parquet",
        facets=_schema("age", "sex_code"),
        outputFacets={
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=32561
            )
        },
    )
    features_in = InputDataset(namespace="file", name="/data/features.parquet")

    plain = _client(live_url, ingester.key, gzip=False)
    plain.emit(_event(RunState.START, featurize_run, "featurize", 0, inputs=[raw]))
    plain.emit(_event(RunState.COMPLETE, featurize_run, "featurize", 3, [raw], [features]))
    gzipped = _client(live_url, ingester.key, gzip=True)
    gzipped.emit(_event(RunState.START, train_run, "train", 5, inputs=[features_in]))
    gzipped.emit(_event(RunState.COMPLETE, train_run, "train", 9, inputs=[features_in]))
    counts = row_counts(engine)
    plain.emit(_event(RunState.COMPLETE, featurize_run, "featurize", 3, [raw], [features]))
    assert row_counts(engine) == counts, "a replayed event changed the store"

    with httpx.Client(base_url=live_url, headers=bearer(ingester.key)) as http:
        artifact = hashlib.sha256(b"model bytes").hexdigest()
        registered = http.post(
            "/api/v1/projects/acme/models/income/versions",
            json={
                "source_run_id": train_run,
                "artifact_uri": "models:/income/1",
                "artifact_sha256": artifact,
                "metrics": {"roc_auc": 0.92},
                "feature_schema": {"age": "integer", "sex": "category"},
            },
        )
        assert registered.status_code == 201, registered.text
        assert registered.json()["version"] == "1"
        approve_version(
            http,
            project="acme",
            name="income",
            version="1",
            requester=ingester,
            approver=make_principal(role=Role.APPROVER, project="acme"),
        )
        deployed = http.post(
            "/api/v1/projects/acme/deployments",
            json={
                "name": "income-api",
                "environment": "production",
                "model_name": "income",
                "model_version": "1",
            },
        )
        assert deployed.status_code == 201, deployed.text

        graph = http.get(
            "/api/v1/lineage", params={"nodeId": "model:income:1", "depth": 10, "project": "acme"}
        )
        provenance = http.get("/api/v1/projects/acme/models/income/versions/1/provenance")
        impact = http.get(
            "/api/v1/projects/acme/datasets/impact",
            params={"namespace": "file", "name": "/data/adult.csv"},
        )

    assert graph.status_code == 200, graph.text
    nodes = {node["id"]: node for node in graph.json()["graph"]}
    assert set(nodes) == {
        "dataset:file:/data/adult.csv",
        "job:adult:featurize",
        "dataset:file:/data/features.parquet",
        "job:adult:train",
        "model:income:1",
        "deployment:production:income-api",
    }
    assert nodes["model:income:1"]["inEdges"] == [
        {"origin": "job:adult:train", "destination": "model:income:1"}
    ]
    assert nodes["job:adult:featurize"]["outEdges"] == [
        {"origin": "job:adult:featurize", "destination": "dataset:file:/data/features.parquet"}
    ]
    assert nodes["deployment:production:income-api"]["data"]["liveModel"] == "model:income:1"

    assert provenance.status_code == 200, provenance.text
    upstream = provenance.json()
    assert [r["job_name"] for r in upstream["runs"]] == ["featurize", "train"]
    assert all(r["state"] == "COMPLETE" for r in upstream["runs"])
    assert [d["name"] for d in upstream["dataset_versions"]] == [
        "/data/adult.csv",
        "/data/features.parquet",
    ]
    assert upstream["dataset_versions"][1]["row_count"] == 32561
    assert upstream["model_version"]["artifact_sha256"] == artifact
    assert upstream["model_version"]["source_run_id"] == train_run

    assert impact.status_code == 200, impact.text
    downstream = impact.json()
    assert [r["run_id"] for r in downstream["runs"]] == [featurize_run, train_run]
    assert [d["name"] for d in downstream["dataset_versions"]] == ["/data/features.parquet"]
    assert [(m["name"], m["version"]) for m in downstream["model_versions"]] == [("income", "1")]
    assert [(d["name"], d["environment"]) for d in downstream["deployments"]] == [
        ("income-api", "production")
    ]


def test_impact_over_http_without_a_version_covers_every_version_of_the_dataset(
    client: TestClient, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    reader = make_principal(role=Role.VIEWER, project="acme")
    start = datetime(2026, 11, 20, tzinfo=UTC)
    with session_scope(engine) as session:
        project = get_project(session=session, name="acme")
        for generation in ("1", "2"):
            version = train_generation(
                session, project.id, f"v{generation}", minutes=10 * int(generation)
            )
            record_deployment(
                session=session,
                project_id=project.id,
                spec=DeploymentCreate(
                    name="api", environment="prod", model_name="income", model_version=version
                ),
                at=start + timedelta(days=int(generation) - 1),
            )
    url = "/api/v1/projects/acme/datasets/impact"
    every = client.get(
        url, params={"namespace": GRAPH_DB, "name": "public.adult"}, headers=reader.headers
    )
    assert every.status_code == 200, every.text
    assert [v["version"] for v in every.json()["covered"]] == ["v1", "v2"]
    assert [m["version"] for m in every.json()["model_versions"]] == ["1", "2"]
    assert [d["model_version"] for d in every.json()["deployments"]] == ["2"]
    one = client.get(
        url,
        params={"namespace": GRAPH_DB, "name": "public.adult", "version": "v1"},
        headers=reader.headers,
    )
    assert [v["version"] for v in one.json()["covered"]] == ["v1"]
    assert one.json()["deployments"] == []  # v1's model was replaced
