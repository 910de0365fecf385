"""Project code runs isolated from the control plane: these tests perform the attacks.

A hostile pipeline step and a hostile evaluation reader (``sandbox_code/hostile_code.py``) try
to read and overwrite Warden's keys, its database and another project's data, to read the
worker's environment (a planted secret), to reach the network, and to smuggle files out as a
"model" made of links. Each must fail, and the secret must appear nowhere: not in the log, the
run row, MLflow or the evaluation.
"""

from __future__ import annotations

import logging
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.settings import Settings
from api.worker_process import runner_config as runner_config_for
from governance.actors import Actor
from lineage.errors import InvalidInput
from lineage.models import Dataset, DatasetVersion
from lineage.projects import Project
from lineage.store import session_scope
from retrain.evaluation import Evaluation
from retrain.mlflow_registry import Registry
from retrain.pipelines import (
    EvaluationSpec,
    Pipeline,
    PipelineRun,
    PipelineRunState,
    Step,
    TrainingData,
    request_run,
)
from retrain.runner import execute_pipeline_run
from retrain.runner_config import RunnerConfig, run_key
from retrain.sandbox import BubblewrapExecutor, UnsandboxedExecutor, executor_for

HOSTILE_CODE = Path(__file__).resolve().parent / "sandbox_code"
KEYS = ("dashboard-session.key", "audit-ed25519.pem", "outbound.key")


@dataclass(frozen=True)
class Secrets:
    """What an attacker wants, planted where Warden keeps it, all holding ``marker``."""

    marker: str
    files: list[Path]
    port: int

    def targets(self) -> str:
        return "@" + ",".join(map(str, self.files))


@pytest.fixture
def secrets(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Secrets]:
    marker = f"SECRET-{uuid.uuid4().hex}"
    keys = settings.data_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    files = []
    for name in KEYS:
        (keys / name).write_text(f"{marker} {name}\n")
        files.append(keys / name)
    default_database = settings.data_dir / "warden.db"  # where the store lives by default
    default_database.write_text(f"{marker} database\n")
    other = settings.data_dir / "inferences" / str(uuid.uuid4()) / "batch-1.csv"
    other.parent.mkdir(parents=True)
    other.write_text(f"age,income\n{marker},1\n")
    database = Path(settings.resolved_database_url().removeprefix("sqlite:///"))
    files += [default_database, other, *([database] if database.is_file() else [])]
    # The worker's environment: a planted credential and a Warden setting.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", marker)
    monkeypatch.setenv("WARDEN_PLANTED_SECRET", marker)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield Secrets(marker=marker, files=files, port=listener.getsockname()[1])


@pytest.fixture
def hostile_config(runner_config: RunnerConfig) -> RunnerConfig:
    """The test's runner, with the hostile module installed as project code."""
    return replace(runner_config, code_paths=(HOSTILE_CODE,))


def _queue(engine: Engine, pipeline: Pipeline, actor: Actor) -> PipelineRun:
    with session_scope(engine) as session:
        return request_run(session=session, pipeline=pipeline, actor=actor, reason="test").run


def _log(config: RunnerConfig, run: PipelineRun) -> str:
    """Return the log the finished run keeps in the artifact store."""
    return config.artifacts().get(run_key(run.id, "log.txt")).decode()


def _assert_nothing_leaked(
    secrets: Secrets, run: PipelineRun, config: RunnerConfig, log: str
) -> None:
    assert secrets.marker not in log
    assert secrets.marker not in run.log_tail + run.error + str(run.metrics)
    kept = config.artifacts().list(run_key(run.id))
    assert run_key(run.id, "log.txt") in kept
    for key in kept:  # what the run keeps (its step's output too) holds no secret
        assert secrets.marker.encode() not in config.artifacts().get(key), key
    for path in secrets.files[:5]:  # unchanged on the host
        assert secrets.marker in path.read_text()
        assert "overwritten" not in path.read_text()
    database = secrets.files[5:]  # the test's store (its /tmp path is private in the sandbox)
    assert all(path.read_bytes().startswith(b"SQLite format 3") for path in database)


def test_a_hostile_step_reads_no_key_database_other_project_or_environment(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    hostile_config: RunnerConfig,
    registry: Registry,
    secrets: Secrets,
) -> None:
    pipeline = make_pipeline(
        steps=[Step(name="steal", entrypoint="hostile_code:steal")],
        parameters={"targets": secrets.targets(), "port": secrets.port},
    )
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, pipeline, trainer).id, config=hostile_config
    )

    log = _log(hostile_config, run)
    assert "LOOT" in log, log  # the step ran, as uid 65534 in the sandbox
    for path in secrets.files:
        assert f'"{path}": "refused FileNotFoundError"' in log, (path, log)
    for path in secrets.files[:5]:  # under the data dir: hidden behind a read-only empty folder
        assert f'"write {path}": "refused' in log
    assert '"network": "refused' in log
    assert "AWS_SECRET_ACCESS_KEY" not in log
    assert "WARDEN_PLANTED_SECRET" not in log
    # The "model" made of links to the keys is refused; nothing reaches MLflow.
    assert run.state == PipelineRunState.FAILED
    assert "links are refused" in run.error
    assert registry.registered_model_names() == []
    _assert_nothing_leaked(secrets, run, hostile_config, log)


def test_output_that_links_to_a_key_is_not_followed(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
    secrets: Secrets,
) -> None:
    key = secrets.files[1]
    link = f"import os; os.symlink({str(key)!r}, 'output.json')"
    pipeline = make_pipeline(
        steps=[Step(name="link", command=[sys.executable, "-c", link])], parameters={}
    )
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, pipeline, trainer).id, config=runner_config
    )
    assert run.state == PipelineRunState.FAILED
    assert "output.json must be a regular file, not a link" in run.error
    _assert_nothing_leaked(secrets, run, runner_config, run.log_tail)


def test_a_pipeline_cannot_name_a_key_or_another_projects_file_as_its_input(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
    project: Project,
    secrets: Secrets,
) -> None:
    stolen = make_pipeline(parameters={"train_path": str(secrets.files[1])})
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, stolen, trainer).id, config=runner_config
    )
    assert run.state == PipelineRunState.FAILED
    assert "is not a file pipelines may read" in run.error
    assert run.error.startswith("parameters.train_path: ")
    assert runner_config.artifacts().list(run_key(run.id)) == []  # no step, nothing kept

    with session_scope(engine) as session:
        dataset = Dataset(project_id=project.id, namespace="file", name="other/batch")
        session.add(dataset)
        session.flush()
        version = DatasetVersion(
            project_id=project.id, dataset_id=dataset.id, version="v1", uri=str(secrets.files[4])
        )
        session.add(version)
        session.flush()
        version_id = version.id
    other = make_pipeline(
        name="other-data",
        model_name="other",
        parameters={},
        training_data=TrainingData(dataset_version_ids=[version_id]),
    )
    refused = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, other, trainer).id, config=runner_config
    )
    assert refused.state == PipelineRunState.FAILED
    assert refused.error.startswith("training_data.dataset_version_ids.0: ")
    assert "is not a file pipelines may read" in refused.error
    assert secrets.marker not in refused.error + refused.log_tail


@pytest.mark.slow
def test_a_hostile_reader_runs_in_the_sandbox_and_reads_nothing(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    hostile_config: RunnerConfig,
    secrets: Secrets,
) -> None:
    targets = ",".join(map(str, secrets.files))
    pipeline = make_pipeline(
        evaluation=EvaluationSpec(
            holdout_uri=f"https://data.example/holdout?targets={targets}&port={secrets.port}",
            reader="hostile_code:read",
            target="income",
        )
    )
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, pipeline, trainer).id, config=hostile_config
    )

    assert run.state == PipelineRunState.SUCCEEDED, run.error + run.log_tail
    assert "hostile_code" not in sys.modules  # never imported into the worker
    log = _log(hostile_config, run)
    assert "==> evaluation: " in log
    assert "evaluation failed: evaluation exited with status 1" in log
    for path in secrets.files:
        assert f'"{path}": "refused FileNotFoundError"' in log, (path, log)
    assert '"network": "refused' in log
    with session_scope(engine) as session:
        assert session.exec(select(Evaluation)).all() == []
    _assert_nothing_leaked(secrets, run, hostile_config, log)


def test_without_bubblewrap_project_code_is_refused(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    runner_config: RunnerConfig,
) -> None:
    missing = replace(runner_config, executor=BubblewrapExecutor(bwrap="warden-no-such-bwrap"))
    pipeline = make_pipeline(
        steps=[Step(name="noop", command=[sys.executable, "-c", "pass"])], parameters={}
    )
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, pipeline, trainer).id, config=missing
    )
    assert run.state == PipelineRunState.FAILED
    assert "bubblewrap (bwrap) is not installed, so Warden will not run project code" in run.error
    assert "WARDEN_SANDBOX=none" in run.error


def test_the_development_setting_without_a_sandbox_is_explicit_and_loud(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="warden.sandbox"):
        unsandboxed = runner_config_for(settings.model_copy(update={"sandbox": "none"}))
    assert isinstance(unsandboxed.executor, UnsandboxedExecutor)
    assert "WITHOUT a sandbox" in caplog.text
    assert isinstance(runner_config_for(settings).executor, BubblewrapExecutor)
    with pytest.raises(InvalidInput, match="WARDEN_SANDBOX must be one of"):
        executor_for("docker")


def test_a_read_root_may_not_expose_the_data_directory(settings: Settings) -> None:
    for root in (settings.data_dir, settings.data_dir.parent, settings.data_dir / "keys"):
        with pytest.raises(InvalidInput, match="sandbox read root") as raised:
            runner_config_for(settings.model_copy(update={"sandbox_read_roots": [root]}))
        assert raised.value.field == "sandbox_read_roots"


def test_a_model_saved_as_a_pickle_is_never_loaded_by_the_worker(
    make_pipeline: Callable[..., Pipeline],
    engine: Engine,
    trainer: Actor,
    hostile_config: RunnerConfig,
    registry: Registry,
    tmp_path: Path,
) -> None:
    marker = tmp_path / "unpickled"
    pipeline = make_pipeline(
        steps=[Step(name="pickle", entrypoint="hostile_code:pickle_model")],
        parameters={"marker_hex": str(marker).encode().hex()},
    )
    run = execute_pipeline_run(
        engine=engine, run_id=_queue(engine, pipeline, trainer).id, config=hostile_config
    )
    assert run.state == PipelineRunState.FAILED
    assert "never loads pickles" in run.error
    assert registry.registered_model_names() == []
    assert not marker.exists()


def test_a_model_folder_is_checked_before_any_loader_reads_it(tmp_path: Path) -> None:
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from retrain.mlflow_registry import (
        check_model_directory,
        load_model_directory,
        save_sklearn_model,
    )

    sys.path.insert(0, str(HOSTILE_CODE))
    try:
        import hostile_code  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(HOSTILE_CODE))

    class Context:
        work_dir = tmp_path
        parameters = {"marker_hex": str(tmp_path / "unpickled").encode().hex()}

    hostile_code.pickle_model(Context())
    with pytest.raises(InvalidInput, match="never loads pickles"):
        load_model_directory(tmp_path / "model")
    assert not (tmp_path / "unpickled").exists()
    mlflow.sklearn.load_model(str(tmp_path / "model"))  # what Warden would have done before
    assert (tmp_path / "unpickled").exists()

    skops = tmp_path / "skops"
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    save_sklearn_model(
        LogisticRegression().fit(frame, [0, 0, 1, 1]), skops, input_example=frame.head(1)
    )
    check_model_directory(skops)  # reviewed types only: accepted
    meta = (skops / "MLmodel").read_text()
    widened = meta.replace("skops_trusted_types:", "skops_trusted_types:\n    - builtins.eval")
    (skops / "MLmodel").write_text(widened)
    with pytest.raises(InvalidInput, match=r"not reviewed \(builtins\.eval\)"):
        load_model_directory(skops)
