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
from tests.governance.tamper import drop_triggers, truncate

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


def test_verify_with_an_anchor_finds_truncation_the_database_hides(
    store: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_AUDIT_CHECKPOINT_EVERY", "2")
    made = runner.invoke(app, ["audit", "checkpoint"])
    assert made.exit_code == 0, made.output
    anchor = settings.resolved_audit_anchor_path()
    assert [json.loads(line)["seq"] for line in anchor.read_text().splitlines()] == [2, 4, 6]
    auditor_copy = tmp_path / "auditor-copy.jsonl"
    auditor_copy.write_text(anchor.read_text())  # what a third party holds

    intact = runner.invoke(app, ["audit", "verify", "--anchor", str(auditor_copy)])
    assert intact.exit_code == 0, intact.output
    assert "3 checkpoints agree, 0 not anchored" in intact.output

    drop_triggers(store)
    truncate(store, from_seq=5)
    without_anchor = runner.invoke(
        app, ["audit", "verify", "--anchor", str(tmp_path / "empty.jsonl")]
    )
    assert without_anchor.exit_code == 2  # an anchor that is not there is unusable input
    anchor.unlink()  # the insider also removed Warden's own anchor file
    fooled = runner.invoke(app, ["audit", "verify", "--json"])
    assert fooled.exit_code == 0, fooled.output
    assert json.loads(fooled.stdout)["anchored"] == 0

    broken = runner.invoke(app, ["audit", "verify", "--anchor", str(auditor_copy), "--json"])
    assert broken.exit_code == 1
    report = json.loads(broken.stdout)
    assert report["first_broken_seq"] == 5
    assert "truncated" in report["problem"]


def test_offline_verify_of_an_export_against_an_anchor(
    store: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_AUDIT_CHECKPOINT_EVERY", "2")
    assert runner.invoke(app, ["audit", "checkpoint"]).exit_code == 0
    export = tmp_path / "export.jsonl"
    assert runner.invoke(app, ["audit", "export", "--out", str(export)]).exit_code == 0
    anchor = str(settings.resolved_audit_anchor_path())
    ok = runner.invoke(app, ["audit", "verify", "--file", str(export), "--anchor", anchor])
    assert ok.exit_code == 0, ok.output
    lines = export.read_text().splitlines(keepends=True)
    assert '"head_seq":6' in lines[0]  # the export's own audit entry (7) comes after it
    lines = [line for line in lines if '"seq":5,' not in line and '"seq":6,' not in line]
    lines[0] = lines[0].replace('"head_seq":6', '"head_seq":4')
    export.write_text("".join(lines))
    cut = runner.invoke(
        app, ["audit", "verify", "--file", str(export), "--anchor", anchor, "--every", "2"]
    )
    assert cut.exit_code == 0, cut.output  # an export is a prefix: the anchor judges up to it
    missing = runner.invoke(
        app, ["audit", "verify", "--file", str(export), "--anchor", "/nonexistent/anchor"]
    )
    assert missing.exit_code == 2
    assert "not a file" in missing.output
