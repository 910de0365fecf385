"""The persisted path over HTTP: inferences in, baseline, a queued run, the worker, the report.

The worker is the one ``warden worker`` builds from the settings (real model loader, findings
routed to governance), so an alert rule sees the run's findings as an incident.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from api.worker_process import build_registry
from governance.roles import Role
from lineage.models import Deployment
from lineage.projects import Project
from lineage.runtime.worker import Worker
from tests.adult import FEATURES, TARGET, adult_test, adult_train
from tests.conftest import Issued
from tests.monitors.serving import adult_deployment, dataset_version, records
from tests.s3 import artifacts_in_bucket, moto_server

Make = Callable[..., Issued]
BASE = "/api/v1/projects/acme"


@pytest.fixture
def scientist(make_principal: Make) -> Issued:
    return make_principal(role=Role.DATA_SCIENTIST, project="acme")


@pytest.fixture
def deployment(
    engine: Engine, scientist: Issued, make_project: Callable[[str], Project]
) -> Deployment:
    return adult_deployment(engine, project_id=make_project("acme").id)


@pytest.mark.slow
def test_inferences_in_over_http_a_run_and_its_report_out(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    make_principal: Make,
    deployment: Deployment,
) -> None:
    headers = scientist.headers
    train = adult_train().sample(5000, random_state=0)[[*FEATURES, TARGET]]
    (settings.data_dir / "datasets").mkdir()
    train.to_csv(settings.data_dir / "datasets" / "train.csv", index=False)
    version = dataset_version(engine, deployment.project_id, "datasets/train.csv")
    baseline = client.post(
        f"{BASE}/baselines",
        json={"deployment_id": str(deployment.id), "dataset_version_id": str(version)},
        headers=headers,
    )
    assert baseline.status_code == 201, baseline.text

    test = adult_test()
    window = test[test["age"] > 45].sample(1200, random_state=0).reset_index(drop=True)
    logged = client.post(
        f"{BASE}/deployments/{deployment.id}/inferences",
        json={"records": records(window)},
        headers=headers,
    )
    assert logged.status_code == 201, logged.text

    channel = client.post(
        f"{BASE}/alert-channels",
        json={"kind": "webhook", "name": "ops", "url": "http://10.0.0.1/hook"},
        headers=headers,
    )
    assert channel.status_code == 201, channel.text
    rule = client.post(
        f"{BASE}/alert-rules",
        json={
            "name": "drift",
            "monitor_kinds": ["drift"],
            "channel_ids": [channel.json()["channel"]["id"]],
        },
        headers=headers,
    )
    assert rule.status_code == 201, rule.text

    monitor = client.post(
        f"{BASE}/monitors",
        json={
            "name": "drift-daily",
            "deployment_id": str(deployment.id),
            "spec": {"kind": "drift", "thresholds": {"drift_share": 0.2}},
            "schedule": {"interval_seconds": 86400},
            "window": "last:24h",
            "paused": True,
        },
        headers=headers,
    ).json()
    run = client.post(f"{BASE}/monitors/{monitor['id']}/runs", headers=headers).json()
    report_url = f"{BASE}/monitor-runs/{run['id']}/report"
    early = client.get(report_url, headers=headers)
    assert early.status_code == 404
    assert "no report yet" in early.json()["detail"]
    drift_url = f"{BASE}/monitor-runs/{run['id']}/drift.html"
    assert client.get(drift_url, headers=headers).status_code == 404

    worker = Worker(engine=engine, registry=build_registry(settings))
    assert worker.run_once()
    done = client.get(f"{BASE}/monitor-runs/{run['id']}", headers=headers).json()
    assert done["state"] == "succeeded", done["error"]
    assert done["summary"]["status"] == "alert"
    assert done["summary"]["rows"] == 1200
    # The findings are recorded (and the incident opened) before Evidently renders anything.
    assert len(client.get(f"{BASE}/incidents", headers=headers).json()) == 1
    pending = client.get(drift_url, headers=headers)
    assert pending.status_code == 404
    assert "not rendered yet (its job is queued" in pending.json()["detail"]
    assert worker.run_once()  # the background job: Evidently's page

    viewer = make_principal(role=Role.VIEWER, project="acme")
    document = client.get(report_url, headers=viewer.headers)
    assert document.status_code == 200, document.text
    body = document.json()
    assert body["format"] == "warden.report/1"
    assert body["meta"]["baseline_id"] == baseline.json()["id"]
    findings = body["results"][0]["findings"]
    assert findings == done["summary"]["findings"]
    age = next(f for f in findings if f["scope"] == "column:age")
    reference = train["age"].to_numpy(np.float64)
    exact = stats.wasserstein_distance(reference, window["age"].to_numpy(np.float64))
    assert age["value"] == pytest.approx(exact / np.std(reference), rel=0.02)

    page = client.get(f"{report_url}.html", headers=viewer.headers)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text
    assert "drift-daily" in page.text
    assert "<script" not in page.text
    assert 'href="drift.html"' in page.text
    assert body["links"] == {"Evidently drift page (sampled)": "drift.html"}

    evidently = client.get(drift_url, headers=viewer.headers)
    assert evidently.status_code == 200, evidently.text
    assert evidently.headers["content-type"].startswith("text/html")
    assert "Drifted Columns" in evidently.text  # Evidently's dataset-drift widget
    assert f"out of {len(FEATURES)})" in evidently.text
    for name in FEATURES:
        assert f"Drift for column {name}" in evidently.text, name

    incidents = client.get(f"{BASE}/incidents", headers=headers).json()
    assert len(incidents) == 1
    assert incidents[0]["source_id"] == monitor["id"]

    outsider = make_principal(role=Role.VIEWER, project="other")
    stranger = client.get(
        f"/api/v1/projects/other/monitor-runs/{run['id']}/report", headers=outsider.headers
    )
    assert stranger.status_code == 404
    elsewhere = client.get(
        f"/api/v1/projects/other/monitor-runs/{run['id']}/drift.html", headers=outsider.headers
    )
    assert elsewhere.status_code == 404


@pytest.mark.slow
def test_monitor_data_lives_in_the_bucket_when_artifacts_do(
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WARDEN_ARTIFACT_URL=s3://… on a real S3 API (moto's server on 127.0.0.1): an uploaded
    reference and its baseline, logged inferences and labels, a drift run's report, window
    sample and Evidently page all go to the bucket and are read back from it over the API; the
    data directory holds nothing of the monitors' afterwards."""
    headers = scientist.headers
    columns = ["age", "hours_per_week", "education"]
    train = adult_train().sample(1000, random_state=0)[[*FEATURES, TARGET]]
    test = adult_test()
    window = test[test["age"] > 45].sample(300, random_state=0).reset_index(drop=True)
    with moto_server() as endpoint:
        in_s3 = artifacts_in_bucket(monkeypatch, endpoint, settings, "warden-monitors")
        store = in_s3.artifact_store()
        with TestClient(create_app(in_s3, engine=engine)) as client:
            baseline = client.post(
                f"{BASE}/baselines/upload",
                data={"deployment_id": str(deployment.id), "label_column": TARGET},
                files={"file": ("train.csv", train.to_csv(index=False).encode(), "text/csv")},
                headers=headers,
            )
            assert baseline.status_code == 201, baseline.text
            logged = client.post(
                f"{BASE}/deployments/{deployment.id}/inferences",
                json={"records": records(window)},
                headers=headers,
            )
            assert logged.status_code == 201, logged.text
            labelled = client.post(
                f"{BASE}/deployments/{deployment.id}/labels",
                json={"labels": [{"request_id": "r0", "label": 1}]},
                headers=headers,
            )
            assert labelled.status_code == 201, labelled.text
            monitor = client.post(
                f"{BASE}/monitors",
                json={
                    "name": "drift-s3",
                    "deployment_id": str(deployment.id),
                    "spec": {"kind": "drift", "columns": columns},
                    "schedule": {"interval_seconds": 86400},
                    "window": "last:24h",
                    "paused": True,
                },
                headers=headers,
            ).json()
            run = client.post(f"{BASE}/monitors/{monitor['id']}/runs", headers=headers).json()
            worker = Worker(engine=engine, registry=build_registry(in_s3))
            assert worker.run_once()
            assert worker.run_once()  # the background job: Evidently's page
            report_url = f"{BASE}/monitor-runs/{run['id']}/report"
            document = client.get(report_url, headers=headers)
            assert document.status_code == 200, document.text
            assert document.json()["meta"]["baseline_id"] == baseline.json()["id"]
            [result] = document.json()["results"]
            assert {f["scope"] for f in result["findings"]} >= {f"column:{c}" for c in columns}
            page = client.get(f"{report_url}.html", headers=headers)
            assert page.status_code == 200
            assert "drift-s3" in page.text
            drift = client.get(f"{BASE}/monitor-runs/{run['id']}/drift.html", headers=headers)
            assert drift.status_code == 200, drift.text

        project, folder = deployment.project_id, f"reports/{deployment.project_id}/{run['id']}"
        kept = store.list()
        assert [k for k in kept if k.startswith(folder)] == [
            f"{folder}/drift.html",  # the window sample was removed once the page was drawn
            f"{folder}/report.html",
            f"{folder}/report.json",
        ]
        assert {k.split("/")[0] for k in kept} == {
            "baselines",
            "inferences",
            "references",
            "reports",
        }
        assert f"baselines/{project}/{baseline.json()['id']}.json" in kept
        assert sorted(k.split("/")[3] for k in kept if k.startswith("inferences/")) == [
            "inferences",
            "labels",
        ]
    left = sorted(p.relative_to(settings.data_dir).as_posix() for p in settings.data_dir.rglob("*"))
    assert [p for p in left if not p.startswith("keys")] == [], left
