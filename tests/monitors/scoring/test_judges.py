"""LLM judges over HTTP against the stand-in, a local fake of a hosted OpenAI-compatible LLM.

The stand-in (``api.demo.llm_stand_in``) runs on 127.0.0.1 with canned answers; it is a fake
for a hosted model, which cannot run here. The judge's HTTP client, fallbacks and error paths
are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from api.demo.llm_stand_in import CannedAnswer, StandInLLM
from monitors.scoring.judges import Judge, LlmJudgeSpec, parse_verdict
from monitors.scoring.openai_chat import Endpoint, EndpointRefused, EndpointUnavailable, chat
from monitors.scoring.scorers import parse_scorers, run_scorer
from monitors.scoring.scores import ScoreStatus, ScoringCase


@pytest.fixture
def stand_in() -> Iterator[StandInLLM]:
    with StandInLLM(judge_score=4) as server:
        yield server


def _spec(server: StandInLLM, **extra: object) -> LlmJudgeSpec:
    return LlmJudgeSpec.model_validate(
        {
            "type": "llm_judge",
            "endpoint": {"base_url": server.base_url, "model": "judge-1"},
            **extra,
        }
    )


CASE = ScoringCase(response="Paris.", inputs={"question": "capital?"}, expected_response="Paris")


def test_the_stand_in_speaks_openai_chat_completions(stand_in: StandInLLM) -> None:
    endpoint = Endpoint(base_url=stand_in.base_url, model="m")
    reply = chat(endpoint, [{"role": "user", "content": "What is the capital of France?"}])
    assert reply.text == "Paris is the capital of France."
    assert (reply.input_tokens, reply.output_tokens) == (6, 6)
    assert stand_in.requests[-1]["model"] == "m"


def test_a_judge_asks_for_a_json_schema_and_records_tokens_and_cost(
    stand_in: StandInLLM,
) -> None:
    judge = Judge(_spec(stand_in), pricer=lambda provider, model, i, o: (i or 0) * 10 + (o or 0))
    verdict = judge.grade(CASE)
    assert verdict.score == 4
    assert verdict.value == 0.75
    assert verdict.response_format == "json_schema"
    assert verdict.input_tokens
    assert verdict.output_tokens
    assert verdict.cost_nano_usd == verdict.input_tokens * 10 + verdict.output_tokens
    sent = stand_in.requests[-1]
    assert sent["response_format"]["type"] == "json_schema"
    assert "Paris." in sent["messages"][1]["content"]
    score = verdict.to_score(threshold=0.75)
    assert score.passed is True
    assert score.detail["rationale"] == "canned verdict of the stand-in"


def test_a_judge_falls_back_to_json_object_when_json_schema_is_refused(
    stand_in: StandInLLM,
) -> None:
    stand_in.refuse_json_schema = True
    verdict = Judge(_spec(stand_in)).grade(CASE)
    assert verdict.response_format == "json_object"
    assert [r.get("response_format", {}).get("type") for r in stand_in.requests] == [
        "json_schema",
        "json_object",
    ]


def test_a_judge_reads_a_score_line_from_prose() -> None:
    assert parse_verdict("Score: 2\nThe answer names the wrong city.") == (
        2,
        "Score: 2\nThe answer names the wrong city.",
    )
    assert parse_verdict('Sure! ```json\n{"score": 5, "rationale": "exact"}\n```') == (5, "exact")
    assert parse_verdict('{"score": 9}') is None
    assert parse_verdict("no verdict here") is None


def test_an_unparseable_verdict_is_an_error_not_a_score(stand_in: StandInLLM) -> None:
    stand_in.answers = (CannedAnswer("impartial grader", "I like it."),)
    (spec,) = parse_scorers([_spec(stand_in).model_dump()])
    (score,) = run_scorer(spec, [CASE])
    assert score.status is ScoreStatus.ERROR
    assert "no score" in score.reason


def test_an_outage_yields_errors_and_stops_asking_after_three_in_a_row(
    stand_in: StandInLLM,
) -> None:
    stand_in.outage = 503
    with pytest.raises(EndpointUnavailable, match="503"):
        Judge(_spec(stand_in)).grade(CASE)
    stand_in.requests.clear()
    (spec,) = parse_scorers([_spec(stand_in).model_dump()])
    scores = run_scorer(spec, [CASE] * 5)
    assert [s.status for s in scores] == [ScoreStatus.ERROR] * 5
    assert len(stand_in.requests) == 3
    assert "not asked" in scores[4].reason


def test_a_refused_request_and_an_unreachable_endpoint(stand_in: StandInLLM) -> None:
    endpoint = Endpoint(base_url=stand_in.base_url, model="m")
    with pytest.raises(EndpointRefused, match="messages"):
        chat(endpoint, [])
    stand_in.stop()
    with pytest.raises(EndpointUnavailable, match="could not be reached"):
        chat(endpoint, [{"role": "user", "content": "hi"}])


def test_the_credential_is_read_from_the_environment_by_reference(
    stand_in: StandInLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = Endpoint(base_url=stand_in.base_url, model="m", credential="env:JUDGE_KEY")
    with pytest.raises(Exception, match="JUDGE_KEY"):
        chat(endpoint, [{"role": "user", "content": "hi"}])
    monkeypatch.setenv("JUDGE_KEY", "sk-test-not-a-real-key-000000")
    chat(endpoint, [{"role": "user", "content": "hi"}])
    assert "sk-test" not in json.dumps(endpoint.model_dump())


def test_a_judge_asks_in_plain_text_when_no_response_format_is_supported(
    stand_in: StandInLLM,
) -> None:
    stand_in.refuse_response_format = True
    stand_in.answers = (CannedAnswer("impartial grader", "Score: 2 - it names the wrong city."),)
    verdict = Judge(_spec(stand_in)).grade(CASE)
    assert (verdict.score, verdict.response_format) == (2, "text")
    formats = [r.get("response_format", {}).get("type") for r in stand_in.requests]
    assert formats == ["json_schema", "json_object", None]
