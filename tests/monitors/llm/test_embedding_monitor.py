"""The embedding_drift kind over stored traces of real Banking77 questions."""

from __future__ import annotations

import numpy as np
import pytest

from lineage.errors import InvalidInput
from monitors.findings import Status
from monitors.spec import Kind, MonitorSpec
from tests.banking77 import CARD_INTENTS, banking77
from tests.monitors.llm.conftest import HOUR, Call, LlmSetup

SPEC = MonitorSpec(
    kind=Kind.EMBEDDING_DRIFT, min_rows=50, options={"fields": ["question"], "sample": 200}
)


def _questions() -> tuple[list[str], list[str]]:
    rows = banking77("test")
    order = np.random.default_rng(5).permutation(len(rows))
    card = [rows[int(i)][0] for i in order if rows[int(i)][1] in CARD_INTENTS]
    rest = [rows[int(i)][0] for i in order if rows[int(i)][1] not in CARD_INTENTS]
    return card, rest


def _at(start: float, count: int) -> list[float]:
    return [start + i / count for i in range(count)]


@pytest.mark.slow
def test_a_surge_of_card_loss_questions_is_found_and_named(llm_setup: LlmSetup) -> None:
    card, rest = _questions()
    reference = rest[:192] + card[:8]  # card loss at its natural share, ~4 %
    current = rest[200:333] + card[8:75]  # a third of the traffic
    order = np.random.default_rng(1).permutation(len(current))
    current = [current[int(i)] for i in order]
    llm_setup.store(
        [Call(q, "ok", at=HOUR * t) for q, t in zip(reference, _at(0, 200), strict=True)]
    )
    llm_setup.store(
        [Call(q, "ok", at=HOUR * t) for q, t in zip(current, _at(1, 200), strict=True)], first=1000
    )
    summary, report = llm_setup.run(SPEC)
    found = {f.metric: f for f in summary.findings if f.scope == "field:question"}
    assert {f.status for f in found.values()} == {Status.ALERT}, report
    topics = report["results"][0]["report"]["fields"]["question"]["topic_mix"]
    grown = topics["grown"]
    # The cluster that grew is named by the reference question nearest its centre: a card one.
    assert "card" in grown.lower(), grown
    charts = report["results"][0]["charts"]
    assert any(chart["kind"] == "distribution" for chart in charts)


@pytest.mark.slow
def test_two_halves_of_the_same_traffic_stay_quiet(llm_setup: LlmSetup) -> None:
    _, rest = _questions()
    llm_setup.store(
        [Call(q, "ok", at=HOUR * t) for q, t in zip(rest[:200], _at(0, 200), strict=True)]
    )
    llm_setup.store(
        [Call(q, "ok", at=HOUR * t) for q, t in zip(rest[200:400], _at(1, 200), strict=True)],
        first=1000,
    )
    summary, _ = llm_setup.run(SPEC)
    assert summary.status is Status.OK, summary


def test_too_few_texts_are_insufficient_and_bad_options_name_the_field(
    llm_setup: LlmSetup,
) -> None:
    llm_setup.store([Call(f"q{i}", "a", at=HOUR + i * HOUR / 100) for i in range(5)])
    summary, _ = llm_setup.run(
        MonitorSpec(kind=Kind.EMBEDDING_DRIFT, min_rows=1, options={"fields": ["answer"]})
    )
    assert {f.status for f in summary.findings} == {Status.INSUFFICIENT}
    assert {f.scope for f in summary.findings} == {"field:answer"}
    with pytest.raises(InvalidInput, match=r"options\.sample"):
        llm_setup.run(MonitorSpec(kind=Kind.EMBEDDING_DRIFT, min_rows=1, options={"sample": 5}))
    with pytest.raises(InvalidInput, match="reference_end"):
        llm_setup.run(
            MonitorSpec(
                kind=Kind.EMBEDDING_DRIFT,
                min_rows=1,
                options={"reference_start": "2025-12-01T00:00:00+00:00"},
            )
        )
