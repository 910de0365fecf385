"""Report routes: model cards, project audit reports (tampering flagged), renders in the worker."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable
from datetime import timedelta

import pypdf
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.app import create_app
from api.settings import Settings
from governance.audit import AuditEntry
from governance.roles import Role
from governance.signing import load_or_create_signer
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.projects import Project
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.store import session_scope
from lineage.tables import utcnow
from reports import REPORT_RENDER, ReportRenderHandler
from tests.conftest import Issued
from tests.governance.tamper import drop_triggers
from tests.s3 import artifacts_in_bucket, moto_server

Make = Callable[..., Issued]
BASE = "/api/v1/projects/acme/reports"
SHA = "b" * 64


def _pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(body)).pages)


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture
def acme(engine: Engine, make_project: Callable[[str], Project]) -> Project:
    project = make_project("acme")
    with session_scope(engine) as session:
        register_model_version(
            session=session,
            project_id=project.id,
            name="income",
            spec=ModelVersionCreate(
                version="1",
                artifact_uri="s3://models/secret-bucket/income/1",
                artifact_sha256=SHA,
                parameters={"max_iter": 30},
                description="income classifier",
            ),
        )
    return project


def _reports_generated(engine: Engine) -> list[AuditEntry]:
    with session_scope(engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == "report.generate")
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())


def test_card_fields_are_filled_through_the_api_and_shown_per_role(
    client: TestClient, engine: Engine, make_principal: Make, acme: Project
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    auditor = make_principal(role=Role.AUDITOR)
    viewer = make_principal(role=Role.VIEWER)

    card = client.put(
        f"{BASE}/models/income/1/card",
        json={"intended_use": "Pre-screen applications", "limitations": "Census data of 1994"},
        headers=scientist.headers,
    )
    assert card.status_code == 200, card.text
    assert card.json()["updated_by"] == scientist.principal.name
    refused = client.put(
        f"{BASE}/models/income/1/card", json={"owner": "me"}, headers=scientist.headers
    )
    assert refused.status_code == 422
    assert (
        client.put(
            f"{BASE}/models/income/1/card", json={"limitations": "x"}, headers=viewer.headers
        ).status_code
        == 403
    )

    full = client.get(f"{BASE}/models/income/1", params={"format": "json"}, headers=auditor.headers)
    assert full.status_code == 200, full.text
    document = full.json()
    assert document["model_details"]["path"] == "s3://models/secret-bucket/income/1"
    assert document["considerations"]["use_cases"] == [{"description": "Pre-screen applications"}]
    assert document["considerations"]["updated_by"] == scientist.principal.name
    assert "considerations.ethical_considerations" in document["warden"]["missing"]

    redacted = client.get(f"{BASE}/models/income/1", headers=viewer.headers)
    assert redacted.status_code == 200
    assert redacted.headers["content-type"].startswith("text/html")
    assert "secret-bucket" not in redacted.text
    assert scientist.principal.name not in redacted.text
    assert "Pre-screen applications" in redacted.text
    assert SHA in redacted.text

    pdf = client.get(f"{BASE}/models/income/1", params={"format": "pdf"}, headers=auditor.headers)
    assert pdf.headers["content-type"] == "application/pdf"
    text = _flat(_pdf_text(pdf.content))
    assert _flat("Pre-screen applications") in text
    assert SHA in text
    assert "NOTFILLEDIN" in text

    generated = _reports_generated(engine)
    assert [(e.actor_name, e.target) for e in generated] == [
        (auditor.principal.name, "model:income:1"),
        (viewer.principal.name, "model:income:1"),
        (auditor.principal.name, "model:income:1"),
    ]


def test_bad_report_requests_are_refused_with_the_field_named(
    client: TestClient, make_principal: Make, acme: Project
) -> None:
    auditor = make_principal(role=Role.AUDITOR)
    missing = client.get(f"{BASE}/models/income/7", headers=auditor.headers)
    assert missing.status_code == 404
    assert "no version '7'" in missing.json()["detail"]
    bad_format = client.get(
        f"{BASE}/models/income/1", params={"format": "docx"}, headers=auditor.headers
    )
    assert bad_format.status_code == 422
    naive = client.get(
        f"{BASE}/project", params={"from": "2026-11-01T00:00:00"}, headers=auditor.headers
    )
    assert naive.status_code == 422
    backwards = client.get(
        f"{BASE}/project",
        params={"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        headers=auditor.headers,
    )
    assert backwards.status_code == 422
    assert "'to' after 'from'" in backwards.json()["detail"]
    assert client.get(f"{BASE}/models/income/1").status_code == 401


def test_project_report_flags_an_audit_row_altered_behind_wardens_back(
    client: TestClient,
    engine: Engine,
    make_principal: Make,
    acme: Project,
) -> None:
    admin = make_principal(admin=True, name="root")
    auditor = make_principal(role=Role.AUDITOR)
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    start = (utcnow() - timedelta(minutes=1)).isoformat()
    middle = ""
    for text in ("first", "second", "third"):
        answer = client.put(
            f"{BASE}/models/income/1/card", json={"limitations": text}, headers=scientist.headers
        )
        assert answer.status_code == 200
        middle = middle or utcnow().isoformat()
    denied = client.put(
        f"{BASE}/models/income/1/card", json={"limitations": "no"}, headers=auditor.headers
    )
    assert denied.status_code == 403
    checkpoint = client.post("/api/v1/audit/checkpoints", headers=admin.headers)
    assert checkpoint.status_code == 201, checkpoint.text

    intact = client.get(
        f"{BASE}/project", params={"from": start, "format": "json"}, headers=auditor.headers
    ).json()
    assert intact["verification"]["intact"] is True
    assert intact["verification"]["covering_checkpoint"]["seq"] == checkpoint.json()["seq"]
    updates = intact["groups"]["models_and_deployments"]
    assert [row["action"] for row in updates] == ["model_card.update"] * 3
    assert [row["actor"] for row in intact["denied"]] == [auditor.principal.name]
    for period, updates_in_it in (({"from": start, "to": middle}, 1), ({"from": middle}, 2)):
        part = client.get(
            f"{BASE}/project", params={**period, "format": "json"}, headers=auditor.headers
        ).json()
        rows = part["groups"]["models_and_deployments"]
        assert [row["action"] for row in rows] == ["model_card.update"] * updates_in_it

    with session_scope(engine) as session:
        target = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "model_card.update")
            .order_by(col(AuditEntry.seq))
        ).all()[1]
        altered_seq = target.seq
    drop_triggers(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE governance_audit_entry SET actor_name = 'someone-else' WHERE seq = :s"),
            {"s": altered_seq},
        )

    broken = client.get(
        f"{BASE}/project", params={"from": start, "format": "json"}, headers=auditor.headers
    ).json()
    verdict = broken["verification"]
    assert verdict["intact"] is False
    assert verdict["first_broken_seq"] == altered_seq
    assert verdict["affects_period"] is True
    assert f"entry {altered_seq} was changed" in verdict["problem"]
    flagged = [row["seq"] for row in broken["groups"]["models_and_deployments"] if row["broken"]]
    assert flagged == [altered_seq]

    html = client.get(f"{BASE}/project", params={"from": start}, headers=auditor.headers).text
    assert f"BROKEN CHAIN at sequence number {altered_seq}" in html
    assert f'<tr class="broken"><td>{altered_seq} BROKEN</td>' in html
    pdf = client.get(
        f"{BASE}/project", params={"from": start, "format": "pdf"}, headers=auditor.headers
    )
    assert _flat(f"BROKEN CHAIN at sequence number {altered_seq}") in _flat(_pdf_text(pdf.content))


def test_a_render_runs_in_the_worker_with_progress_and_is_fetched_after(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    make_principal: Make,
    acme: Project,
) -> None:
    auditor = make_principal(role=Role.AUDITOR)
    viewer = make_principal(role=Role.VIEWER)
    queued = client.post(
        f"{BASE}/renders",
        json={"report": "model", "name": "income", "version": "1", "format": "pdf"},
        headers=auditor.headers,
    )
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["state"] == "queued"
    early = client.get(job["file_url"], headers=auditor.headers)
    assert early.status_code == 409

    signer = load_or_create_signer(settings.resolved_audit_key_path())
    registry = HandlerRegistry(
        {
            REPORT_RENDER: ReportRenderHandler(
                store=settings.artifact_store(), public_key=signer.public_key
            )
        }
    )
    assert Worker(engine=engine, registry=registry, owner="w-test").run_once()

    done = client.get(f"{BASE}/renders/{job['id']}", headers=auditor.headers).json()
    assert done["state"] == "succeeded"
    assert done["progress"] == 1.0
    body = client.get(job["file_url"], headers=auditor.headers)
    assert body.status_code == 200
    assert body.headers["content-type"] == "application/pdf"
    assert "secret-bucket" in _flat(_pdf_text(body.content))
    assert client.get(job["file_url"], headers=viewer.headers).status_code == 403

    incomplete = client.post(
        f"{BASE}/renders", json={"report": "model", "name": "income"}, headers=auditor.headers
    )
    assert incomplete.status_code == 422
    backwards = client.post(
        f"{BASE}/renders",
        json={"report": "project", "since": "2026-11-02T00:00Z", "until": "2026-11-01T00:00Z"},
        headers=auditor.headers,
    )
    assert backwards.status_code == 422
    assert "'until' after 'since'" in backwards.text

    period = {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    audit = client.post(
        f"{BASE}/renders",
        json={"report": "project", "format": "json", **period},
        headers=viewer.headers,
    ).json()
    assert Worker(engine=engine, registry=registry, owner="w-test").run_once()
    report = client.get(audit["file_url"], headers=viewer.headers)
    assert report.status_code == 200, report.text
    assert report.json()["verification"]["intact"] is True
    assert report.json()["redacted"] is True
    assert [e.target for e in _reports_generated(engine)] == [
        "model:income:1",
        "period:2020-01-01T00:00:00+00:00..2100-01-01T00:00:00+00:00",
    ]


@pytest.mark.usefixtures("acme")
def test_a_pdf_without_the_pdf_extra_is_a_501_naming_it(
    client: TestClient, make_principal: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    auditor = make_principal(role=Role.AUDITOR)
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as on a plain install: import fails
    pdf = client.get(f"{BASE}/models/income/1", params={"format": "pdf"}, headers=auditor.headers)
    assert pdf.status_code == 501
    assert pdf.headers["content-type"].startswith("application/problem+json")
    assert "pip install 'warden[pdf]'" in pdf.json()["detail"]
    html = client.get(f"{BASE}/models/income/1", headers=auditor.headers)
    assert html.status_code == 200


@pytest.mark.slow
def test_a_render_goes_to_the_bucket_when_artifacts_live_in_s3(
    engine: Engine,
    settings: Settings,
    make_principal: Make,
    acme: Project,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With WARDEN_ARTIFACT_URL=s3://…, the worker writes the render to the bucket (a real S3 API,
    moto on 127.0.0.1), the API serves it from there, and the data directory holds no report."""
    with moto_server() as endpoint:
        in_s3 = artifacts_in_bucket(monkeypatch, endpoint, settings, "warden-artifacts")
        auditor = make_principal(role=Role.AUDITOR)
        with TestClient(create_app(in_s3, engine=engine)) as client:
            queued = client.post(
                f"{BASE}/renders",
                json={"report": "model", "name": "income", "version": "1", "format": "html"},
                headers=auditor.headers,
            )
            assert queued.status_code == 202, queued.text
            job = queued.json()
            registry = HandlerRegistry(
                {REPORT_RENDER: ReportRenderHandler(store=in_s3.artifact_store())}
            )
            assert Worker(engine=engine, registry=registry, owner="w-s3").run_once()

            body = client.get(job["file_url"], headers=auditor.headers)
            assert body.status_code == 200
            assert body.headers["content-type"] == "text/html; charset=utf-8"
            assert "income classifier" in body.text

        key = f"prod/reports/{acme.id}/renders/{job['id']}.html"
        assert in_s3.artifact_store().list() == [key.removeprefix("prod/")]
        assert not (settings.data_dir / "reports").exists()
