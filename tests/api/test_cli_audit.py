from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from api.cli import app
from api.settings import Settings
from governance.actors import Actor
from governance.audit import append
from lineage import create_project, session_scope
from tests.governance.tamper import drop_triggers

runner = CliRunner()


@pytest.fixture
def store(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Point the CLI at this test's store and data dir, with six audited actions in it."""
    monkeypatch.setenv("WARDEN_DATABASE_URL", settings.resolved_database_url())
    monkeypatch.setenv("WARDEN_DATA_DIR", str(settings.data_dir))
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        for number in range(6):
            append(
                session=session,
                actor=Actor.system().in_project(project.id),
                action="model.promote",
                target=f"model_version:{number}",
            )
    return engine


def test_online_verify_reports_intact_then_the_broken_seq(store: Engine) -> None:
    assert runner.invoke(app, ["audit", "checkpoint"]).exit_code == 0
    intact = runner.invoke(app, ["audit", "verify", "--json"])
    assert intact.exit_code == 0, intact.output
    report = json.loads(intact.stdout)
    assert report["intact"] is True
    assert report["checkpoints_verified"] == 1

    drop_triggers(store)
    with store.begin() as connection:
        connection.execute(
            sa.text("UPDATE governance_audit_entry SET actor_name = 'x' WHERE seq = 2")
        )
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "BROKEN at sequence number 2" in broken.output


def test_offline_verify_of_an_export_and_a_tampered_line(store: Engine, tmp_path: Path) -> None:
    assert runner.invoke(app, ["audit", "checkpoint"]).exit_code == 0
    export = tmp_path / "export.jsonl"
    key = tmp_path / "audit.pem"
    assert runner.invoke(app, ["audit", "export", "--out", str(export)]).exit_code == 0
    shown = runner.invoke(app, ["audit", "public-key"])
    assert shown.exit_code == 0
    key.write_text(shown.stdout)
    store.dispose()  # offline: nothing below touches the database

    ok = runner.invoke(app, ["audit", "verify", "--file", str(export), "--public-key", str(key)])
    assert ok.exit_code == 0, ok.output
    assert "intact: 6 entries" in ok.output
    assert "1/1 checkpoints verified" in ok.output

    lines = export.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("model_version:2", "model_version:9")
    export.write_text("".join(lines))
    tampered = runner.invoke(
        app, ["audit", "verify", "--file", str(export), "--public-key", str(key)]
    )
    assert tampered.exit_code == 1
    assert "BROKEN at sequence number 3" in tampered.output


def test_offline_verify_refuses_unusable_input(tmp_path: Path) -> None:
    garbage = tmp_path / "export.jsonl"
    garbage.write_text("this is not an export\n")
    result = runner.invoke(app, ["audit", "verify", "--file", str(garbage)])
    assert result.exit_code == 2
    assert "not JSON" in result.output
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("hello")
    result = runner.invoke(
        app, ["audit", "verify", "--file", str(garbage), "--public-key", str(not_a_key)]
    )
    assert result.exit_code == 2
    assert "not PEM" in result.output
