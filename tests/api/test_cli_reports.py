"""``warden report``: model cards and project audit reports written to files from the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdf
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from api.cli import app
from api.settings import Settings
from governance.audit import AuditEntry
from lineage import create_project, session_scope
from lineage.model_versions import ModelVersionCreate, register_model_version
from tests.governance.tamper import drop_triggers

runner = CliRunner()
SHA = "d" * 64


@pytest.fixture
def store(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Point the CLI at this test's store, with one registered model version in ``acme``."""
    monkeypatch.setenv("WARDEN_DATABASE_URL", settings.resolved_database_url())
    monkeypatch.setenv("WARDEN_DATA_DIR", str(settings.data_dir))
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        register_model_version(
            session=session,
            project_id=project.id,
            name="income",
            spec=ModelVersionCreate(
                version="4", artifact_uri="models:/income/4", artifact_sha256=SHA
            ),
        )
    return engine


def test_model_card_is_written_in_each_format_and_audited(store: Engine, tmp_path: Path) -> None:
    pdf = tmp_path / "card.pdf"
    written = runner.invoke(
        app,
        [
            "report",
            "model",
            "income",
            "4",
            "--project",
            "acme",
            "--format",
            "pdf",
            "--out",
            str(pdf),
        ],
    )
    assert written.exit_code == 0, written.output
    text = "".join(
        page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages
    )
    assert SHA in text.replace("\n", "")

    as_json = runner.invoke(
        app, ["report", "model", "income", "4", "--project", "acme", "--format", "json"]
    )
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["model_details"]["artifact_sha256"] == SHA

    no_file = runner.invoke(
        app, ["report", "model", "income", "4", "--project", "acme", "--format", "pdf"]
    )
    assert no_file.exit_code == 2
    unknown = runner.invoke(app, ["report", "model", "income", "9", "--project", "acme"])
    assert unknown.exit_code == 2
    assert "no version '9'" in unknown.output

    with session_scope(store) as session:
        audited = session.exec(
            select(AuditEntry).where(AuditEntry.action == "report.generate")
        ).all()
    # Direct mode: audited as break-glass by the operator at the server's console.
    assert [(e.actor_name.split(":")[0], e.target) for e in audited] == [
        ("break-glass", "model:income:4"),
        ("break-glass", "model:income:4"),
    ]


def test_project_report_exits_1_and_says_where_the_chain_breaks(
    store: Engine, tmp_path: Path
) -> None:
    period = ["--from", "2020-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z"]
    intact = runner.invoke(app, ["report", "project", "acme", *period, "--format", "json"])
    assert intact.exit_code == 0, intact.output
    assert json.loads(intact.stdout)["verification"]["intact"] is True

    drop_triggers(store)
    with store.begin() as connection:
        connection.execute(sa.text("UPDATE governance_audit_entry SET target = 'x' WHERE seq = 1"))
    out = tmp_path / "audit.html"
    broken = runner.invoke(app, ["report", "project", "acme", *period, "--out", str(out)])
    assert broken.exit_code == 1
    assert "BROKEN" in broken.output
    assert "BROKEN CHAIN at sequence number 1" in out.read_text(encoding="utf-8")

    naive = runner.invoke(
        app, ["report", "project", "acme", "--from", "2026-01-01", "--to", "2026-02-01T00:00Z"]
    )
    assert naive.exit_code == 2
    assert "no timezone" in naive.output
