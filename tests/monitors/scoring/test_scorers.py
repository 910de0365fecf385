"""The offline scorers on hand-checked cases; the embedding scorer on the real offline model."""

from __future__ import annotations

import pytest

from lineage.errors import InvalidInput
from monitors.scoring.scorers import (
    is_refusal,
    parse_scorers,
    refusal_phrases,
    rouge_l,
    run_scorer,
    token_f1,
)
from monitors.scoring.scores import ScoreStatus, ScoringCase


def _score(spec: dict[str, object], case: ScoringCase) -> tuple[float | None, bool | None]:
    (parsed,) = parse_scorers([spec])
    (score,) = run_scorer(parsed, [case])
    return score.value, score.passed


def test_exact_match_ignores_case_and_surrounding_space_by_default() -> None:
    case = ScoringCase(response="  Paris ", expected_response="paris")
    assert _score({"type": "exact_match"}, case) == (1.0, True)
    assert _score({"type": "exact_match", "case_sensitive": True}, case) == (0.0, False)


def test_a_scorer_without_an_expected_response_skips_the_case() -> None:
    (spec,) = parse_scorers([{"type": "token_f1"}])
    (score,) = run_scorer(spec, [ScoringCase(response="anything")])
    assert score.status is ScoreStatus.SKIPPED
    assert "expected_response" in score.reason


def test_contains_uses_the_records_facts_when_no_values_are_given() -> None:
    case = ScoringCase(response="Paris, on the Seine", facts=["Paris", "Seine", "Louvre"])
    (spec,) = parse_scorers([{"type": "contains"}])
    (score,) = run_scorer(spec, [case])
    assert score.value == pytest.approx(2 / 3)
    assert score.passed is False
    assert score.detail["missing"] == ["Louvre"]


def test_regex_json_and_length() -> None:
    case = ScoringCase(response='{"city": "Paris", "population": 2102650}')
    assert _score({"type": "regex", "pattern": r"\d{7}"}, case) == (1.0, True)
    assert _score({"type": "regex", "pattern": "London", "must_match": False}, case)[1] is True
    assert _score({"type": "json_valid"}, case) == (1.0, True)
    assert _score({"type": "json_valid"}, ScoringCase(response="Paris")) == (0.0, False)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "string"}},
        "required": ["city"],
    }
    (spec,) = parse_scorers([{"type": "json_schema", "json_schema": schema}])
    (score,) = run_scorer(spec, [case])
    assert score.passed is False
    assert "population" in score.detail["problem"]
    assert _score({"type": "length", "min_chars": 5, "max_chars": 20}, case)[1] is False
    assert _score({"type": "length", "max_chars": 100}, case)[1] is True


def test_refusal_phrases_ship_as_data_and_are_detected() -> None:
    assert "i can't help with" in refusal_phrases()
    assert is_refusal("I\u2019m sorry, but I can\u2019t share that.")
    assert not is_refusal("Paris is the capital of France.")
    case = ScoringCase(response="I cannot help with that request.")
    assert _score({"type": "refusal"}, case) == (1.0, False)
    assert _score({"type": "refusal", "expect_refusal": True}, case) == (1.0, True)


def test_pii_uses_the_trace_redaction_detectors() -> None:
    (spec,) = parse_scorers([{"type": "pii"}])
    dirty, clean = run_scorer(
        spec,
        [
            ScoringCase(response="Write to jane.doe@example.com or call +44 20 7946 0958"),
            ScoringCase(response="The office opens at nine."),
        ],
    )
    assert dirty.passed is False
    assert dirty.detail["entities"] == {"email": 1, "phone": 1}
    assert clean.passed is True
    (emails_only,) = parse_scorers([{"type": "pii", "entities": ["email"]}])
    (score,) = run_scorer(emails_only, [ScoringCase(response="call +44 20 7946 0958")])
    assert score.passed is True


def test_token_f1_and_rouge_l_against_hand_computed_values() -> None:
    # Tokens without articles: [cat, sat, on, mat] vs [cat, is, on, mat]: 3 common of 4 and 4.
    assert token_f1("The cat sat on the mat.", "the cat is on the mat") == pytest.approx(0.75)
    # LCS of [cat, sat, on, mat] and [cat, on, mat]: 3 → P = 3/4, R = 3/3, F = 6/7.
    assert rouge_l("the cat sat on the mat", "the cat on the mat") == pytest.approx(6 / 7)
    assert rouge_l("mat on cat", "cat on mat") == pytest.approx(1 / 3)
    assert token_f1("", "") == 1.0
    assert rouge_l("Paris", "") == 0.0


@pytest.mark.slow
def test_embedding_similarity_ranks_a_paraphrase_above_an_unrelated_answer() -> None:
    (spec,) = parse_scorers([{"type": "embedding_similarity", "threshold": 0.6}])
    close, far, skipped = run_scorer(
        spec,
        [
            ScoringCase(
                response="Paris is France's capital city.",
                expected_response="The capital of France is Paris.",
            ),
            ScoringCase(
                response="Bananas are rich in potassium.",
                expected_response="The capital of France is Paris.",
            ),
            ScoringCase(response="no expectation"),
        ],
    )
    assert close.value is not None
    assert far.value is not None
    assert close.value > 0.8 > 0.3 > far.value
    assert (close.passed, far.passed) == (True, False)
    assert skipped.status is ScoreStatus.SKIPPED


@pytest.mark.parametrize(
    ("specs", "field"),
    [
        ([{"type": "regex", "pattern": "("}], "scorers[0].regex.pattern"),
        ([{"type": "token_f1", "threshold": 2}], "scorers[0].token_f1.threshold"),
        ([{"type": "nope"}], "scorers[0]"),
        ([{"type": "json_schema", "json_schema": {"type": 3}}], "scorers[0].json_schema"),
        ([{"type": "exact_match"}, {"type": "exact_match"}], "scorers"),
        ([], "scorers"),
    ],
)
def test_bad_scorer_specs_name_the_field(specs: list[dict[str, object]], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_scorers(specs)
    assert raised.value.field is not None
    assert raised.value.field.startswith(field)
