"""Executing an evaluation run on the worker: render, call, trace, score, summarise.

:class:`EvalRunHandler` is the handler of :data:`retrain.eval_runs.EVAL_RUN` jobs. For each
record of the frozen dataset version it renders the prompt version's template with the record's
inputs, calls the candidate's endpoint (the LLM deployment's base URL and credential, the model
of the prompt version or the variant; the project's outbound guard checks the host first), and
records the call as a trace of the run (GenAI semantic-convention span through the one ingest
pipeline, so it is redacted and priced like any trace; it belongs to the run, not to the slot,
so it is traced whether or not the slot has a live version and never counts as the slot's
traffic). Then every scorer judges every answer; a call
that failed leaves its record's scores as errors. The run ends ``succeeded``, ``partial`` (some
calls or scores are errors: a judge was down) or ``failed`` (no call answered, or it could not
start), with its figures, and the outcome is audited as Warden.

Calls run outside any database transaction (an SQLite write lock is never held across the
network). A retried job starts the run over: its earlier results are deleted first.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from governance import Actor, SecretBox, append
from governance.outbound import guard_for_project
from lineage.errors import WardenError
from lineage.models import ModelVersion
from lineage.prompts import get_prompt, render
from lineage.runtime.handlers import JobContext
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.scoring import (
    ChatReply,
    Endpoint,
    EndpointError,
    Guard,
    Score,
    ScoringCase,
    chat,
    label_of,
    run_scorer,
)
from monitors.traces import OtlpSpan, ingest_spans, load_price_book
from retrain.eval_datasets import EvalDatasetVersion, EvalRecord, records_of
from retrain.eval_figures import CallRecord, summarise
from retrain.eval_runs import (
    EvalResult,
    EvalRun,
    EvalRunState,
    record_eval_lineage,
    stored_scorers,
)
from retrain.llm_deployments import LlmDeployment, endpoint_of

__all__ = ["EvalRunHandler", "execute_eval_run"]

Pricer = Callable[[str, str, int | None, int | None], int | None]


@dataclass(frozen=True, slots=True)
class _Call:
    """One record's call: the answer or the error, what it cost, its trace span."""

    record: EvalRecord
    response: str | None
    error: str | None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_nano_usd: int | None = None
    span: OtlpSpan | None = None


@dataclass
class _Plan:
    """Everything a run needs, read in one short transaction."""

    run_id: uuid.UUID
    project_id: uuid.UUID
    prompt_name: str
    prompt_version: str
    template: Any
    settings: dict[str, Any]
    endpoint: Endpoint
    api_key: str | None
    guard: Guard
    pricer: Pricer
    records: list[EvalRecord]
    scorers: list[Any] = field(default_factory=list)


def _messages(rendered: str | list[dict[str, str]]) -> list[dict[str, str]]:
    if isinstance(rendered, str):
        return [{"role": "user", "content": rendered}]
    return [{"role": m["role"], "content": m["content"]} for m in rendered]


def _span(plan: _Plan, messages: list[dict[str, str]], reply: ChatReply, start_ns: int) -> OtlpSpan:
    def parts(items: Sequence[Mapping[str, str]]) -> str:
        return json.dumps(
            [
                {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
                for m in items
            ]
        )

    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": plan.endpoint.provider,
        "gen_ai.request.model": plan.endpoint.model,
        "gen_ai.response.model": reply.model,
        "gen_ai.input.messages": parts(messages),
        "gen_ai.output.messages": parts([{"role": "assistant", "content": reply.text}]),
        "warden.prompt.name": plan.prompt_name,
        "warden.prompt.version": plan.prompt_version,
        "warden.evaluation.run_id": str(plan.run_id),
    }
    if reply.input_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = reply.input_tokens
    if reply.output_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = reply.output_tokens
    return OtlpSpan(
        trace_id=secrets.token_hex(16),
        span_id=secrets.token_hex(8),
        parent_span_id=None,
        name=f"chat {plan.endpoint.model}",
        kind="client",
        start_ns=start_ns,
        end_ns=start_ns + int(reply.latency_ms * 1_000_000),
        status="ok",
        status_message="",
        attributes=attributes,
    )


def _call(plan: _Plan, record: EvalRecord) -> _Call:
    try:
        rendered = render(plan.template, record.inputs)
    except WardenError as error:
        return _Call(record, None, f"the record's inputs do not fit the template: {error.detail}")
    messages = _messages(rendered)
    response_format = plan.settings.get("response_format")
    start_ns = time.time_ns()
    try:
        reply = chat(
            plan.endpoint,
            messages,
            temperature=plan.settings.get("temperature"),
            max_tokens=plan.settings.get("max_tokens"),
            response_format=response_format if isinstance(response_format, dict) else None,
            guard=plan.guard,
            api_key=plan.api_key,
        )
    except (EndpointError, WardenError) as error:
        detail = error.detail if isinstance(error, WardenError) else str(error)
        return _Call(record, None, f"the candidate's endpoint: {detail}")
    return _Call(
        record,
        reply.text,
        None,
        latency_ms=reply.latency_ms,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        cost_nano_usd=plan.pricer(
            plan.endpoint.provider, reply.model, reply.input_tokens, reply.output_tokens
        ),
        span=_span(plan, messages, reply, start_ns),
    )


def _effective_settings(
    stored: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    settings = dict(stored)
    for key, value in (overrides or {}).items():
        settings[key] = {"type": value} if key == "response_format" else value
    return settings


def _finish(
    session: Session, run: EvalRun, state: EvalRunState, error: str = "", **detail: Any
) -> None:
    run.state = state.value
    run.error = error[:4000]
    run.finished_at = utcnow()
    session.add(run)
    session.flush()
    record_eval_lineage(
        session=session,
        run=run,
        event_type="FAIL" if state is EvalRunState.FAILED else "COMPLETE",
    )
    append(
        session=session,
        actor=Actor.system(),
        action=f"eval_run.{state.value}",
        target=f"eval_run:{run.id}",
        outcome="failure" if state is EvalRunState.FAILED else "success",
        reason=error[:4000],
        detail={"label": run.label, **detail},
        project_id=run.project_id,
    )


def _prepare(session: Session, run: EvalRun, box: SecretBox) -> _Plan:
    """Read what the run needs and start it over; raise :class:`WardenError` if it cannot."""
    session.execute(sa.delete(EvalResult).where(EvalResult.run_id == run.id))  # type: ignore[arg-type]
    version = session.get(ModelVersion, run.model_version_id)
    binding = session.get(LlmDeployment, run.llm_deployment_id)
    dataset_version = session.get(EvalDatasetVersion, run.dataset_version_id)
    assert version is not None  # foreign keys guarantee all three
    assert binding is not None
    assert dataset_version is not None
    prompt = get_prompt(
        session=session, project_id=run.project_id, name=version.name, version=version.version
    )
    settings = _effective_settings(prompt.artifact.model_settings, run.overrides)
    opened = endpoint_of(binding, box=box)
    endpoint = Endpoint(
        base_url=opened.base_url,
        model=str(settings.get("name") or opened.model),
        provider=str(settings.get("provider") or "openai"),
    )
    book = load_price_book(session=session, project_id=run.project_id)
    now = utcnow()

    def pricer(
        provider: str, model: str, tokens_in: int | None, tokens_out: int | None
    ) -> int | None:
        return book.price_span(
            provider=provider,
            request_model=model,
            response_model=model,
            at=now,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
        )

    records = records_of(session=session, version=dataset_version)
    for record in records:
        session.expunge(record)
    run.state = EvalRunState.RUNNING.value
    run.started_at = utcnow()
    run.error = ""
    session.add(run)
    return _Plan(
        run_id=run.id,
        project_id=run.project_id,
        prompt_name=version.name,
        prompt_version=version.version,
        template=prompt.artifact.template,
        settings=settings,
        endpoint=endpoint,
        api_key=opened.api_key,
        guard=guard_for_project(session=session, project_id=run.project_id),
        pricer=pricer,
        records=records,
        scorers=stored_scorers(run),
    )


def _score(
    plan: _Plan, calls: list[_Call], progress: Callable[[float, str], None]
) -> dict[str, list[Score]]:
    answered = [i for i, c in enumerate(calls) if c.response is not None]
    cases = [
        ScoringCase(
            response=calls[i].response or "",
            inputs=calls[i].record.inputs,
            expected_response=calls[i].record.expected_response,
            facts=calls[i].record.facts,
            guidelines=calls[i].record.guidelines,
            context=calls[i].record.context,
        )
        for i in answered
    ]
    results: dict[str, list[Score]] = {}
    send = partial(chat, guard=plan.guard)
    for n, spec in enumerate(plan.scorers):
        name = label_of(spec)
        progress(0.6 + 0.35 * n / max(len(plan.scorers), 1), f"scoring with {name}")
        scored = iter(run_scorer(spec, cases, pricer=plan.pricer, judge_send=send))
        results[name] = [
            next(scored) if c.response is not None else Score.error(f"no answer: {c.error}")
            for c in calls
        ]
    return results


def execute_eval_run(
    *, engine: sa.Engine, run_id: uuid.UUID, box: SecretBox, progress: Callable[[float, str], None]
) -> EvalRunState:
    """Run one evaluation end to end (see the module doc); return its final state."""
    with session_scope(engine) as session:
        run = session.get(EvalRun, run_id)
        if run is None:
            raise LookupError(f"no evaluation run {run_id}")
        try:
            plan = _prepare(session, run, box)
        except WardenError as error:
            _finish(session, run, EvalRunState.FAILED, f"the run could not start: {error.detail}")
            return EvalRunState.FAILED
    calls: list[_Call] = []
    total = len(plan.records)
    for index, record in enumerate(plan.records):
        calls.append(_call(plan, record))
        progress(0.6 * (index + 1) / total, f"called the candidate for {index + 1}/{total}")
    scores = _score(plan, calls, progress)
    figures = summarise(
        calls=[
            CallRecord(
                ok=c.response is not None,
                latency_ms=c.latency_ms,
                input_tokens=c.input_tokens,
                output_tokens=c.output_tokens,
                cost_nano_usd=c.cost_nano_usd,
            )
            for c in calls
        ],
        scores=scores,
    )
    with session_scope(engine) as session:
        run = session.get(EvalRun, run_id)
        assert run is not None
        spans = [c.span for c in calls if c.span is not None]
        if spans:
            ingest_spans(
                session=session,
                project_id=plan.project_id,
                deployment_id=None,
                evaluation_run_id=run_id,
                spans=spans,
            )
        for index, call in enumerate(calls):
            session.add(
                EvalResult(
                    project_id=plan.project_id,
                    run_id=run_id,
                    record_id=call.record.id,
                    position=call.record.position,
                    response=call.response,
                    error=call.error,
                    latency_ms=call.latency_ms,
                    input_tokens=call.input_tokens,
                    output_tokens=call.output_tokens,
                    cost_nano_usd=call.cost_nano_usd,
                    trace_id=call.span.trace_id if call.span else None,
                    scores={name: per[index].to_dict() for name, per in scores.items()},
                )
            )
        run.figures = figures.to_dict()
        errors = figures.calls.call_errors + sum(f.errors for f in figures.scorers.values())
        if figures.calls.calls and figures.calls.call_errors == figures.calls.calls:
            state, why = EvalRunState.FAILED, "no call to the candidate answered; see the results"
        elif errors:
            state, why = EvalRunState.PARTIAL, f"{errors} call or score error(s); see the results"
        else:
            state, why = EvalRunState.SUCCEEDED, ""
        _finish(
            session,
            run,
            state,
            why,
            records=figures.records,
            call_errors=figures.calls.call_errors,
            score_errors={k: v.errors for k, v in figures.scorers.items() if v.errors},
        )
    progress(1.0, state.value)
    return state


@dataclass(frozen=True)
class EvalRunHandler:
    """The worker's handler of evaluation runs, bound to the key box that opens credentials."""

    box: SecretBox

    def __call__(self, context: JobContext) -> dict[str, Any]:
        """Run the job's evaluation; return its final state."""
        state = execute_eval_run(
            engine=context.engine,
            run_id=uuid.UUID(str(context.payload["run_id"])),
            box=self.box,
            progress=context.progress,
        )
        return {"state": state.value}
