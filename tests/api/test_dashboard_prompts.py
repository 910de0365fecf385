"""The prompt, LLM deployment and evaluation dataset pages, on a real store and MLflow registry.

Versions go live through the real promotion path (:mod:`tests.api.prompt_seed`); no LLM
endpoint is called. The pages are read by a viewer, who sees everything of the project and
nothing of another, and never a key.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.dashboard.prompt_pages import endpoint_host
from api.settings import Settings
from governance.actors import Actor
from governance.approvals import ApprovalRequest, ApprovalStatus, decide
from governance.audit import AuditEntry
from governance.identity import Principal, actor_for, create_person
from governance.roles import Role, grant_role
from lineage.projects import Project
from lineage.prompts import PromptVersionCreate, register_prompt_version
from lineage.store import session_scope
from retrain.mlflow_registry import Registry
from retrain.promotion import request_promotion
from retrain.prompts import register_prompt
from tests.api.prompt_seed import KEY, VERSIONS, seed_prompts
from tests.api.test_dashboard import HTML, PASSWORD, _token, new_client, sign_in

__all__ = ["new_client"]  # a fixture this module uses

pytestmark = pytest.mark.slow


@pytest.fixture
def seeded(engine: Engine, settings: Settings, make_project: Callable[[str], Project]) -> None:
    project = make_project("acme")
    other = make_project("other")
    with session_scope(engine) as session:
        system = Actor.system()
        people = {}
        for name, role in (
            ("dana", Role.DATA_SCIENTIST),
            ("alex", Role.APPROVER),
            ("vic", Role.VIEWER),
        ):
            person = create_person(session=session, actor=system, name=name, password=PASSWORD)
            grant_role(
                session=session,
                actor=system,
                project_id=project.id,
                principal_id=person.id,
                role=role,
            )
            people[name] = person.id
        register_prompt_version(
            session=session,
            project_id=other.id,
            name="hidden-prompt",
            version="1",
            spec=PromptVersionCreate.model_validate(
                {
                    "template": "other project's {{x}}",
                    "model": {"provider": "openai", "name": "m"},
                    "commit_message": "theirs",
                }
            ),
            registered_by=None,
        )
    seed_prompts(
        engine,
        project_id=project.id,
        author_id=people["dana"],
        approver_id=people["alex"],
        registry=Registry(
            tracking_uri=settings.resolved_mlflow_uri(),
            artifact_root=settings.data_dir / "mlflow-artifacts",
        ),
    )


def test_a_viewer_reads_prompts_deployments_and_datasets_and_never_a_key(
    seeded: None, new_client: Callable[..., TestClient]
) -> None:
    vic = sign_in(new_client(), "vic")
    pages = {}
    for path in (
        "/p/acme/prompts",
        "/p/acme/prompts/triage",
        "/p/acme/prompts/triage/versions/2",
        "/p/acme/prompts/triage/versions/3?against=live:2",
        "/p/acme/llm-deployments",
        "/p/acme/evaluation/datasets",
        "/p/acme/evaluation/datasets/tickets/versions/1",
    ):
        answer = vic.get(path, headers=HTML)
        assert answer.status_code == 200, (path, answer.text)
        assert KEY not in answer.text
        assert "hidden-prompt" not in answer.text
        pages[path] = answer.text
    listing = pages["/p/acme/prompts"]
    assert 'href="/p/acme/prompts" aria-current="page"' in listing
    assert re.findall(r'data-prompt="([^"]+)"', listing) == ["triage"]
    assert "v3" in listing
    assert "chat template with JSON answers" in listing
    assert re.search(r"production</span> v2 <span class=\"muted\">\(triage-bot\)", listing)
    assert re.search(r"staging</span> v3", listing)

    prompt = pages["/p/acme/prompts/triage"]
    assert re.findall(r'data-version="(\d+)"', prompt) == ["3", "2", "1"]
    assert "one-word answers, name the product" in prompt
    assert "dana" in prompt
    assert "env:TRIAGE_API_KEY" in prompt
    assert ">sealed<" in prompt
    assert "llm.example.internal:8443" in prompt
    assert "tenant-42" not in prompt
    # v1 was live in production until v2 replaced it: the history shows both stretches.
    assert len(re.findall(r'href="/p/acme/prompts/triage/versions/1">v1</a></td><td>', prompt)) == 1

    version = pages["/p/acme/prompts/triage/versions/2"]
    assert "<del>Classify this ticket as bug, billing or other: {{ticket}}</del>" in version
    assert "<ins>Classify this ticket for {{product}} as bug, billing or other.</ins>" in version
    assert "<del>temperature: 0.2</del>" in version
    assert "<ins>temperature: 0.0</ins>" in version
    assert re.search(
        r'data-testid="variables"><code>\{\{product\}\}</code> <code>\{\{ticket', version
    )
    assert "triage-bot (production) since" in version
    assert "Request promotion" not in version  # a viewer may not ask
    against_live = pages["/p/acme/prompts/triage/versions/3?against=live:2"]
    assert "Changes from v2 to v3" in against_live
    assert "<ins>[system] You triage tickets for {{product}}. Answer in JSON.</ins>" in against_live

    deployments = pages["/p/acme/llm-deployments"]
    assert re.findall(r'data-binding="([^"]+)"', deployments) == [
        "triage-bot/production",
        "triage-bot/staging",
    ]
    assert "v3</a> is newer" in deployments  # production serves v2; a viewer may not ask
    assert "tenant-42" not in deployments

    datasets = pages["/p/acme/evaluation/datasets"]
    assert re.findall(r'data-dataset="([^"]+)"', datasets) == ["tickets/2", "tickets/1"]
    assert "frozen</span>" in datasets
    assert "open</span>" in datasets
    frozen = pages["/p/acme/evaluation/datasets/tickets/versions/1"]
    assert re.findall(r'data-record="(\d+)"', frozen) == ["0", "1", "2"]
    assert re.search(r'data-testid="dataset-hash">[0-9a-f]{64}<', frozen)
    assert "I was charged twice this month" in frozen


def test_pages_of_another_project_and_unknown_things_are_refused(
    seeded: None, new_client: Callable[..., TestClient]
) -> None:
    vic = sign_in(new_client(), "vic")
    for path in ("/p/other/prompts", "/p/other/prompts/hidden-prompt", "/p/other/llm-deployments"):
        assert vic.get(path, headers=HTML).status_code in (403, 404), path
    for path in (
        "/p/acme/prompts/hidden-prompt",
        "/p/acme/prompts/triage/versions/9",
        "/p/acme/evaluation/datasets/tickets/versions/7",
    ):
        answer = vic.get(path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    bad = vic.get("/p/acme/prompts/triage/versions/2?against=live:9")
    assert bad.status_code == 422
    assert bad.json()["field"] == "against"
    assert endpoint_host("https://user.example/v1/x") == "user.example"


def test_the_author_requests_promotion_and_puts_the_approved_version_live_from_its_page(
    seeded: None, engine: Engine, settings: Settings, new_client: Callable[..., TestClient]
) -> None:
    vic = sign_in(new_client(), "vic")
    dana = sign_in(new_client(), "dana")
    assert "Request promotion of v3" in dana.get("/p/acme/llm-deployments", headers=HTML).text
    page = dana.get("/p/acme/prompts/triage/versions/3", headers=HTML)
    assert "Request promotion" in page.text
    action = "/p/acme/prompts/triage/versions/3/promotion-request"
    token = _token(page.text)
    empty = dana.post(action, data={"csrf_token": token, "reason": " "}, follow_redirects=False)
    assert empty.status_code == 422
    assert empty.json()["field"] == "reason"
    forged = dana.post(action, data={"reason": "ship it"}, follow_redirects=False)
    assert forged.status_code == 403
    refused = vic.post(
        action,
        data={"csrf_token": _token(vic.get("/p/acme/prompts", headers=HTML).text), "reason": "x"},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    with session_scope(engine) as session:
        assert not session.exec(
            select(ApprovalRequest).where(ApprovalRequest.status == ApprovalStatus.PENDING)
        ).all()
    asked = dana.post(
        action, data={"csrf_token": token, "reason": "JSON answers"}, follow_redirects=False
    )
    assert asked.status_code == 303, asked.text
    assert asked.headers["location"] == "/p/acme/prompts/triage/versions/3?asked=1#promotion"
    with session_scope(engine) as session:
        pending = session.exec(
            select(ApprovalRequest).where(ApprovalRequest.status == ApprovalStatus.PENDING)
        ).one()
        assert pending.reason == "JSON answers"
        audited = session.exec(
            select(AuditEntry).where(AuditEntry.target == f"approval:{pending.id}")
        ).all()
        assert [e.action for e in audited] == ["approval.request"]
    approvals = sign_in(new_client(), "alex").get("/p/acme/approvals", headers=HTML).text
    assert "JSON answers" in approvals
    assert '<a href="/p/acme/prompts/triage/versions/3">triage v3</a>' in approvals

    # A version whose request is approved is put live from its page; until then, the refusal
    # comes back with the going-live rule's reason.
    registry = Registry(
        tracking_uri=settings.resolved_mlflow_uri(),
        artifact_root=settings.data_dir / "mlflow-artifacts",
    )
    with session_scope(engine) as session:
        dana_row = session.exec(select(Principal).where(Principal.name == "dana")).one()
        alex_row = session.exec(select(Principal).where(Principal.name == "alex")).one()
        project_id = session.exec(select(Project.id).where(Project.name == "acme")).one()
        v4 = register_prompt(
            session=session,
            project_id=project_id,
            name="triage",
            spec=PromptVersionCreate.model_validate(
                VERSIONS[1] | {"template": "{{ticket}}: bug, billing or other?"}
            ),
            registered_by=dana_row.id,
            registry=registry,
        )
    assert v4.number == "4"
    v4_page = dana.get("/p/acme/prompts/triage/versions/4", headers=HTML).text
    assert re.findall(r'data-binding="([^"]+)"', v4_page) == [
        "triage-bot/production",
        "triage-bot/staging",
    ]
    assert "Put v4 live in triage-bot (production)" in v4_page
    assert "Put v4 live" not in vic.get("/p/acme/prompts/triage/versions/4", headers=HTML).text
    action = "/p/acme/prompts/triage/versions/4/promote"
    form = {"csrf_token": _token(v4_page), "deployment": "triage-bot", "environment": "production"}
    assert dana.post(action, data=form | {"csrf_token": ""}).status_code == 403  # forged
    vic_form = form | {"csrf_token": _token(vic.get("/p/acme/prompts", headers=HTML).text)}
    assert vic.post(action, data=vic_form).status_code == 403  # a viewer may not promote

    # Not approved yet: the page comes back with the going-live rule's reason, audited denied.
    refused = dana.post(action, data=form | {"reason": "ship it"}, headers=HTML)
    assert refused.status_code == 403
    assert "v4 was not put live in triage-bot (production)" in refused.text
    assert "needs an approved request" in refused.text
    with session_scope(engine) as session:
        denied = session.exec(select(AuditEntry).where(AuditEntry.action == "prompt.promote")).all()
        assert [(e.outcome, e.target) for e in denied if e.target == "prompt:triage/4"] == [
            ("denied", "prompt:triage/4")
        ]
        dana_actor = actor_for(dana_row, project_id=project_id)
        approval = request_promotion(
            session=session, actor=dana_actor, model_version=v4.version, reason="one word"
        )
        decide(
            session=session,
            actor=actor_for(alex_row, project_id=project_id),
            approval_id=approval.id,
            approve=True,
            reason="read the diff",
        )
    done = dana.post(action, data=form | {"reason": "approved"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == (
        "/p/acme/prompts/triage/versions/4?promoted=triage-bot%20%28production%29#promotion"
    )
    shown = dana.get(done.headers["location"], headers=HTML).text
    assert "v4 is live in triage-bot (production)." in shown
    assert "triage-bot (production) since" in shown
    assert 'data-binding="triage-bot/production"' not in shown  # live there already
    with session_scope(engine) as session:
        carried = session.exec(
            select(AuditEntry).where(
                AuditEntry.action == "prompt.promote", AuditEntry.outcome == "success"
            )
        ).all()
        assert [e.reason for e in carried if e.target == f"model_version:{v4.version.id}"] == [
            "approved"
        ]
    assert registry.prompt_alias_version("triage", "production") == "4"
