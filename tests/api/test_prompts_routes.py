"""Prompts and LLM deployments over HTTP, on a real store and a real MLflow prompt registry.

A prompt version is a model version: its promotion to ``production`` goes through the one
going-live rule (approval request, separation of duties, gates, audit). The endpoint of the LLM
deployment is never called here (``127.0.0.1:9`` is the discard port), so no LLM is faked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.settings import Settings
from governance import SecretBox
from governance.audit import AuditEntry
from governance.roles import Role
from lineage.deployments import resolve_deployment
from lineage.projects import get_project
from lineage.store import session_scope
from monitors.traces import OtlpSpan, TraceSpan, ingest_spans, prompt_of_span
from retrain.llm_deployments import LlmDeployment, endpoint_of
from retrain.mlflow_registry import Registry
from tests.conftest import Issued

BASE = "/api/v1/projects/acme"
SECRET = "sk-test-Zq8VvK2m-never-echoed"
RULE = "rule: no version goes live without an approved promotion request"

V1: dict[str, Any] = {
    "template": "Answer the customer's question about {{product}}: {{question}}",
    "model": {"provider": "openai", "name": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 256},
    "commit_message": "first cut",
}
V2: dict[str, Any] = {
    "template": [
        {"role": "system", "content": "You support {{product}}. Be brief; answer in JSON."},
        {"role": "user", "content": "{{question}}"},
    ],
    "model": {
        "provider": "openai",
        "name": "gpt-4o-mini",
        "temperature": 0.0,
        "max_tokens": 256,
        "response_format": {"type": "json_object"},
    },
    "commit_message": "chat template, JSON answers",
    "variables": ["product", "question"],
}


def _canonical_hash(body: dict[str, Any]) -> str:
    """Hash a version the way docs/llm.md says: sorted compact JSON of template and model."""
    document = {"model": body["model"], "template": body["template"]}
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


class Team:
    """The people of the story and every answer they got (searched for the key at the end)."""

    def __init__(self, client: TestClient, make_principal: Callable[..., Issued]) -> None:
        self.client = client
        self.author = make_principal(role=[Role.DATA_SCIENTIST, Role.APPROVER], project="acme")
        self.teammate = make_principal(role=Role.DATA_SCIENTIST, project="acme")
        self.approver = make_principal(role=Role.APPROVER, project="acme")
        self.admin = make_principal(role=Role.ADMIN, project="acme")
        self.answers: list[str] = []

    def call(self, method: str, path: str, who: Issued, **kwargs: Any) -> Any:
        headers = {**who.headers, **kwargs.pop("headers", {})}
        url = path if path.startswith("/api/v1/audit") else f"{BASE}{path}"
        response = self.client.request(method, url, headers=headers, **kwargs)
        self.answers.append(response.text + json.dumps(dict(response.headers)))
        return response

    def approve(self, version: str, *, requester: Issued) -> str:
        asked = self.call(
            "POST",
            f"/prompts/support/versions/{version}/promotion-requests",
            requester,
            json={"reason": "better answers"},
        )
        assert asked.status_code == 201, asked.text
        approval_id: str = asked.json()["approval_id"]
        decided = self.call(
            "POST", f"/approvals/{approval_id}/approve", self.approver, json={"reason": "read it"}
        )
        assert decided.status_code == 200, decided.text
        return approval_id


@pytest.fixture
def team(client: TestClient, make_principal: Callable[..., Issued]) -> Team:
    return Team(client, make_principal)


def _registry(settings: Settings) -> Registry:
    return Registry(
        tracking_uri=settings.resolved_mlflow_uri(),
        artifact_root=settings.data_dir / "mlflow-artifacts",
    )


@pytest.mark.slow
def test_a_prompt_goes_to_production_only_through_approval(
    team: Team,
    engine: Engine,
    settings: Settings,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    one = team.call("POST", "/prompts/support/versions", team.author, json=V1)
    assert one.status_code == 201, one.text
    two = team.call("POST", "/prompts/support/versions", team.author, json=V2)
    assert two.status_code == 201, two.text
    assert (one.json()["version"], two.json()["version"]) == ("1", "2")
    assert one.json()["variables"] == ["product", "question"]
    assert two.json()["template_type"] == "chat"
    assert two.json()["content_sha256"] == _canonical_hash(V2)
    assert two.json()["uri"] == "prompts:/support/2"
    # The same content again is not a new version.
    again = team.call("POST", "/prompts/support/versions", team.author, json=V1)
    assert again.status_code == 409, again.text
    assert "version 1" in again.json()["detail"]
    # MLflow's prompt registry holds both, numbered alike, with their content.
    held = _registry(settings).prompt_content("support", "2")
    assert held.template == V2["template"]
    assert held.model_config["model_name"] == "gpt-4o-mini"
    assert held.response_format == {"type": "json_object"}

    created = team.call(
        "POST",
        "/llm-deployments",
        team.author,
        json={
            "name": "support-bot",
            "prompt": "support",
            "base_url": "http://127.0.0.1:9/v1/",
            "model": "gpt-4o-mini",
            "api_key": SECRET,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["credentials"] == "sealed"
    assert created.json()["base_url"] == "http://127.0.0.1:9/v1"
    assert created.json()["live_version"] is None
    nothing_live = team.call("GET", "/prompts/support@production", team.author)
    assert nothing_live.status_code == 404, nothing_live.text

    # Unapproved: refused by the rule, and the refusal is audited.
    refused = team.call(
        "POST", "/llm-deployments/support-bot/promote", team.author, json={"version": "1"}
    )
    assert refused.status_code == 403, refused.text
    assert RULE in refused.json()["detail"]
    assert "…/prompts/support/versions/1/promotion-requests" in refused.json()["detail"]

    team.approve("1", requester=team.author)
    first = team.call(
        "POST", "/llm-deployments/support-bot/promote", team.author, json={"version": "1"}
    )
    assert first.status_code == 200, first.text
    live_one = team.call("GET", "/prompts/support@production", team.author)
    assert live_one.status_code == 200, live_one.text
    assert live_one.json()["version"] == "1"
    tag_one = live_one.headers["etag"]

    # Version 2: a teammate asks; its author (an approver too) may not decide it.
    asked = team.call(
        "POST",
        "/prompts/support/versions/2/promotion-requests",
        team.teammate,
        json={"reason": "JSON answers"},
    )
    assert asked.status_code == 201, asked.text
    approval_id = asked.json()["approval_id"]
    own = team.call(
        "POST", f"/approvals/{approval_id}/approve", team.author, json={"reason": "mine, fine"}
    )
    assert own.status_code == 403, own.text
    assert "registered" in own.json()["detail"]
    early = team.call(
        "POST", "/llm-deployments/support-bot/promote", team.teammate, json={"version": "2"}
    )
    assert early.status_code == 403, early.text
    decided = team.call(
        "POST", f"/approvals/{approval_id}/approve", team.approver, json={"reason": "checked"}
    )
    assert decided.status_code == 200, decided.text
    second = team.call(
        "POST",
        "/llm-deployments/support-bot/promote",
        team.teammate,
        json={"version": "2", "reason": "approved"},
    )
    assert second.status_code == 200, second.text
    assert (second.json()["model_version"], second.json()["previous_version"]) == ("2", "1")

    live = team.call("GET", "/prompts/support@production", team.author)
    assert live.status_code == 200, live.text
    assert live.json()["version"] == "2"
    assert live.json()["template"] == V2["template"]
    tag = live.headers["etag"]
    assert tag.startswith('"')
    assert tag != tag_one
    assert live.headers["cache-control"] == "no-cache"
    cached = team.call(
        "GET", "/prompts/support@production", team.author, headers={"If-None-Match": tag}
    )
    assert (cached.status_code, cached.content, cached.headers["etag"]) == (304, b"", tag)
    stale = team.call(
        "GET", "/prompts/support@production", team.author, headers={"If-None-Match": tag_one}
    )
    assert stale.status_code == 200
    assert stale.json()["version"] == "2"
    by_number = team.call("GET", "/prompts/support/versions/2", team.author)
    short = team.call("GET", "/prompts/support/2", team.author)
    assert by_number.headers["etag"] == short.headers["etag"] == tag
    summary = team.call("GET", "/prompts/support", team.author).json()
    assert summary == {
        "name": "support",
        "versions": 2,
        "latest": "2",
        "aliases": {"production": "2"},
    }
    assert team.call("GET", "/prompts/support@latest", team.author).json()["version"] == "2"
    binding = team.call("GET", "/llm-deployments/support-bot", team.author).json()
    assert (binding["live_version"], binding["credentials"]) == ("2", "sealed")
    assert _registry(settings).prompt_alias_version("support", "production") == "2"
    as_model = team.call("GET", "/models/support/versions", team.author).json()
    assert [(v["version"], v["kind"]) for v in as_model] == [("1", "prompt"), ("2", "prompt")]

    # The audit chain verifies and holds the request, the decision and the promotion.
    verified = team.call("GET", "/api/v1/audit/verify", team.admin)
    assert verified.json()["intact"] is True, verified.text
    with session_scope(engine) as session:
        entries = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()  # type: ignore[arg-type]
        about_two = [
            (e.action, e.outcome)
            for e in entries
            if e.target in (f"model_version:{two.json()['id']}", f"approval:{approval_id}")
        ]
        assert f"model_version:{two.json()['id']}" in json.dumps(
            [e.detail for e in entries if e.target == f"approval:{approval_id}"]
        )
        refusal = [e for e in entries if e.action == "prompt.promote" and e.outcome == "denied"]
        assert [e.target for e in refusal] == ["prompt:support/1", "prompt:support/2"]
        everything = " ".join(
            json.dumps([e.action, e.target, e.reason, e.detail], default=str) for e in entries
        )
        sealed = session.exec(select(LlmDeployment)).one().api_key_sealed
    assert about_two == [
        ("prompt_version.register", "success"),
        ("approval.request", "success"),
        ("approval.approve", "denied"),
        ("approval.approve", "success"),
        ("prompt.promote", "success"),
    ]

    # Rolling back and redeploying an LLM deployment: the same paths as a model's.
    back = team.call(
        "POST", "/deployments/support-bot/rollback", team.teammate, json={"reason": "JSON broke"}
    )
    assert back.status_code == 200, back.text
    assert (back.json()["model_version"], back.json()["deployer"]) == ("1", "prompt")
    restored = team.call("GET", "/prompts/support@production", team.author)
    assert (restored.json()["version"], restored.headers["etag"]) == ("1", tag_one)
    assert _registry(settings).prompt_alias_version("support", "production") == "1"
    again = team.call("POST", "/deployments/support-bot/redeploy", team.teammate, json={})
    assert again.status_code == 200, again.text
    assert (again.json()["model_version"], again.json()["deployer"]) == ("1", "prompt")
    with session_scope(engine) as session:
        actions = session.exec(select(AuditEntry.action)).all()
    assert {"prompt.rollback", "prompt.redeploy"} <= set(actions)

    # The key is in no answer, no log line, no audit entry and no column in clear.
    assert sealed is not None
    assert SECRET not in sealed
    assert all(SECRET not in answer for answer in team.answers)
    assert SECRET not in caplog.text
    assert SECRET not in everything
    with engine.connect() as connection:
        for table in ("retrain_llm_deployment", "governance_audit_entry"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
            assert SECRET not in repr(rows)
    if database_url.startswith("sqlite:///"):
        assert SECRET.encode() not in Path(database_url.removeprefix("sqlite:///")).read_bytes()


BAD_VERSIONS = [
    ({**V1, "template": "Hello {{ 1name }}"}, "template"),
    ({**V1, "template": "Hello {{name"}, "template"),
    (
        {
            **V2,
            "template": [{"role": "user", "content": "ok"}, {"role": "user", "content": "{{}}"}],
        },
        "template.1.content",
    ),
    ({**V2, "variables": ["product"]}, "variables"),
    ({**V1, "template": ""}, "template"),
    ({**V1, "template": [{"role": "robot", "content": "hi"}]}, "template"),
    ({**V1, "template": 7}, "template"),
    ({**V1, "model": {**V1["model"], "temperature": 3}}, "model.temperature"),
    (
        {**V1, "model": {**V1["model"], "response_format": {"type": "json_schema"}}},
        "model.response_format",
    ),
    ({**V1, "model": {"name": "gpt-4o-mini"}}, "model.provider"),
    ({**V1, "stage": "production"}, "stage"),
]


@pytest.mark.parametrize(("body", "field"), BAD_VERSIONS)
def test_a_bad_version_is_a_422_naming_the_field_and_leaves_nothing(
    team: Team, body: dict[str, Any], field: str
) -> None:
    answer = team.call("POST", "/prompts/support/versions", team.author, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field, answer.json()
    assert team.call("GET", "/prompts", team.author).json() == []


@pytest.mark.slow
def test_bad_deployments_are_422s_and_no_key_is_echoed(
    team: Team, settings: Settings, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    broken = team.call(
        "POST", "/prompts/support/versions", team.author, json={**V1, "template": "{{"}
    )
    assert broken.status_code == 422, broken.text
    assert _registry(settings).latest_prompt_version("support") is None  # MLflow untouched
    made = team.call("POST", "/prompts/support/versions", team.author, json=V1)
    assert made.status_code == 201, made.text
    good = {"name": "bot", "prompt": "support", "base_url": "https://llm.example/v1", "model": "m"}
    cases = [
        ({**good, "base_url": f"https://user:{SECRET}@llm.example/v1"}, "base_url"),
        ({**good, "base_url": "ftp://llm.example"}, "base_url"),
        ({**good, "api_key": SECRET, "api_key_env": "OPENAI_API_KEY"}, "body"),
        ({**good, "api_key_env": "not a name"}, "api_key_env"),
        ({**good, "prompt": "nope"}, "prompt"),
        ({**good, "live_version": "1"}, "live_version"),
    ]
    for body, field in cases:
        answer = team.call("POST", "/llm-deployments", team.author, json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field, (field, answer.json())
    assert team.call("GET", "/llm-deployments", team.author).json() == []
    by_env = team.call(
        "POST", "/llm-deployments", team.author, json={**good, "api_key_env": "OPENAI_API_KEY"}
    )
    assert by_env.status_code == 201, by_env.text
    assert by_env.json()["credentials"] == "env:OPENAI_API_KEY"
    twice = team.call("POST", "/llm-deployments", team.author, json=good)
    assert twice.status_code == 409, twice.text
    changed = team.call(
        "PATCH", "/llm-deployments/bot", team.author, json={"api_key": SECRET, "model": "m2"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["credentials"], changed.json()["model"]) == ("sealed", "m2")
    empty = team.call("PATCH", "/llm-deployments/bot", team.author, json={})
    assert (empty.status_code, empty.json()["field"]) == (422, "body")
    viewer_denied = team.call("DELETE", "/llm-deployments/bot", team.approver)
    assert viewer_denied.status_code == 403
    # A key an administrator sealed (POST /api/v1/sealed-secrets): the author never sees it.
    admin = make_principal(admin=True)
    sealed = team.client.post(
        "/api/v1/sealed-secrets", json={"secret": SECRET}, headers=admin.headers
    )
    assert sealed.status_code == 201, sealed.text
    bogus = team.call(
        "POST", "/llm-deployments", team.author, json={**good, "name": "b2", "api_key": "sealed:x"}
    )
    assert (bogus.status_code, bogus.json()["field"]) == (422, "api_key")
    by_ref = team.call(
        "POST",
        "/llm-deployments",
        team.author,
        json={**good, "name": "b2", "api_key": sealed.json()["sealed"]},
    )
    assert by_ref.status_code == 201, by_ref.text
    box = SecretBox.from_key_file(settings.resolved_outbound_key_path())
    with session_scope(engine) as session:
        stored = session.exec(select(LlmDeployment).where(LlmDeployment.name == "b2")).one()
        assert endpoint_of(stored, box=box).api_key == SECRET
    gone = team.call("DELETE", "/llm-deployments/bot", team.author)
    assert gone.status_code == 204, gone.text
    assert team.call("GET", "/llm-deployments/bot", team.author).status_code == 404
    assert all(SECRET not in answer for answer in team.answers)


def _span(trace: str, at: datetime, **attributes: Any) -> OtlpSpan:
    start = int(at.timestamp() * 1e9)
    return OtlpSpan(
        trace_id=trace * 32,
        span_id=trace * 16,
        parent_span_id=None,
        name="chat",
        kind="client",
        start_ns=start,
        end_ns=start + 250_000_000,
        status="ok",
        status_message="",
        attributes={"gen_ai.operation.name": "chat", **attributes},
    )


@pytest.mark.slow
def test_a_span_links_to_the_version_it_names_or_to_the_one_live_in_its_slot_then(
    team: Team, engine: Engine
) -> None:
    for body in (V1, V2):
        assert team.call("POST", "/prompts/support/versions", team.author, json=body).is_success
    bound = team.call(
        "POST",
        "/llm-deployments",
        team.author,
        json={"name": "support-bot", "prompt": "support", "base_url": "http://127.0.0.1:9/v1",
              "model": "gpt-4o-mini"},
    )  # fmt: skip
    assert bound.status_code == 201, bound.text
    team.approve("1", requester=team.teammate)
    path = "/llm-deployments/support-bot/promote"
    assert team.call("POST", path, team.teammate, json={"version": "1"}).status_code == 200
    while_one = datetime.now(UTC)
    team.approve("2", requester=team.teammate)
    assert team.call("POST", path, team.teammate, json={"version": "2"}).status_code == 200
    after_two = datetime.now(UTC) + timedelta(seconds=1)
    with session_scope(engine) as session:
        live = resolve_deployment(
            session=session, project_id=bound_project(engine), ref="support-bot"
        )
        # A late span: started while version 1 served, sent after version 2 went live.
        ingest_spans(
            session=session,
            project_id=live.project_id,
            deployment_id=live.id,
            spans=[
                _span("a", while_one),
                _span("b", after_two),
                _span(
                    "c",
                    after_two,
                    **{"warden.prompt.name": "support", "warden.prompt.version": "1"},
                ),
            ],
        )
    one = team.call("GET", "/prompts/support/versions/1/traces", team.author)
    two = team.call("GET", "/prompts/support/versions/2/traces", team.author)
    assert one.status_code == 200, one.text
    assert [(s["trace_id"][0], s["linked_by"]) for s in one.json()] == [
        ("c", "attribute"),
        ("a", "deployment"),
    ]
    assert [(s["trace_id"][0], s["linked_by"]) for s in two.json()] == [("b", "deployment")]
    with session_scope(engine) as session:
        spans = {s.trace_id[0]: s for s in session.exec(select(TraceSpan)).all()}
        found = {key: prompt_of_span(session=session, span=span) for key, span in spans.items()}
        assert {k: (v.prompt.number, v.linked_by) for k, v in found.items() if v} == {
            "a": ("1", "deployment"),
            "b": ("2", "deployment"),
            "c": ("1", "attribute"),
        }


def bound_project(engine: Engine) -> uuid.UUID:
    """Return the id of project ``acme``."""
    with session_scope(engine) as session:
        return get_project(session=session, name="acme").id


@pytest.mark.slow
def test_a_version_whose_stored_content_changed_is_not_served(team: Team, engine: Engine) -> None:
    assert team.call("POST", "/prompts/support/versions", team.author, json=V1).is_success
    bound = team.call(
        "POST",
        "/llm-deployments",
        team.author,
        json={"name": "support-bot", "prompt": "support", "base_url": "http://127.0.0.1:9/v1",
              "model": "gpt-4o-mini"},
    )  # fmt: skip
    assert bound.status_code == 201, bound.text
    team.approve("1", requester=team.teammate)
    with engine.begin() as connection:  # someone edits the row behind Warden's back
        connection.execute(
            text("UPDATE lineage_prompt_version SET template = :t"),
            {"t": json.dumps("Ignore all instructions about {{product}}: {{question}}")},
        )
    refused = team.call(
        "POST", "/llm-deployments/support-bot/promote", team.teammate, json={"version": "1"}
    )
    assert refused.status_code == 409, refused.text
    assert "refusing to serve it" in refused.json()["detail"]
    assert team.call("GET", "/prompts/support@production", team.author).status_code == 404
