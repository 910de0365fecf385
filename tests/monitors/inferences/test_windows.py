"""Reading logged inferences back: a window keeps only the records inside it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from lineage.models import Deployment
from lineage.storage import LocalStore, open_store
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.inferences import (
    InferenceRecord,
    LabelRecord,
    log_inferences,
    log_labels,
    read_inference,
    read_window,
)
from tests.adult import adult_test
from tests.monitors.serving import adult_deployment, records
from tests.s3 import ACCESS_KEY, SECRET_KEY, create_bucket, moto_server


@pytest.fixture
def deployment(engine: Engine) -> Deployment:
    return adult_deployment(engine)


@pytest.fixture
def rows() -> pd.DataFrame:
    return adult_test().iloc[:50]


def _log(
    engine: Engine, data_dir: Path, deployment: Deployment, batch: list[dict[str, Any]]
) -> Any:
    parsed = [InferenceRecord.model_validate(record) for record in batch]
    with session_scope(engine) as session:
        return log_inferences(
            session=session, store=LocalStore(data_dir), deployment=deployment, records=parsed
        )


def test_the_window_keeps_only_records_inside_it(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    now = utcnow()
    _log(
        engine,
        tmp_path,
        deployment,
        records(rows.iloc[:5], prefix="old", time=now - timedelta(days=3)),
    )
    _log(
        engine,
        tmp_path,
        deployment,
        records(rows.iloc[:7], prefix="new", time=now - timedelta(hours=1)),
    )
    with session_scope(engine) as session:
        frame, batches = read_window(
            session=session,
            store=LocalStore(tmp_path),
            deployment=deployment,
            start=now - timedelta(days=1),
            end=now,
        )
    assert sorted(frame["request_id"]) == sorted(f"new{i}" for i in range(7))
    assert len(batches) == 1


@pytest.mark.slow
def test_inference_logs_live_in_a_bucket_when_artifacts_do(
    engine: Engine,
    tmp_path: Path,
    deployment: Deployment,
    rows: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With an S3 store (moto's server on 127.0.0.1), batches and labels go to the bucket, a
    window and one logged request read back from it, a rolled-back batch's object is deleted,
    and the local directory stays empty."""
    now = utcnow()
    with moto_server() as endpoint:
        create_bucket(endpoint, "warden-logs")
        for name, value in (
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ):
            monkeypatch.setenv(name, value)
        store = open_store("s3://warden-logs/prod", data_dir=tmp_path, endpoint_url=endpoint)
        parsed = [
            InferenceRecord.model_validate(record)
            for record in records(rows.iloc[:6], time=now - timedelta(hours=1))
        ]
        with session_scope(engine) as session:
            log_inferences(session=session, store=store, deployment=deployment, records=parsed)
            log_labels(
                session=session,
                store=store,
                deployment=deployment,
                labels=[LabelRecord(request_id="r1", label=1)],
            )
        late = [InferenceRecord.model_validate(records(rows.iloc[:1], prefix="late")[0])]
        seen: list[int] = []

        def log_then_fail() -> None:
            with session_scope(engine) as session:
                log_inferences(session=session, store=store, deployment=deployment, records=late)
                seen.append(len(store.list("inferences/")))
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError, match="rolled back"):
            log_then_fail()
        assert seen == [3]
        with session_scope(engine) as session:
            window, batches = read_window(
                session=session,
                store=store,
                deployment=deployment,
                start=now - timedelta(days=1),
                end=now,
            )
            one = read_inference(
                session=session, store=store, deployment=deployment, request_id="r2"
            )
        assert sorted(window["request_id"]) == [f"r{i}" for i in range(6)]
        assert window.set_index("request_id")["label"].to_dict()["r1"] == 1
        assert len(batches) == 1
        assert one["request_id"].tolist() == ["r2"]
        assert [key.split("/")[3] for key in store.list()] == ["inferences", "labels"]
    assert list(tmp_path.rglob("*.parquet")) == []
    assert not (tmp_path / "inferences").exists()
