from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app
from api.settings import Settings
from tests.conftest import bearer


@pytest.fixture
def warden(settings: Settings) -> CliRunner:
    return CliRunner(
        env={
            "WARDEN_DATABASE_URL": settings.resolved_database_url(),
            "WARDEN_DATA_DIR": str(settings.data_dir),
        }
    )


def test_bootstrap_prints_a_working_admin_key_once_and_refuses_twice(
    warden: CliRunner, client: TestClient
) -> None:
    first = warden.invoke(app, ["admin", "bootstrap", "--username", "alice"])
    assert first.exit_code == 0, first.output
    key = first.stdout.strip().splitlines()[-1]
    assert key.startswith("wdn_")
    created = client.post("/api/v1/projects", json={"name": "credit"}, headers=bearer(key))
    assert created.status_code == 201, created.text

    again = warden.invoke(app, ["admin", "bootstrap", "--username", "mallory"])
    assert again.exit_code == 1
    assert "exists already" in again.stderr


def test_cli_sets_up_a_service_account_that_can_write_lineage(
    warden: CliRunner, client: TestClient
) -> None:
    for args in (
        ["admin", "project", "create", "credit"],
        ["admin", "service", "create", "ingest"],
        ["admin", "grant", "ingest", "credit", "data_scientist"],
    ):
        result = warden.invoke(app, args)
        assert result.exit_code == 0, result.output
    issued = warden.invoke(app, ["admin", "key", "create", "ingest", "--label", "airflow"])
    key = issued.stdout.strip()
    response = client.get("/api/v1/projects", headers=bearer(key))
    assert [p["name"] for p in response.json()] == ["credit"]

    listed = warden.invoke(app, ["admin", "key", "list", "ingest", "--json"])
    prefix = "_".join(key.split("_")[:2])  # wdn_<public prefix>_<secret>
    assert f'"prefix": "{prefix}"' in listed.stdout
    assert key not in listed.stdout

    revoked = warden.invoke(app, ["admin", "key", "revoke", "ingest", prefix])
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/api/v1/projects", headers=bearer(key)).status_code == 401


def test_cli_reports_bad_input_without_a_traceback(warden: CliRunner) -> None:
    result = warden.invoke(app, ["admin", "grant", "nobody", "nowhere", "viewer"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no project named 'nowhere'")


def test_no_password_from_the_cli_when_local_passwords_are_off(settings: Settings) -> None:
    env = {
        "WARDEN_DATABASE_URL": settings.resolved_database_url(),
        "WARDEN_DATA_DIR": str(settings.data_dir),
        "WARDEN_LOCAL_PASSWORDS": "false",
    }
    refused = CliRunner(env=env).invoke(
        app, ["admin", "person", "create", "mallory", "--password-stdin"], input="hunter2\n"
    )
    assert refused.exit_code == 1
    assert "omit --password-stdin" in refused.stderr
    listed = CliRunner(env=env).invoke(app, ["admin", "person", "create", "mallory", "--json"])
    assert listed.exit_code == 0, listed.output  # nothing was created by the refused call


def test_cli_commands_keep_the_checkpoint_schedule(settings: Settings) -> None:
    every_entry = CliRunner(
        env={
            "WARDEN_DATABASE_URL": settings.resolved_database_url(),
            "WARDEN_DATA_DIR": str(settings.data_dir),
            "WARDEN_AUDIT_CHECKPOINT_EVERY": "1",
        }
    )
    for args in (
        ["admin", "project", "create", "credit"],
        ["admin", "service", "create", "ingest"],
        ["admin", "grant", "ingest", "credit", "data_scientist"],
    ):
        result = every_entry.invoke(app, args)
        assert result.exit_code == 0, result.output

    verified = every_entry.invoke(app, ["audit", "verify", "--json"])
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["intact"] is True
    assert report["checkpoints"] == report["entries"] >= 3
