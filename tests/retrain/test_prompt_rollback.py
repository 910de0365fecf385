"""Rolling an LLM deployment back to its previous approved prompt version, by a policy.

Real store, real MLflow prompt registry: prompt versions 1 and 2 are registered, approved by
someone other than their author and promoted in turn; a text-descriptor finding (v2 refuses too
often) makes the policy's ``rollback_prompt`` action ask for approval or perform the rollback
under the same rule as a model's rollback.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from governance.actors import Actor
from governance.approvals import ApprovalAction, ApprovalRequest, ApprovalStatus, decide
from governance.audit import AuditEntry
from governance.channels import SecretBox
from governance.decisions import PolicyDecision
from governance.policies import create_policy
from governance.policy_evaluation import RunFindings
from governance.roles import Role
from lineage.projects import Project
from lineage.prompts import ModelSettings, PromptVersionCreate
from lineage.store import session_scope
from monitors.findings import Finding, Status
from retrain.deployers import EmbeddedDeployer, VerifiedModelLoader, live_deployment
from retrain.llm_deployments import LlmDeployment, LlmDeploymentCreate, create_llm_deployment
from retrain.loop import on_findings
from retrain.mlflow_registry import Registry
from retrain.promotion import promote_prompt, request_promotion
from retrain.prompts import register_prompt
from tests.monitors.traces.conftest import make_llm_deployment

REFUSING = Finding(
    monitor="text_descriptors",
    metric="refusal_rate",
    scope="dataset",
    value=0.42,
    threshold=0.1,
    status=Status.ALERT,
)


def _policy(mode: str) -> str:
    return f"""
rules:
  - name: roll-back-refusals
    scope: {{deployment: support-bot}}
    when: {{monitor: text_descriptors, metric: refusal_rate, op: ">", threshold: 0.1}}
    actions: [{{type: rollback_prompt, mode: {mode}}}]
"""


@pytest.fixture
def live_v2(
    engine: Engine,
    project: Project,
    registry: Registry,
    person: Callable[..., Actor],
) -> tuple[Actor, Actor]:
    """Versions 1 then 2 of prompt ``support`` promoted to ``support-bot``; return the people."""
    author, approver = person(Role.DATA_SCIENTIST), person(Role.APPROVER)
    for number, template in enumerate(("Answer: {{question}}", "Answer briefly: {{question}}")):
        with session_scope(engine) as session:
            prompt = register_prompt(
                session=session,
                project_id=project.id,
                name="support",
                spec=PromptVersionCreate(
                    template=template,
                    model=ModelSettings(provider="openai", name="stand-in"),
                    commit_message=f"version {number + 1}",
                ),
                registered_by=author.principal_id,
                registry=registry,
            )
            request = request_promotion(
                session=session, actor=author, model_version=prompt.version, reason="ship it"
            )
        with session_scope(engine) as session:
            decide(
                session=session, actor=approver, approval_id=request.id, approve=True, reason="ok"
            )
        with session_scope(engine) as session:
            binding = session.exec(select(LlmDeployment)).first() or create_llm_deployment(
                session=session,
                project_id=project.id,
                spec=LlmDeploymentCreate(
                    name="support-bot",
                    prompt="support",
                    base_url="http://127.0.0.1:9/v1",
                    model="stand-in",
                ),
                box=SecretBox.generate(),
                created_by=author.principal_id,
            )
            promote_prompt(
                session=session,
                binding=binding,
                version=str(number + 1),
                actor=author,
                registry=registry,
            )
    return author, approver


def _findings(
    engine: Engine, project: Project, admin: Actor, mode: str, registry: Registry
) -> PolicyDecision:
    cache = Path(tempfile.mkdtemp(prefix="models-"))
    with session_scope(engine) as session:
        create_policy(
            session=session, project_id=project.id, actor=admin, name="llm", source=_policy(mode)
        )
    with session_scope(engine) as session:
        decisions = on_findings(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            run=RunFindings(
                run_id=str(uuid.uuid4()),
                source_id=str(uuid.uuid4()),
                at=datetime.now(UTC),
                findings=(REFUSING,),
                model="support",
                deployment="support-bot",
                environment="production",
            ),
            registry=registry,
            deployer=EmbeddedDeployer(
                loader=VerifiedModelLoader(registry=registry, cache_dir=cache)
            ),
        )
        assert len(decisions) == 1
        session.expunge(decisions[0])
        return decisions[0]


@pytest.mark.slow
def test_perform_rolls_production_back_to_the_previous_approved_version(
    engine: Engine,
    project: Project,
    registry: Registry,
    live_v2: tuple[Actor, Actor],
    person: Callable[..., Actor],
) -> None:
    decision = _findings(engine, project, person(Role.ADMIN), "perform", registry)
    assert decision.outcomes[0]["outcome"] == "done", decision.outcomes
    with session_scope(engine) as session:
        _, live = live_deployment(
            session=session,
            project_id=project.id,
            deployment="support-bot",
            environment="production",
        )
        assert (live.name, live.version) == ("support", "1")
        actions = [e.action for e in session.exec(select(AuditEntry))]
    assert registry.prompt_alias_version("support", "production") == "1"
    assert "prompt.rollback" in actions


@pytest.mark.slow
def test_request_opens_a_rollback_approval_people_decide(
    engine: Engine,
    project: Project,
    registry: Registry,
    live_v2: tuple[Actor, Actor],
    person: Callable[..., Actor],
) -> None:
    decision = _findings(engine, project, person(Role.ADMIN), "request", registry)
    assert decision.outcomes[0]["outcome"] == "done", decision.outcomes
    with session_scope(engine) as session:
        request = session.exec(
            select(ApprovalRequest).where(ApprovalRequest.action == ApprovalAction.ROLLBACK)
        ).one()
        assert (request.target_id, request.status) == (
            "support-bot/production",
            ApprovalStatus.PENDING,
        )
        _, live = live_deployment(
            session=session,
            project_id=project.id,
            deployment="support-bot",
            environment="production",
        )
        assert live.version == "2"  # nothing moves before people decide
    assert registry.prompt_alias_version("support", "production") == "2"


def test_rollback_prompt_is_refused_on_a_slot_serving_a_model(
    engine: Engine, project: Project, registry: Registry, person: Callable[..., Actor]
) -> None:
    make_llm_deployment(engine, project)  # records a *model* version live in support-bot
    decision = _findings(engine, project, person(Role.ADMIN), "perform", registry)
    assert decision.outcomes[0]["outcome"] == "failed"
    assert "not a prompt; use the rollback action" in decision.outcomes[0]["error"]
