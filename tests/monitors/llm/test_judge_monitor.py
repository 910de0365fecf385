"""Sampled judges in production: a judge grades a sample of traced calls over real HTTP.

The judge is the stand-in OpenAI-compatible server on 127.0.0.1 (``api/demo/llm_stand_in.py``; a
hosted LLM cannot run here): it gives refusals a 1 and other answers a 5. Calls go through the
worker's guarded sender, so the project must allow-list 127.0.0.1 first, as an admin would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from api.demo.llm_stand_in import CannedAnswer, StandInLLM
from api.worker_process import guarded_chat
from governance.outbound import add_allow_entry
from lineage.errors import InvalidInput
from lineage.store import session_scope
from monitors.findings import Status
from monitors.llm.assessments import TraceAssessment, list_assessments
from monitors.llm.judge_monitor import sampled
from monitors.spec import Kind, MonitorSpec
from tests.monitors.llm.conftest import HOUR, Call, LlmSetup, by_metric

REFUSAL = "I'm unable to help with that."


@pytest.fixture
def judge() -> Iterator[StandInLLM]:
    verdict = '{"score": 1, "rationale": "refused a fair question"}'
    with StandInLLM(answers=[CannedAnswer(REFUSAL, verdict)], judge_score=5) as server:
        yield server


def _spec(server: StandInLLM, **options: object) -> MonitorSpec:
    return MonitorSpec(
        kind=Kind.LLM_JUDGE,
        min_rows=1,
        thresholds={"pass_rate": 0.8},
        options={
            "judge": {
                "type": "llm_judge",
                "name": "helpful",
                "endpoint": {"base_url": server.base_url, "model": "judge"},
            },
            "sample_rate": 0.5,
            **options,
        },
    )


def _calls() -> list[Call]:
    return [
        Call(
            f"How do I top up {i}?",
            REFUSAL if i % 3 == 0 else f"Open the app and tap Top up ({i}).",
            at=HOUR + i * HOUR / 60,
            prompt_version="1" if i < 30 else "2",
        )
        for i in range(60)
    ]


@pytest.mark.slow
def test_a_sample_is_judged_attached_to_traces_and_aggregated(
    llm_setup: LlmSetup, judge: StandInLLM
) -> None:
    llm_setup.store(_calls())
    with session_scope(llm_setup.engine) as session:
        add_allow_entry(
            session=session,
            project_id=llm_setup.deployment.project_id,
            target="127.0.0.1",
            note="the judge stand-in",
            created_by="test",
        )
    summary, report = llm_setup.run(_spec(judge), chat_for=guarded_chat)
    section = report["results"][0]["report"]
    chosen = [
        (f"{i + 1:032x}", f"{i + 1:016x}", c)
        for i, c in enumerate(_calls())
        if sampled(f"{i + 1:032x}", f"{i + 1:016x}", 0.5)
    ]
    assert 10 < len(chosen) < 50  # about half, by a stable hash
    assert section["sampled_calls"] == len(chosen) == len(judge.requests)
    passed = sum(c.answer != REFUSAL for _, _, c in chosen)
    found = by_metric(summary)
    assert found["pass_rate"].value == pytest.approx(passed / len(chosen))
    assert found["pass_rate"].status is (Status.ALERT if passed / len(chosen) < 0.8 else Status.OK)
    assert found["judge_errors"].value == 0
    assert by_metric(summary, "prompt_version:support@2")["pass_rate"].status is not None
    trace_id, span_id, call = chosen[0]
    with session_scope(llm_setup.engine) as session:
        stored = list_assessments(
            session=session, project_id=llm_setup.deployment.project_id, trace_id=trace_id
        )
        assert len(session.exec(select(TraceAssessment)).all()) == len(chosen)
    assert [(a.span_id, a.name, a.passed) for a in stored] == [
        (span_id, "helpful", call.answer != REFUSAL)
    ]
    assert stored[0].rationale in ("refused a fair question", "canned verdict of the stand-in")


@pytest.mark.slow
def test_a_judge_that_is_down_is_an_error_not_a_verdict(
    llm_setup: LlmSetup, judge: StandInLLM
) -> None:
    llm_setup.store(_calls()[:10])
    with session_scope(llm_setup.engine) as session:
        add_allow_entry(
            session=session,
            project_id=llm_setup.deployment.project_id,
            target="127.0.0.1",
            note="the judge stand-in",
            created_by="test",
        )
    judge.outage = 503
    summary, _ = llm_setup.run(_spec(judge, sample_rate=1.0), chat_for=guarded_chat)
    found = by_metric(summary)
    assert found["judge_errors"].value == 10
    assert found["judge_errors"].status is Status.WARN
    assert found["pass_rate"].status is Status.INSUFFICIENT


def test_the_guard_refuses_a_loopback_judge_unless_allow_listed(
    llm_setup: LlmSetup, judge: StandInLLM
) -> None:
    llm_setup.store(_calls()[:5])
    # A refused destination is a configuration error: the run fails saying what to do.
    with pytest.raises(InvalidInput, match="allow-list"):
        llm_setup.run(_spec(judge, sample_rate=1.0), chat_for=guarded_chat)
    assert judge.requests == []  # nothing reached the server
    with pytest.raises(InvalidInput, match="worker"):
        llm_setup.run(_spec(judge))
    with pytest.raises(InvalidInput, match=r"options\.judge\.endpoint"):
        llm_setup.run(
            MonitorSpec(
                kind=Kind.LLM_JUDGE,
                min_rows=1,
                options={"judge": {"type": "llm_judge", "endpoint": {"model": "x"}}},
            ),
            chat_for=guarded_chat,
        )
