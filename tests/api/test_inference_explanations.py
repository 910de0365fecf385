"""A local explanation of one logged inference: requested over HTTP, computed by the worker.

The request only queues an ``explanation`` job; the worker's real handler reads the logged
record, loads the real Adult model through the registry's loader and stores the contributions,
which are checked for additivity against the model's own margin and against shap directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import shap
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.settings import Settings
from governance.audit import AuditEntry
from governance.roles import Role
from lineage.models import Deployment, ModelVersion
from lineage.projects import Project
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.queue import RuntimeJob
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore
from lineage.store import session_scope
from monitors.run_jobs import register_monitor_handlers
from tests.adult import CATEGORICAL, FEATURES, adult_model, adult_test
from tests.conftest import Issued
from tests.monitors.serving import adult_deployment, records

Make = Callable[..., Issued]
BASE = "/api/v1/projects/acme"


class AdultLoader:
    """The test's model loader: the real Adult model for the registered version."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def load(self, model_version: ModelVersion) -> Any:
        self.loaded.append(model_version.name)
        return adult_model()


@pytest.fixture
def deployment(engine: Engine, make_project: Callable[[str], Project]) -> Deployment:
    return adult_deployment(engine, project_id=make_project("acme").id)


@pytest.mark.slow
def test_an_explanation_is_queued_computed_by_the_worker_and_matches_shap(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    make_principal: Make,
    deployment: Deployment,
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST, project="acme")
    viewer = make_principal(role=Role.VIEWER, project="acme")
    window = adult_test().sample(30, random_state=3).reset_index(drop=True)
    logged = client.post(
        f"{BASE}/deployments/{deployment.id}/inferences",
        json={"records": records(window)},
        headers=scientist.headers,
    )
    assert logged.status_code == 201, logged.text
    url = f"{BASE}/deployments/{deployment.id}/inferences/r7/explanation"

    unasked = client.get(url, headers=viewer.headers)
    assert unasked.status_code == 404
    assert "POST" in unasked.json()["detail"]
    unknown = client.post(
        f"{BASE}/deployments/{deployment.id}/inferences/nobody/explanation",
        headers=scientist.headers,
    )
    assert unknown.status_code == 404
    assert "nobody" in unknown.json()["detail"]
    assert client.post(url, headers=viewer.headers).status_code == 403
    with session_scope(engine) as session:
        assert session.exec(select(RuntimeJob)).all() == []

    queued = client.post(url, headers=scientist.headers)
    assert queued.status_code == 202, queued.text
    assert queued.headers["location"] == url
    assert queued.json()["state"] == "queued"
    assert queued.json()["explanation"] is None
    again = client.post(url, headers=scientist.headers)
    assert again.json()["job_id"] == queued.json()["job_id"]
    waiting = client.get(url, headers=viewer.headers).json()
    assert (waiting["state"], waiting["explanation"]) == ("queued", None)
    with session_scope(engine) as session:
        audited = session.exec(
            select(AuditEntry).where(AuditEntry.action == "inference.explain")
        ).all()
    assert [entry.target for entry in audited] == [f"deployment:{deployment.id}"]

    loader = AdultLoader()
    registry = register_monitor_handlers(
        HandlerRegistry(), store=LocalStore(settings.data_dir), loader=loader
    )
    assert Worker(engine=engine, registry=registry).run_once()
    assert loader.loaded == ["income"]
    done = client.get(url, headers=viewer.headers)
    assert done.status_code == 200
    body = done.json()
    assert body["state"] == "succeeded", body["error"]
    explanation = body["explanation"]
    assert explanation["method"] == "tree"
    assert explanation["request_id"] == "r7"
    contributions = explanation["contributions"]
    assert set(contributions) == set(FEATURES)
    assert explanation["base_value"] + sum(contributions.values()) == pytest.approx(
        explanation["output"], abs=1e-9
    )

    model = adult_model()
    row = window.iloc[[7]][FEATURES].astype(
        {name: "float64" for name in FEATURES if name not in CATEGORICAL}
    )
    assert explanation["output"] == pytest.approx(float(model.decision_function(row)[0]), abs=1e-6)
    explainer = shap.TreeExplainer(model[-1])
    values = explainer.shap_values(model[:-1].transform(row))
    names = list(model[:-1].get_feature_names_out())
    expected = dict(zip(names, np.asarray(values)[0], strict=True))
    for name in FEATURES:
        assert contributions[name] == pytest.approx(expected[name], abs=1e-6), name
    base = float(np.ravel(explainer.expected_value)[0])
    assert explanation["base_value"] == pytest.approx(base, abs=1e-6)

    elsewhere = make_principal(role=Role.ADMIN, project="other")
    foreign = client.get(
        f"/api/v1/projects/other/deployments/{deployment.id}/inferences/r7/explanation",
        headers=elsewhere.headers,
    )
    assert foreign.status_code == 404


@pytest.mark.slow
def test_an_explanation_reads_its_inference_and_baseline_from_a_bucket(
    engine: Engine,
    settings: Settings,
    make_principal: Make,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WARDEN_ARTIFACT_URL=s3://… (moto's server on 127.0.0.1): the worker reads the logged
    request and the baseline's sample from the bucket and the explanation is produced; nothing
    lands in the data directory but the app's own keys."""
    from api.app import create_app
    from tests.adult import TARGET, adult_train
    from tests.s3 import artifacts_in_bucket, moto_server

    scientist = make_principal(role=Role.DATA_SCIENTIST, project="acme")
    window = adult_test().sample(10, random_state=3).reset_index(drop=True)
    train = adult_train().sample(200, random_state=0)[[*FEATURES, TARGET]]
    with moto_server() as endpoint:
        in_s3 = artifacts_in_bucket(monkeypatch, endpoint, settings, "warden-explanations")
        store = in_s3.artifact_store()
        with TestClient(create_app(in_s3, engine=engine)) as client:
            baseline = client.post(
                f"{BASE}/baselines/upload",
                data={"deployment_id": str(deployment.id), "label_column": TARGET},
                files={"file": ("train.csv", train.to_csv(index=False).encode(), "text/csv")},
                headers=scientist.headers,
            )
            assert baseline.status_code == 201, baseline.text
            logged = client.post(
                f"{BASE}/deployments/{deployment.id}/inferences",
                json={"records": records(window)},
                headers=scientist.headers,
            )
            assert logged.status_code == 201, logged.text
            url = f"{BASE}/deployments/{deployment.id}/inferences/r7/explanation"
            assert client.post(url, headers=scientist.headers).status_code == 202
            loader = AdultLoader()
            registry = register_monitor_handlers(HandlerRegistry(), store=store, loader=loader)
            assert Worker(engine=engine, registry=registry).run_once()
            body = client.get(url, headers=scientist.headers).json()
        assert body["state"] == "succeeded", body["error"]
        explanation = body["explanation"]
        assert explanation["request_id"] == "r7"
        assert set(explanation["contributions"]) == set(FEATURES)
        assert explanation["base_value"] + sum(
            explanation["contributions"].values()
        ) == pytest.approx(explanation["output"], abs=1e-9)
        assert {key.split("/")[0] for key in store.list()} >= {"baselines", "inferences"}
    kept = [p for p in settings.data_dir.rglob("*") if p.is_file() and "keys" not in p.parts]
    assert kept == []
