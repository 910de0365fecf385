"""Two finished evaluation runs of prompt ``support`` v1 and v2, built through the services.

The candidate's endpoint is the stand-in (``api.demo.llm_stand_in``), a local fake of a hosted
OpenAI-compatible LLM with canned answers. The runs execute through a real worker claiming the
queued jobs. Used by the dashboard page tests and the browser test.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Engine

from api.demo.llm_stand_in import CannedAnswer
from governance import SecretBox
from governance.outbound import add_allow_entry
from lineage.prompts import PromptVersionCreate, get_prompt, register_prompt_version
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.store import session_scope
from retrain.eval_datasets import (
    EvalDatasetCreate,
    EvalRecordCreate,
    EvalVersionCreate,
    create_dataset,
    create_version,
)
from retrain.eval_runner import EvalRunHandler
from retrain.eval_runs import EVAL_RUN, EvalRunCreate, request_eval_run
from retrain.llm_deployments import LlmDeploymentCreate, create_llm_deployment

__all__ = ["ANSWERS", "QUESTIONS", "V1", "V2", "seed_evaluation"]

V1: dict[str, Any] = {
    "template": "Answer briefly: {{question}}",
    "model": {"provider": "openai", "name": "gpt-4o-mini", "temperature": 0.2},
    "commit_message": "first cut",
}
V2: dict[str, Any] = {
    "template": [
        {"role": "system", "content": "You are precise; give only the answer."},
        {"role": "user", "content": "{{question}}"},
    ],
    "model": {"provider": "openai", "name": "gpt-4o-mini", "temperature": 0.0},
    "commit_message": "system prompt: answer only",
}
QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("What is 2 + 2?", "4"),
    ("Which ocean is the largest?", "Pacific"),
]
# v1 rambles on two questions; v2 (its system prompt says "precise") answers exactly.
ANSWERS = (
    CannedAnswer("precise; give only the answer.\nwhat is the capital of france", "Paris"),
    CannedAnswer("precise; give only the answer.\nwhat is 2 + 2", "4"),
    CannedAnswer("precise; give only the answer.\nwhich ocean", "Pacific"),
    CannedAnswer("briefly: what is the capital of france", "It is Paris, on the Seine."),
    CannedAnswer("briefly: what is 2 + 2", "4"),
    CannedAnswer("briefly: which ocean", "The Pacific Ocean is the largest."),
)
SCORERS: list[dict[str, Any]] = [
    {"type": "exact_match"},
    {"type": "token_f1"},
    {"type": "rouge_l"},
    {"type": "length", "name": "detail", "min_chars": 10},
]


def seed_evaluation(
    engine: Engine, *, project_id: uuid.UUID, author_id: uuid.UUID, base_url: str
) -> list[uuid.UUID]:
    """Register v1 and v2, bind ``support-bot`` to ``base_url``, run both; return the run ids."""
    box = SecretBox.generate()
    with session_scope(engine) as session:
        add_allow_entry(
            session=session,
            project_id=project_id,
            target="127.0.0.1",
            note="the LLM stand-in",
            created_by="tests",
        )
        for number, body in (("1", V1), ("2", V2)):
            register_prompt_version(
                session=session,
                project_id=project_id,
                name="support",
                version=number,
                spec=PromptVersionCreate.model_validate(body),
                registered_by=author_id,
            )
        binding = create_llm_deployment(
            session=session,
            project_id=project_id,
            spec=LlmDeploymentCreate(
                name="support-bot", prompt="support", base_url=base_url, model="gpt-4o-mini"
            ),
            box=box,
            created_by=author_id,
        )
        dataset = create_dataset(
            session=session,
            project_id=project_id,
            spec=EvalDatasetCreate(name="faq"),
            created_by=author_id,
        )
        create_version(
            session=session,
            dataset=dataset,
            spec=EvalVersionCreate(
                records=[
                    EvalRecordCreate(inputs={"question": q}, expected_response=a, facts=[a])
                    for q, a in QUESTIONS
                ]
            ),
            source="json",
            created_by=author_id,
        )
        runs = []
        for number in ("1", "2"):
            prompt = get_prompt(
                session=session, project_id=project_id, name="support", version=number
            )
            runs.append(
                request_eval_run(
                    session=session,
                    project_id=project_id,
                    spec=EvalRunCreate(
                        dataset="faq",
                        prompt="support",
                        prompt_version=number,
                        llm_deployment="support-bot",
                        scorers=SCORERS,
                    ),
                    model_version_id=prompt.version.id,
                    prompt_label=f"support v{number}",
                    llm_deployment_id=binding.id,
                    requested_by=author_id,
                    requested_by_name="dana",
                ).id
            )
    worker = Worker(engine=engine, registry=HandlerRegistry({EVAL_RUN: EvalRunHandler(box=box)}))
    while worker.run_once():
        pass
    return runs
