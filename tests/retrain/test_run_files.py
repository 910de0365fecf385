"""A pipeline run's files and its MLflow artifacts live in the bucket when artifacts are in S3.

The S3 API is moto in server mode on 127.0.0.1 (:mod:`tests.s3`); the worker's configuration is
built from settings exactly as ``warden worker`` builds it.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from api.worker_process import runner_config as runner_config_for
from governance.actors import Actor
from governance.roles import Role
from lineage.errors import Unavailable
from lineage.storage import LocalStore, open_store
from lineage.store import session_scope
from retrain.pipelines import EvaluationSpec, Pipeline, PipelineRunState, Step, request_run
from retrain.run_files import publish_run_files
from retrain.runner import execute_pipeline_run
from retrain.runner_config import RunnerConfig, run_directory, run_key
from tests.conftest import Issued
from tests.retrain.conftest import ADULT_TRAIN
from tests.s3 import artifacts_in_bucket, moto_server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """One moto S3 server for the module."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def in_s3(
    settings: Settings,
    runner_config: RunnerConfig,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """The test's settings with WARDEN_ARTIFACT_URL in a fresh bucket of the local S3 API."""
    bucket = f"warden-{uuid.uuid4().hex[:12]}"
    return artifacts_in_bucket(monkeypatch, s3_endpoint, settings, bucket)


def _local_files(data_dir: Path) -> list[str]:
    """Return the files in the data directory other than the databases and keys."""
    return sorted(
        path.relative_to(data_dir).as_posix()
        for path in data_dir.rglob("*")
        if path.is_file() and ".db" not in path.name and "keys" not in path.parts
    )


@pytest.mark.slow
def test_a_run_keeps_its_files_and_model_in_the_bucket_and_none_locally(
    in_s3: Settings,
    runner_config: RunnerConfig,
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    make_principal: Callable[..., Issued],
) -> None:
    config = replace(runner_config_for(in_s3), poll_seconds=0.05)
    store = in_s3.artifact_store()
    leak = f"import os; os.symlink({str(in_s3.resolved_audit_key_path())!r}, 'leak')"
    pipeline = make_pipeline(
        steps=[
            Step(name="train", entrypoint="api.demo.adult:train"),
            Step(name="link", command=[sys.executable, "-c", leak]),
        ],
        parameters={"train_path": str(ADULT_TRAIN), "max_rows": 1000, "max_iter": 10},
        evaluation=EvaluationSpec(
            holdout_uri=str(ADULT_TRAIN.with_name("adult.test.gz")),
            reader="api.demo.adult:read_adult",
            target="income",
            max_rows=500,
        ),
    )
    with session_scope(engine) as session:
        queued = request_run(session=session, pipeline=pipeline, actor=trainer).run

    run = execute_pipeline_run(engine=engine, run_id=queued.id, config=config)

    assert run.run_state is PipelineRunState.SUCCEEDED, run.error + run.log_tail
    assert "evaluated version 1 on 500 held-out rows" in run.log_tail
    kept = {key.removeprefix(run_key(run.id) + "/") for key in store.list(run_key(run.id))}
    assert {"context.json", "log.txt", "out/output.json", "evaluation/out/scored.parquet"} <= kept
    assert any(name.startswith("out/model/") for name in kept)
    assert "out/leak" not in kept  # a link the step left is never followed into the bucket
    assert b"evaluated version 1" in store.get(run_key(run.id, "log.txt"))
    # MLflow logged the model beside them, and Warden verified it from there.
    assert any(key.endswith("model.skops") for key in store.list("mlflow-artifacts/"))
    assert _local_files(in_s3.data_dir) == []

    viewer = make_principal(role=Role.VIEWER, project="acme")
    with TestClient(create_app(in_s3, engine=engine)) as client:
        log = client.get(
            f"/api/v1/projects/acme/pipeline-runs/{run.id}/log", headers=viewer.headers
        )
    assert log.status_code == 200
    assert "registered income version 1" in log.text


def test_a_failed_run_keeps_its_log_only(
    in_s3: Settings,
    runner_config: RunnerConfig,
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
) -> None:
    config = replace(runner_config_for(in_s3), poll_seconds=0.05)
    half = "open('half.bin', 'wb').write(b'x' * 1000); print('half done'); raise SystemExit(3)"
    pipeline = make_pipeline(
        steps=[Step(name="half", command=[sys.executable, "-c", half])], parameters={}
    )
    with session_scope(engine) as session:
        queued = request_run(session=session, pipeline=pipeline, actor=trainer).run

    run = execute_pipeline_run(engine=engine, run_id=queued.id, config=config)

    assert run.run_state is PipelineRunState.FAILED
    store = in_s3.artifact_store()
    assert store.list(run_key(run.id)) == [run_key(run.id, "log.txt")]
    assert b"half done" in store.get(run_key(run.id, "log.txt"))
    assert _local_files(in_s3.data_dir) == []


def _working_folder(data_dir: Path, run_id: uuid.UUID) -> Path:
    directory = run_directory(data_dir, run_id)
    (directory / "out").mkdir(parents=True)
    (directory / "out" / "model.bin").write_bytes(b"m" * 100)
    (directory / "log.txt").write_text("==> step 'train'\n", encoding="utf-8")
    return directory


def test_a_run_over_the_size_bound_keeps_its_log_only(tmp_path: Path) -> None:
    run_id = uuid.uuid4()
    directory = _working_folder(tmp_path, run_id)
    store = LocalStore(tmp_path / "store")

    keys = publish_run_files(
        store=store, directory=directory, run_id=run_id, whole=True, max_bytes=50
    )

    assert keys == store.list() == [run_key(run_id, "log.txt")]
    assert b"only this log is kept" in store.get(run_key(run_id, "log.txt"))
    assert not directory.exists()


def test_a_store_that_fails_leaves_the_folder_for_the_next_attempt(
    in_s3: Settings,
    runner_config: RunnerConfig,
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
) -> None:
    good = replace(runner_config_for(in_s3), poll_seconds=0.05)
    missing = open_store("s3://no-such-bucket/prod", data_dir=in_s3.data_dir)
    say = [sys.executable, "-c", "print('said')"]
    pipeline = make_pipeline(steps=[Step(name="say", command=say)], parameters={})
    with session_scope(engine) as session:
        queued = request_run(session=session, pipeline=pipeline, actor=trainer).run
    directory = run_directory(in_s3.data_dir, queued.id)

    with pytest.raises(Unavailable, match="does not exist"):
        execute_pipeline_run(engine=engine, run_id=queued.id, config=replace(good, store=missing))
    assert "said" in (directory / "log.txt").read_text()

    again = execute_pipeline_run(engine=engine, run_id=queued.id, config=good)  # the job's retry
    assert again.run_state is PipelineRunState.FAILED  # as it ended the first time: no model
    store = in_s3.artifact_store()
    assert store.list(run_key(queued.id)) == [run_key(queued.id, "log.txt")]
    assert b"said" in store.get(run_key(queued.id, "log.txt"))
    assert not directory.exists()
