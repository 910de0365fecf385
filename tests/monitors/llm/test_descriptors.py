"""The text_descriptors kind: refusal and PII rates against a hand-counted fixture, and drift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lineage.errors import InvalidInput
from monitors.findings import Status
from monitors.llm.descriptors import default_refusal_phrases, is_refusal, json_valid
from monitors.spec import Kind, MonitorSpec
from tests.banking77 import banking77
from tests.monitors.llm.conftest import HOUR, Call, LlmSetup, by_metric

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "answers.json").read_text())
CALLS = FIXTURE["calls"]
# Counted by hand, not by code: see the fixture's "about".
REFUSALS, WITH_PII, EMPTY = 6, 5, 1


def test_the_fixture_is_counted_as_labelled() -> None:
    assert sum(c["refusal"] for c in CALLS) == REFUSALS
    assert sum(c["pii"] for c in CALLS) == WITH_PII
    assert sum(not c["answer"] for c in CALLS) == EMPTY
    phrases = default_refusal_phrases()
    assert [is_refusal(c["answer"], phrases) for c in CALLS] == [c["refusal"] for c in CALLS]


@pytest.mark.slow
def test_refusal_and_pii_rates_match_the_hand_counted_fixture(llm_setup: LlmSetup) -> None:
    llm_setup.store(
        [
            Call(c["question"], c["answer"], at=HOUR + i * HOUR / 40, prompt_version=str(1 + i % 2))
            for i, c in enumerate(CALLS)
        ]
    )
    summary, report = llm_setup.run(
        MonitorSpec(kind=Kind.TEXT_DESCRIPTORS, min_rows=10, thresholds={"refusal_rate": 0.2})
    )
    found = by_metric(summary)
    assert found["refusal_rate"].value == pytest.approx(REFUSALS / len(CALLS))
    assert found["refusal_rate"].status is Status.ALERT
    assert found["pii_rate"].value == pytest.approx(WITH_PII / len(CALLS))
    assert found["empty_answer_rate"].value == pytest.approx(EMPTY / len(CALLS))
    assert "json_invalid_rate" not in found  # judged only for structured outputs
    odd = [c for i, c in enumerate(CALLS) if i % 2 == 1]
    version2 = by_metric(summary, "prompt_version:support@2")
    assert version2["refusal_rate"].value == pytest.approx(sum(c["refusal"] for c in odd) / 10)
    # No traffic in the hour before: descriptor drift has nothing to compare with.
    assert found["descriptor_drift_share"].status is Status.INSUFFICIENT
    section = report["results"][0]["report"]
    assert section["answer_languages"]["en"] > 0.5
    assert section["refusal_phrases"] == "shipped"


@pytest.mark.slow
def test_custom_phrases_and_structured_outputs(llm_setup: LlmSetup) -> None:
    answers = ['{"intent": "card_arrival"}', '```json\n{"intent": 1}\n```', "not json", "NOPE."]
    llm_setup.store([Call("q", answers[i % 4], at=HOUR + i * HOUR / 40) for i in range(20)])
    summary, _ = llm_setup.run(
        MonitorSpec(
            kind=Kind.TEXT_DESCRIPTORS,
            min_rows=10,
            options={"refusal_phrases": ["nope"], "structured_output": True},
            thresholds={"json_invalid_rate": 0.25},
        )
    )
    found = by_metric(summary)
    assert found["refusal_rate"].value == pytest.approx(0.25)
    assert found["json_invalid_rate"].value == pytest.approx(0.5)
    assert found["json_invalid_rate"].status is Status.ALERT
    assert json_valid("[1, 2]")
    assert not json_valid("")
    with pytest.raises(InvalidInput, match="refusal_phrases"):
        llm_setup.run(
            MonitorSpec(kind=Kind.TEXT_DESCRIPTORS, min_rows=10, options={"refusal_phrases": []})
        )


@pytest.mark.slow
def test_descriptors_drift_when_answers_change_and_not_between_halves(
    llm_setup: LlmSetup,
) -> None:
    rows = banking77("test")
    order = np.random.default_rng(0).permutation(len(rows))
    texts = [rows[int(i)][0] for i in order[:600]]
    reference = [
        Call(q, f"Thanks for asking. {q}", at=i * HOUR / 300) for i, q in enumerate(texts[:300])
    ]
    same = [
        Call(q, f"Thanks for asking. {q}", at=HOUR + i * HOUR / 300)
        for i, q in enumerate(texts[300:])
    ]
    llm_setup.store(reference)
    llm_setup.store(same, first=1000)
    quiet, _ = llm_setup.run(MonitorSpec(kind=Kind.TEXT_DESCRIPTORS, min_rows=50))
    assert by_metric(quiet)["descriptor_drift_share"].status is Status.OK
    # A new prompt version answers with terse refusals: lengths and sentiment move.
    terse = [
        Call(
            q,
            "I'm unable to help with that.",
            at=HOUR + i * HOUR / 300 + HOUR / 600,
            prompt_version="2",
        )
        for i, q in enumerate(texts[300:])
    ]
    llm_setup.store(terse, first=2000)
    shifted, _ = llm_setup.run(
        MonitorSpec(kind=Kind.TEXT_DESCRIPTORS, min_rows=50, thresholds={"refusal_rate": 0.1})
    )
    found = by_metric(shifted)
    assert found["descriptor_drift_share"].status is Status.ALERT
    assert found["refusal_rate"].value == pytest.approx(0.5)
    assert by_metric(shifted, "column:answer_length")
    assert by_metric(shifted, "prompt_version:support@2")["refusal_rate"].value == 1.0
