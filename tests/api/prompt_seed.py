"""Prompt ``triage`` with three versions, two LLM deployments and a dataset, via the services.

v1 then v2 went live in ``triage-bot`` (production) and v3 in ``triage-bot`` (staging), each
through a promotion request its author made and an approver approved, exactly as over REST.
The production binding takes its key from an environment variable, the staging one holds a
sealed key (:data:`KEY`), which no page may show. Versions are registered in a real MLflow
prompt registry (the one given). No endpoint is ever called.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from governance import SecretBox
from governance.approvals import decide
from governance.identity import Principal, actor_for
from lineage.prompts import PromptVersionCreate
from lineage.store import session_scope
from retrain.eval_datasets import (
    EvalDatasetCreate,
    EvalRecordCreate,
    EvalVersionCreate,
    create_dataset,
    create_version,
    freeze_version,
)
from retrain.llm_deployments import LlmDeploymentCreate, create_llm_deployment
from retrain.mlflow_registry import Registry
from retrain.promotion import promote_prompt, request_promotion
from retrain.prompts import register_prompt

__all__ = ["KEY", "VERSIONS", "seed_prompts"]

KEY = "sk-triage-Yq7Lm2Vx-never-shown"
VERSIONS: list[dict[str, Any]] = [
    {
        "template": "Classify this ticket as bug, billing or other: {{ticket}}",
        "model": {"provider": "openai", "name": "gpt-4o-mini", "temperature": 0.2},
        "commit_message": "first cut",
    },
    {
        "template": "Classify this ticket for {{product}} as bug, billing or other.\n"
        "Answer with one word.\nTicket: {{ticket}}",
        "model": {"provider": "openai", "name": "gpt-4o-mini", "temperature": 0.0},
        "commit_message": "one-word answers, name the product",
    },
    {
        "template": [
            {"role": "system", "content": "You triage tickets for {{product}}. Answer in JSON."},
            {"role": "user", "content": "{{ticket}}"},
        ],
        "model": {
            "provider": "openai",
            "name": "gpt-4o-mini",
            "temperature": 0.0,
            "max_tokens": 64,
            "response_format": {"type": "json_object"},
        },
        "commit_message": "chat template with JSON answers",
    },
]


def seed_prompts(
    engine: Engine,
    *,
    project_id: uuid.UUID,
    author_id: uuid.UUID,
    approver_id: uuid.UUID,
    registry: Registry,
) -> None:
    """Register the versions, bind the deployments, promote v1, v2 and v3; add a dataset."""
    box = SecretBox.generate()
    with session_scope(engine) as session:
        author_row = session.get(Principal, author_id)
        approver_row = session.get(Principal, approver_id)
        assert author_row is not None
        assert approver_row is not None
        author = actor_for(author_row, project_id=project_id)
        approver = actor_for(approver_row, project_id=project_id)
        prompts = [
            register_prompt(
                session=session,
                project_id=project_id,
                name="triage",
                spec=PromptVersionCreate.model_validate(body),
                registered_by=author_id,
                registry=registry,
            )
            for body in VERSIONS
        ]
        bindings = {
            environment: create_llm_deployment(
                session=session,
                project_id=project_id,
                spec=LlmDeploymentCreate(
                    name="triage-bot",
                    environment=environment,
                    prompt="triage",
                    base_url="https://llm.example.internal:8443/v1/tenant-42",
                    model="gpt-4o-mini",
                    **credentials,
                ),
                box=box,
                created_by=author_id,
            )
            for environment, credentials in (
                ("production", {"api_key_env": "TRIAGE_API_KEY"}),
                ("staging", {"api_key": SecretStr(KEY)}),
            )
        }
        for prompt, environment in zip(
            prompts, ("production", "production", "staging"), strict=True
        ):
            approval = request_promotion(
                session=session, actor=author, model_version=prompt.version, reason="reviewed"
            )
            decide(
                session=session,
                actor=approver,
                approval_id=approval.id,
                approve=True,
                reason="read the diff",
            )
            promote_prompt(
                session=session,
                binding=bindings[environment],
                version=prompt.number,
                actor=approver,
                registry=registry,
            )
        dataset = create_dataset(
            session=session,
            project_id=project_id,
            spec=EvalDatasetCreate(name="tickets", description="Support tickets, labelled"),
            created_by=author_id,
        )
        records = [
            EvalRecordCreate(
                inputs={"product": "Warden", "ticket": ticket},
                expected_response=label,
                facts=[label],
                guidelines=["answer with one word"],
            )
            for ticket, label in (
                ("The audit page shows a 500 error", "bug"),
                ("I was charged twice this month", "billing"),
                ("Can I change my username?", "other"),
            )
        ]
        first = create_version(
            session=session,
            dataset=dataset,
            spec=EvalVersionCreate(records=records),
            source="json",
            created_by=author_id,
        )
        freeze_version(session=session, version=first)
        create_version(
            session=session,
            dataset=dataset,
            spec=EvalVersionCreate(base_version=1, records=records[:1]),
            source="json",
            created_by=author_id,
        )
