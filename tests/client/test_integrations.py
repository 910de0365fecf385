"""The one-line model wrapper and the ASGI middleware, logging to a live Warden."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeRegressor
from warden_client import WardenClient, WardenMiddleware, monitored

from tests.client.conftest import LiveWarden, closed_port_url

pytestmark = pytest.mark.slow


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 20.0, rows),
            "country": rng.choice(["fr", "de", "us"], rows),
            "age": rng.integers(18, 90, rows),
        }
    )


def _client(warden: LiveWarden, tmp_path: Path, deployment: object) -> WardenClient:
    return WardenClient(
        warden.url,
        "shop",
        deployment=str(deployment),
        api_key=warden.key,
        spool_dir=tmp_path / "spool",
        flush_interval=0.05,
    )


def test_a_wrapped_classifier_answers_unchanged_and_logs_prediction_and_score(
    warden: LiveWarden, tmp_path: Path
) -> None:
    train = _frame(400)
    target = (train["amount"] > 40).astype(int)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["country"]), remainder="passthrough"),
        LogisticRegression(max_iter=500),
    ).fit(train, target)
    deployment = warden.deployment()
    batch = _frame(50, seed=1)
    with _client(warden, tmp_path, deployment.id) as client:
        wrapped = monitored(model, client)
        probabilities = wrapped.predict_proba(batch)
        ids = wrapped.last_request_ids
        predictions = wrapped.predict(batch)
        assert client.flush(timeout=60)
    assert np.array_equal(probabilities, model.predict_proba(batch))
    assert np.array_equal(predictions, model.predict(batch))
    assert wrapped.classes_.tolist() == [0, 1]  # everything else passes through
    stored = warden.stored(deployment).set_index("request_id")
    assert len(stored) == 100
    assert len(set(ids)) == 50
    logged = stored.loc[ids]
    assert np.allclose(logged["score"], probabilities[:, 1])
    assert logged["prediction"].astype(int).tolist() == probabilities.argmax(axis=1).tolist()
    assert np.allclose(logged["amount"], batch["amount"])
    assert logged["country"].tolist() == batch["country"].tolist()


def test_an_array_model_logs_features_under_its_given_names(
    warden: LiveWarden, tmp_path: Path
) -> None:
    features = np.random.default_rng(2).normal(size=(30, 2))
    model = DecisionTreeRegressor(max_depth=3).fit(features, features.sum(axis=1))
    deployment = warden.deployment({"x0": "float", "x1": "float"})
    with _client(warden, tmp_path, deployment.id) as client:
        answer = monitored(model, client).predict(features)  # no names: x0, x1
        assert client.flush(timeout=60)
    assert np.array_equal(answer, model.predict(features))
    stored = warden.stored(deployment).sort_values("x0")
    order = np.argsort(features[:, 0])
    assert np.allclose(stored["x1"], features[order, 1])
    assert np.allclose(stored["prediction"].astype(float), answer[order])


class _BrokenLog:
    def log(self, features: Mapping[str, object], **_: Any) -> str:
        raise OSError("disk full")


def test_a_failing_log_never_changes_or_breaks_a_prediction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = DecisionTreeRegressor().fit([[0.0], [1.0]], [0.0, 1.0])
    with caplog.at_level(logging.ERROR, logger="warden_client"):
        answer = monitored(model, _BrokenLog()).predict([[1.0]])
    assert answer.tolist() == [1.0]
    assert "could not log a prediction" in caplog.text


def _app(client: WardenClient, deployment: object, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        return {"prediction": int(body["amount"] > 40), "score": 0.75, "model": "v1"}

    @app.post("/predict/many")
    def predict_many(body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"prediction": int(row["amount"] > 40), "score": 0.5} for row in body]

    @app.post("/other")
    def other(body: dict[str, Any]) -> dict[str, Any]:
        return {"prediction": 1}

    app.add_middleware(
        WardenMiddleware,
        client=client,
        routes={"/predict": str(deployment), "/predict/many": str(deployment)},
        **options,
    )
    return app


def test_the_middleware_logs_what_the_app_answered_on_its_routes_only(
    warden: LiveWarden, tmp_path: Path
) -> None:
    deployment = warden.deployment()
    row = {"amount": 50.0, "country": "fr", "age": 40}
    with _client(warden, tmp_path, deployment.id) as client:
        http = TestClient(_app(client, deployment.id))
        answered = http.post("/predict", json=row, headers={"X-Request-ID": "order-17"})
        assert answered.json() == {"prediction": 1, "score": 0.75, "model": "v1"}
        assert answered.headers["x-warden-request-id"] == "order-17"
        fresh = http.post("/predict", json={**row, "amount": 10.0}).headers["x-warden-request-id"]
        many = http.post("/predict/many", json=[row, {**row, "amount": 1.0}])
        assert many.status_code == 200
        assert http.post("/other", json=row).status_code == 200
        assert http.post("/predict", content=b"not json").status_code == 422
        assert client.flush(timeout=60)
    many_id = many.headers["x-warden-request-id"]
    stored = warden.stored(deployment).set_index("request_id")
    assert sorted(stored.index) == sorted(["order-17", fresh, f"{many_id}-0", f"{many_id}-1"])
    assert stored.loc["order-17", "prediction"] == 1
    assert stored.loc["order-17", "score"] == 0.75
    assert stored.loc[fresh, "prediction"] == 0
    assert stored.loc[f"{many_id}-1", "amount"] == 1.0


def test_the_middleware_never_slows_or_breaks_the_app_while_warden_is_down(
    tmp_path: Path,
) -> None:
    client = WardenClient(
        closed_port_url(), "shop", deployment=uuid.uuid4(), api_key="k",
        spool_dir=tmp_path / "spool", flush_interval=0.01, timeout=5, max_queue=1_000,
    )  # fmt: skip
    http = TestClient(_app(client, client.deployment, features_key=None))
    slowest = 0.0
    for i in range(200):
        started = time.perf_counter()
        answer = http.post("/predict", json={"amount": float(i), "country": "fr", "age": 30})
        slowest = max(slowest, time.perf_counter() - started)
        assert answer.status_code == 200
        assert answer.json()["prediction"] == int(i > 40)
    assert slowest < 2.0  # a request waiting on Warden would take the 5-second timeout
    assert not client.close(timeout=0.5)
    assert client.stats.logged == 200
    assert client.stats.spooled == 200
