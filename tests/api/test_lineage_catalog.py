"""Browsing routes: datasets, their versions, jobs, one run, every model version."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

from governance.roles import Role
from tests.conftest import Issued
from tests.lineage.events import dataset, encode, run_event

BASE = "/api/v1/projects/acme"


def test_browse_what_a_pipeline_reported(
    client: TestClient, make_principal: Callable[..., Issued]
) -> None:
    writer = make_principal(role=Role.DATA_SCIENTIST, project="acme", service=True)
    viewer = make_principal(role=Role.VIEWER, project="acme")
    run_id = uuid.uuid4()
    event = run_event(
        event_type="COMPLETE",
        run_id=run_id,
        job="train",
        inputs=[dataset("file", "/features.parquet", version="f1")],
    )
    posted = client.post("/api/v1/lineage", content=encode(event), headers=writer.headers)
    assert posted.status_code == 201, posted.text
    registered = client.post(
        f"{BASE}/models/income/versions",
        json={
            "source_run_id": str(run_id),
            "artifact_uri": "m",
            "artifact_sha256": hashlib.sha256(b"m").hexdigest(),
        },
        headers=writer.headers,
    )
    assert registered.status_code == 201, registered.text

    datasets = client.get(f"{BASE}/datasets", headers=viewer.headers).json()
    assert [(d["name"], d["versions"], d["latest_version"]["version"]) for d in datasets] == [
        ("/features.parquet", 1, "f1")
    ]
    versions = client.get(
        f"{BASE}/datasets/versions",
        params={"namespace": "file", "name": "/features.parquet"},
        headers=viewer.headers,
    ).json()
    assert [v["version"] for v in versions] == ["f1"]
    jobs = client.get(f"{BASE}/jobs", headers=viewer.headers).json()
    assert [(j["name"], j["runs"], j["latest_run"]["state"]) for j in jobs] == [
        ("train", 1, "COMPLETE")
    ]
    run = client.get(f"{BASE}/runs/{run_id}", headers=viewer.headers).json()
    assert [i["version"] for i in run["inputs"]] == ["f1"]
    assert run["outputs"] == []
    assert [m["name"] for m in run["model_versions"]] == ["income"]
    models = client.get(f"{BASE}/models", headers=viewer.headers).json()
    assert [(m["name"], m["version"]) for m in models] == [("income", "1")]

    missing = client.get(f"{BASE}/runs/{uuid.uuid4()}", headers=viewer.headers)
    assert missing.status_code == 404
    outsider = make_principal(role=Role.ADMIN, project="other")
    assert client.get(f"{BASE}/datasets", headers=outsider.headers).status_code == 404


def test_dataset_versions_page_newest_first(
    client: TestClient, make_principal: Callable[..., Issued]
) -> None:
    writer = make_principal(role=Role.DATA_SCIENTIST, project="acme", service=True)
    viewer = make_principal(role=Role.VIEWER, project="acme")
    for version in ("f1", "f2", "f3"):
        event = run_event(
            event_type="COMPLETE",
            run_id=uuid.uuid4(),
            job="train",
            inputs=[dataset("file", "/features.parquet", version=version)],
        )
        posted = client.post("/api/v1/lineage", content=encode(event), headers=writer.headers)
        assert posted.status_code == 201, posted.text
    pages: list[list[str]] = []
    url: str | None = f"{BASE}/datasets/versions?namespace=file&name=/features.parquet&limit=2"
    while url is not None:
        answer = client.get(url, headers=viewer.headers)
        assert answer.status_code == 200, answer.text
        pages.append([v["version"] for v in answer.json()])
        url = answer.links["next"]["url"] if "next" in answer.links else None
    assert pages == [["f3", "f2"], ["f1"]]
