"""Scorers: one typed spec per kind, each judging a batch of cases into :class:`Score`s.

Offline (no network, deterministic): ``exact_match``, ``contains`` (given values, or the record's
facts), ``regex`` (untrusted pattern: bounded, run with a time limit), ``json_valid``,
``json_schema`` (Draft 2020-12), ``length``, ``refusal`` (a phrase list shipped as data,
``refusal_phrases.txt``), ``pii`` (the trace redaction detectors: passes when none fires),
``token_f1`` and ``rouge_l`` against the expected response. ``embedding_similarity`` embeds the
response and the expected response with the offline all-MiniLM-L6-v2
(:mod:`monitors.embeddings`) and takes their cosine. ``llm_judge`` asks a model
(:mod:`monitors.scoring.judges`). A scorer with nothing to compare with (no expected
response) *skips* the case; only a judge whose endpoint fails yields *errors*.

:func:`parse_scorers` validates what a person wrote and names the path of the first error
(``scorers[2].pattern``) for a 422.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cache
from importlib.resources import files
from typing import Annotated, Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from lineage.errors import InvalidInput
from monitors.scoring.judges import Judge, LlmJudgeSpec, Pricer
from monitors.scoring.openai_chat import EndpointError, EndpointUnavailable
from monitors.scoring.scores import Score, ScoreStatus, ScoringCase
from monitors.traces.redaction import Entity, build_redactor

__all__ = [
    "MAX_SCORERS",
    "ContainsSpec",
    "EmbeddingSimilaritySpec",
    "ExactMatchSpec",
    "JsonSchemaSpec",
    "JsonValidSpec",
    "LengthSpec",
    "PiiSpec",
    "RefusalSpec",
    "RegexSpec",
    "RougeLSpec",
    "ScorerSpec",
    "TokenF1Spec",
    "is_refusal",
    "label_of",
    "parse_scorers",
    "refusal_phrases",
    "rouge_l",
    "run_scorer",
    "token_f1",
]

MAX_SCORERS = 20
_NAME = r"^[a-z][a-z0-9_.-]{0,62}$"
_REGEX_TIMEOUT_SECONDS = 0.05
_GIVE_UP_AFTER = 3
"""A judge endpoint failing this many cases in a row is not asked about the rest."""
_NO_EXPECTED = "the record has no expected_response to compare with"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=_NAME, description="Defaults to the type.")

    @property
    def label(self) -> str:
        """Return the scorer's name in results (its type unless named)."""
        return self.name or str(getattr(self, "type"))  # noqa: B009 - every subclass has one


class ExactMatchSpec(_Spec):
    """The response equals the expected response (stripped; case-insensitive by default)."""

    type: Literal["exact_match"]
    case_sensitive: bool = False


class ContainsSpec(_Spec):
    """The response contains every value (or, if none given, every fact of the record)."""

    type: Literal["contains"]
    values: list[str] = Field(default_factory=list, max_length=100)
    case_sensitive: bool = False


class RegexSpec(_Spec):
    """The response matches (or, with ``must_match: false``, does not match) a pattern."""

    type: Literal["regex"]
    pattern: str = Field(min_length=1, max_length=300)
    must_match: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            regex.compile(value)
        except regex.error as error:
            raise ValueError(f"the pattern does not compile: {error}") from None
        return value


class JsonValidSpec(_Spec):
    """The response is one JSON document."""

    type: Literal["json_valid"]


class JsonSchemaSpec(_Spec):
    """The response is JSON conforming to a JSON Schema (Draft 2020-12)."""

    type: Literal["json_schema"]
    json_schema: dict[str, Any]

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as error:
            raise ValueError(f"not a valid JSON Schema: {error.message}") from None
        return value


class LengthSpec(_Spec):
    """The response's length in characters is within bounds."""

    type: Literal["length"]
    min_chars: int = Field(default=0, ge=0)
    max_chars: int | None = Field(default=None, ge=1)


class RefusalSpec(_Spec):
    """Whether the response refuses; passes when that is what the record expects."""

    type: Literal["refusal"]
    expect_refusal: bool = False


class PiiSpec(_Spec):
    """No personal data or secret in the response (the trace redaction detectors)."""

    type: Literal["pii"]
    entities: list[Entity] | None = Field(default=None, description="Default: every detector.")


class TokenF1Spec(_Spec):
    """Token-overlap F1 against the expected response (SQuAD-style normalisation)."""

    type: Literal["token_f1"]
    threshold: float = Field(default=0.5, ge=0, le=1)


class RougeLSpec(_Spec):
    """ROUGE-L F-measure (longest common subsequence of tokens) against the expected response."""

    type: Literal["rouge_l"]
    threshold: float = Field(default=0.5, ge=0, le=1)


class EmbeddingSimilaritySpec(_Spec):
    """Cosine similarity of sentence embeddings (offline all-MiniLM-L6-v2) to the expected."""

    type: Literal["embedding_similarity"]
    threshold: float = Field(default=0.7, ge=-1, le=1)


ScorerSpec = Annotated[
    ExactMatchSpec
    | ContainsSpec
    | RegexSpec
    | JsonValidSpec
    | JsonSchemaSpec
    | LengthSpec
    | RefusalSpec
    | PiiSpec
    | TokenF1Spec
    | RougeLSpec
    | EmbeddingSimilaritySpec
    | LlmJudgeSpec,
    Field(discriminator="type"),
]

_SCORERS: TypeAdapter[list[ScorerSpec]] = TypeAdapter(list[ScorerSpec])


def label_of(spec: ScorerSpec) -> str:
    """Return the name a scorer's results are kept under."""
    if isinstance(spec, LlmJudgeSpec):
        return spec.name
    return spec.label


def parse_scorers(data: Any, *, field: str = "scorers") -> list[ScorerSpec]:
    """Validate a list of scorer specs; names must be unique.

    Raises:
        InvalidInput: Naming the path of the first error (``scorers[1].threshold``).
    """
    try:
        specs = _SCORERS.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise InvalidInput(f"{field}{path}: {first['msg']}", field=f"{field}{path}") from None
    if not specs:
        raise InvalidInput(f"{field}: give at least one scorer", field=field)
    if len(specs) > MAX_SCORERS:
        raise InvalidInput(f"{field}: at most {MAX_SCORERS} scorers", field=field)
    names = [label_of(s) for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(
            f"{field}: scorer names {twice} appear twice; give each a distinct 'name'",
            field=field,
        )
    return specs


# Text measures ------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_WORD = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    return _WORD.findall(_ARTICLES.sub(" ", text.lower()))


def token_f1(response: str, expected: str) -> float:
    """Return the token-overlap F1 of two texts (lower case, no punctuation or articles)."""
    ours, theirs = _tokens(response), _tokens(expected)
    if not ours or not theirs:
        return float(ours == theirs)
    common = sum((Counter(ours) & Counter(theirs)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(ours), common / len(theirs)
    return 2 * precision * recall / (precision + recall)


def rouge_l(response: str, expected: str) -> float:
    """Return the ROUGE-L F-measure (β = 1) of two texts over their tokens."""
    ours, theirs = _tokens(response), _tokens(expected)
    if not ours or not theirs:
        return float(ours == theirs)
    previous = [0] * (len(theirs) + 1)
    for word in ours:
        current = [0]
        for j, other in enumerate(theirs, start=1):
            current.append(previous[j - 1] + 1 if word == other else max(previous[j], current[-1]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(ours), lcs / len(theirs)
    return 2 * precision * recall / (precision + recall)


@cache
def refusal_phrases() -> tuple[str, ...]:
    """Return the shipped refusal phrases (``monitors/scoring/refusal_phrases.txt``), lower case."""
    text = files("monitors.scoring").joinpath("refusal_phrases.txt").read_text(encoding="utf-8")
    lines = (line.strip().lower() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def is_refusal(text: str) -> bool:
    """Return whether ``text`` contains one of the refusal phrases (typographic quotes too)."""
    lowered = text.lower().replace("\u2019", "'")
    return any(phrase in lowered for phrase in refusal_phrases())


# Scoring ------------------------------------------------------------------------------------


def _expected(case: ScoringCase) -> str | None:
    return case.expected_response


def _one(spec: ScorerSpec, case: ScoringCase) -> Score:
    text = case.response
    if isinstance(spec, ExactMatchSpec):
        expected = _expected(case)
        if expected is None:
            return Score.skipped(_NO_EXPECTED)
        a, b = text.strip(), expected.strip()
        if not spec.case_sensitive:
            a, b = a.lower(), b.lower()
        return Score.of(float(a == b), threshold=1.0)
    if isinstance(spec, ContainsSpec):
        values = spec.values or list(case.facts)
        if not values:
            return Score.skipped("no values given and the record has no facts")
        haystack = text if spec.case_sensitive else text.lower()
        present = [v for v in values if (v if spec.case_sensitive else v.lower()) in haystack]
        missing = [v for v in values if v not in present]
        return Score.of(len(present) / len(values), threshold=1.0, missing=missing[:20])
    if isinstance(spec, RegexSpec):
        try:
            hit = regex.search(spec.pattern, text, timeout=_REGEX_TIMEOUT_SECONDS) is not None
        except TimeoutError:
            return Score.error("the pattern ran out of time on this response")
        return Score.of(float(hit == spec.must_match), threshold=1.0)
    if isinstance(spec, JsonValidSpec | JsonSchemaSpec):
        try:
            document = json.loads(text)
        except ValueError as error:
            return Score.of(0.0, threshold=1.0, problem=f"not JSON: {error}"[:300])
        if isinstance(spec, JsonValidSpec):
            return Score.of(1.0, threshold=1.0)
        from jsonschema import Draft202012Validator

        errors = sorted(
            Draft202012Validator(spec.json_schema).iter_errors(document), key=lambda e: e.path
        )
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
            return Score.of(0.0, threshold=1.0, problem=f"{where}: {errors[0].message}"[:300])
        return Score.of(1.0, threshold=1.0)
    if isinstance(spec, LengthSpec):
        size = len(text)
        ok = size >= spec.min_chars and (spec.max_chars is None or size <= spec.max_chars)
        return Score.of(float(ok), threshold=1.0, chars=size)
    if isinstance(spec, RefusalSpec):
        refused = is_refusal(text)
        return Score(
            ScoreStatus.SCORED,
            float(refused),
            refused == spec.expect_refusal,
            detail={"refused": refused},
        )
    if isinstance(spec, PiiSpec):
        disabled = (
            [] if spec.entities is None else [e.value for e in Entity if e not in spec.entities]
        )
        found = build_redactor(disabled=disabled)(text).counts
        return Score.of(float(not found), threshold=1.0, entities=dict(sorted(found.items())))
    if isinstance(spec, TokenF1Spec | RougeLSpec):
        expected = _expected(case)
        if expected is None:
            return Score.skipped(_NO_EXPECTED)
        measure = token_f1 if isinstance(spec, TokenF1Spec) else rouge_l
        return Score.of(round(measure(text, expected), 6), threshold=spec.threshold)
    raise AssertionError(f"no offline scorer for {type(spec).__name__}")


def _similarities(spec: EmbeddingSimilaritySpec, cases: Sequence[ScoringCase]) -> list[Score]:
    import numpy as np

    from monitors.embeddings import embed_texts

    pairs = [(i, c.response, c.expected_response) for i, c in enumerate(cases)]
    usable = [(i, r, e) for i, r, e in pairs if e is not None]
    scores = [Score.skipped(_NO_EXPECTED) for _ in cases]
    if not usable:
        return scores
    vectors = embed_texts([r for _, r, _ in usable] + [e for _, _, e in usable if e is not None])
    half = len(usable)
    cosines = np.sum(vectors[:half] * vectors[half:], axis=1)
    for (i, _, _), cosine in zip(usable, cosines, strict=True):
        scores[i] = Score.of(round(float(cosine), 6), threshold=spec.threshold)
    return scores


def run_scorer(
    spec: ScorerSpec,
    cases: Sequence[ScoringCase],
    *,
    pricer: Pricer | None = None,
    judge_send: Callable[..., Any] | None = None,
    on_case: Callable[[int], None] | None = None,
) -> list[Score]:
    """Score every case with one scorer, in order.

    ``judge_send`` replaces the judge's chat call (the runner binds the project's outbound
    guard); ``on_case`` is told after each judged case (progress of slow judges).
    """
    if isinstance(spec, EmbeddingSimilaritySpec):
        return _similarities(spec, cases)
    if isinstance(spec, LlmJudgeSpec):
        judge = (
            Judge(spec, pricer=pricer)
            if judge_send is None
            else Judge(spec, pricer=pricer, send=judge_send)
        )
        results: list[Score] = []
        down = 0
        for index, case in enumerate(cases):
            if down >= _GIVE_UP_AFTER:
                results.append(
                    Score.error(
                        f"judge {spec.name!r}: not asked; its endpoint failed "
                        f"{_GIVE_UP_AFTER} times in a row"
                    )
                )
                continue
            try:
                results.append(judge.grade(case).to_score(threshold=spec.threshold))
                down = 0
            except EndpointUnavailable as error:
                down += 1
                results.append(Score.error(f"judge {spec.name!r}: {error}"))
            except EndpointError as error:
                results.append(Score.error(f"judge {spec.name!r}: {error}"))
            if on_case is not None:
                on_case(index)
        return results
    return [_one(spec, case) for case in cases]
