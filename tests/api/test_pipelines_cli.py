from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from api.settings import Settings
from lineage.projects import Project


@pytest.fixture
def warden(settings: Settings) -> CliRunner:
    return CliRunner(
        env={
            "WARDEN_DATABASE_URL": settings.resolved_database_url(),
            "WARDEN_DATA_DIR": str(settings.data_dir),
            "WARDEN_MLFLOW_TRACKING_URI": settings.resolved_mlflow_uri(),
        }
    )


def test_define_run_list_and_cancel_from_the_command_line(
    warden: CliRunner, make_project: Callable[[str], Project], tmp_path: Path
) -> None:
    make_project("acme")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "echo",
                "model_name": "income",
                "steps": [{"name": "say", "command": [sys.executable, "-c", "print('hi')"]}],
            }
        )
    )
    defined = warden.invoke(app, ["pipelines", "define", "-p", "acme", "-f", str(spec)])
    assert defined.exit_code == 0, defined.output
    assert "pipeline echo defined" in defined.stdout

    queued = warden.invoke(app, ["pipelines", "run", "-p", "acme", "echo", "--json"])
    assert queued.exit_code == 0, queued.output
    first = json.loads(queued.stdout)
    assert (first["state"], first["created"]) == ("queued", True)
    storm = json.loads(
        warden.invoke(app, ["pipelines", "run", "-p", "acme", "echo", "--json"]).stdout
    )
    assert (storm["id"], storm["created"]) == (first["id"], False)

    cancelled = warden.invoke(app, ["pipelines", "cancel", "-p", "acme", first["id"]])
    assert cancelled.exit_code == 0, cancelled.output
    assert "cancelled" in cancelled.stdout

    # Executed here, the step registers nothing, so the run fails and the command says so.
    now = warden.invoke(app, ["pipelines", "run", "-p", "acme", "echo", "--now", "--json"])
    assert now.exit_code == 1
    assert "no step saved a model" in json.loads(now.stdout)["error"]
    listed = json.loads(warden.invoke(app, ["pipelines", "runs", "-p", "acme", "--json"]).stdout)
    assert [r["state"] for r in listed] == ["failed", "cancelled"]


def test_unknown_project_and_bad_spec_fail_with_a_message(
    warden: CliRunner, make_project: Callable[[str], Project], tmp_path: Path
) -> None:
    make_project("acme")
    missing = warden.invoke(app, ["pipelines", "runs", "-p", "nope"])
    assert missing.exit_code == 1
    assert "no project named 'nope'" in missing.stderr
    nothing = warden.invoke(app, ["models", "rollback", "-p", "acme", "income-api"])
    assert nothing.exit_code == 1
    assert "nothing was promoted" in nothing.stderr


def test_sync_mlflow_with_an_empty_registry_imports_nothing(
    warden: CliRunner, make_project: Callable[[str], Project]
) -> None:
    make_project("acme")
    synced = warden.invoke(app, ["lineage", "sync-mlflow", "-p", "acme", "--json"])
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.stdout) == {"imported": [], "refused": {}, "skipped": []}
