"""The retraining loop over HTTP: pipeline run → version → approval → promotion → predictions."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.settings import Settings
from api.worker_process import runner_config
from governance.audit import AuditEntry
from governance.roles import Role
from lineage.store import session_scope
from retrain.runner import execute_pipeline_run
from tests.adult import FEATURES, adult_test
from tests.conftest import Issued

ADULT_TRAIN = Path(__file__).resolve().parents[2] / "data" / "adult" / "adult.data.gz"
BASE = "/api/v1/projects/acme"


def _rows(count: int) -> list[dict[str, Any]]:
    frame = adult_test().head(count)[FEATURES]
    return [
        {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@pytest.mark.slow
def test_a_trained_version_is_promoted_after_approval_and_serves_predictions(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    make_principal: Callable[..., Issued],
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    approver = make_principal(role=Role.APPROVER)
    spec = {
        "name": "income-train",
        "model_name": "income",
        "steps": [{"name": "train", "entrypoint": "api.demo.adult:train"}],
        "parameters": {"train_path": str(ADULT_TRAIN), "max_rows": 3000, "max_iter": 30},
    }
    assert client.post(f"{BASE}/pipelines", json=spec, headers=scientist.headers).is_success
    run = client.post(
        f"{BASE}/pipelines/income-train/runs",
        json={"reason": "first model"},
        headers=scientist.headers,
    ).json()

    # What the worker's pipeline_run handler does, in this process.
    config = runner_config(settings)
    execute_pipeline_run(engine=engine, run_id=uuid.UUID(run["id"]), config=config)
    done = client.get(f"{BASE}/pipeline-runs/{run['id']}", headers=scientist.headers).json()
    assert done["state"] == "succeeded", done["error"] + done["log_tail"]
    assert done["model_version"] == "1"
    version = client.get(f"{BASE}/models/income/versions/1", headers=scientist.headers).json()
    assert version["registered_by"] == str(scientist.principal.id)

    predict_url = f"{BASE}/deployments/income-api/predict"
    before = client.post(predict_url, json={"rows": _rows(3)}, headers=scientist.headers)
    assert before.status_code == 404

    promote_url = f"{BASE}/models/income/versions/1/promote"
    target = {"deployment": "income-api", "environment": "production"}
    blocked = client.post(promote_url, json=target, headers=scientist.headers)
    assert blocked.status_code == 403
    assert "approved request" in blocked.json()["detail"]
    with session_scope(engine) as session:
        denied = session.exec(select(AuditEntry).where(AuditEntry.action == "model.promote")).one()
    assert (denied.outcome, denied.target) == ("denied", "model:income/1")

    asked = client.post(
        f"{BASE}/models/income/versions/1/promotion-requests",
        json={"reason": "first income model"},
        headers=scientist.headers,
    )
    assert asked.status_code == 201, asked.text
    approval = asked.json()["approval_id"]
    own = client.post(
        f"{BASE}/approvals/{approval}/approve", json={"reason": "mine"}, headers=scientist.headers
    )
    assert own.status_code == 403
    approved = client.post(
        f"{BASE}/approvals/{approval}/approve",
        json={"reason": "looks fine"},
        headers=approver.headers,
    )
    assert approved.status_code == 200, approved.text
    assert client.post(promote_url, json=target, headers=approver.headers).status_code == 403

    promoted = client.post(promote_url, json=target, headers=scientist.headers)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["kind"] == "promote"
    assert promoted.json()["approval_id"] == approval

    ids = [f"req-{i}" for i in range(25)]
    request = {"rows": _rows(25), "request_ids": ids}
    answer = client.post(predict_url, json=request, headers=scientist.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "1"
    assert len(body["predictions"]) == 25
    assert set(body["predictions"]) <= {0, 1}
    assert all(0 <= s <= 1 for s in body["scores"])
    # Logged for the monitors under the client's ids: labels can follow, re-sends count once.
    assert (body["request_ids"], body["logged"]) == (ids, 25)
    again = client.post(predict_url, json=request, headers=scientist.headers).json()
    assert again["logged"] == 0
    deployment_id = promoted.json()["lineage_deployment_id"]
    labels = client.post(
        f"{BASE}/deployments/{deployment_id}/labels",
        json={"labels": [{"request_id": "req-0", "label": 1}]},
        headers=scientist.headers,
    )
    assert labels.status_code == 201, labels.text
    assert labels.json()["accepted"] == 1
    generated = client.post(predict_url, json={"rows": _rows(2)}, headers=scientist.headers)
    assert len(set(generated.json()["request_ids"])) == 2
    assert generated.json()["logged"] == 2
    clash = client.post(
        predict_url, json={"rows": _rows(2), "request_ids": ["a", "a"]}, headers=scientist.headers
    )
    assert clash.status_code == 422

    missing = client.post(predict_url, json={"rows": [{"age": 30}]}, headers=scientist.headers)
    assert missing.status_code == 422
    assert missing.json()["field"] == "rows"
    live = client.get(f"{BASE}/deployments/income-api/promotions", headers=approver.headers)
    assert [p["model_version"] for p in live.json()] == ["1"]
