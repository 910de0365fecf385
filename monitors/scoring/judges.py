"""LLM judges: ask a model behind any OpenAI-compatible endpoint to grade a response.

:class:`Judge` is the reusable part (evaluation runs use it; so may sampled production
judges): give it a :class:`~monitors.scoring.scores.ScoringCase`, get a
:class:`JudgeVerdict`: a score on a 1-5 scale mapped to [0, 1], the judge's rationale, its
tokens, cost and latency. Structured output with fallbacks: the judge first asks for
``response_format: json_schema``; if the server refuses that (a 4xx), it asks for
``json_object``; if the server refuses that too, it asks in plain text. Whatever came back,
the verdict is read from JSON (also inside a code fence or surrounding prose) or, failing
that, from a ``score: N`` line. An endpoint that is down raises
:class:`~monitors.scoring.openai_chat.EndpointUnavailable`: the caller records an *error*,
never a verdict, and the offline scorers are unaffected.

The endpoint's credential is a reference (``env:NAME``), resolved in the worker at call time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitors.scoring.openai_chat import ChatReply, Endpoint, EndpointError, EndpointRefused, chat
from monitors.scoring.scores import Score, ScoringCase

__all__ = [
    "DEFAULT_CRITERIA",
    "Judge",
    "JudgeVerdict",
    "LlmJudgeSpec",
    "Pricer",
    "parse_verdict",
]

DEFAULT_CRITERIA = (
    "Is the response correct and helpful for the input, consistent with the expected response "
    "and facts when given, and does it follow the guidelines?"
)

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "rationale": {"type": "string"},
    },
    "required": ["score", "rationale"],
    "additionalProperties": False,
}
_FORMATS: tuple[Mapping[str, Any] | None, ...] = (
    {"type": "json_schema", "json_schema": {"name": "verdict", "schema": _SCHEMA, "strict": True}},
    {"type": "json_object"},
    None,
)
_FORMAT_NAMES = ("json_schema", "json_object", "text")
_SCORE_LINE = re.compile(r"(?i)\bscore\b\s*[:=]?\s*([1-5])\b")
_FENCE = re.compile(r"\{[\s\S]*\}")
_RATIONALE_CHARS = 2000

Pricer = Callable[[str, str, int | None, int | None], int | None]
"""``(provider, model, input_tokens, output_tokens) → nano-dollars or None`` (no price)."""


class LlmJudgeSpec(BaseModel):
    """A judge scorer: which endpoint grades, on what criteria, and the passing score."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["llm_judge"]
    name: str = Field(default="llm_judge", pattern=r"^[a-z][a-z0-9_.-]{0,62}$")
    endpoint: Endpoint
    criteria: str = Field(default=DEFAULT_CRITERIA, min_length=1, max_length=4000)
    threshold: float = Field(
        default=0.75, ge=0, le=1, description="Pass at this normalised score (4 of 5 → 0.75)."
    )
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=300, ge=16, le=4096)


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    """What a judge said about one case, and what asking cost."""

    score: int
    """On the 1-5 scale the judge was asked for."""
    rationale: str
    input_tokens: int | None
    output_tokens: int | None
    cost_nano_usd: int | None
    latency_ms: float
    response_format: str
    """Which request form produced it: ``json_schema``, ``json_object`` or ``text``."""

    @property
    def value(self) -> float:
        """Return the score mapped to [0, 1] (1 → 0.0, 5 → 1.0)."""
        return (self.score - 1) / 4

    def to_score(self, *, threshold: float) -> Score:
        """Return the verdict as a :class:`Score` (detail: rationale, tokens, cost, latency)."""
        return Score.of(
            self.value,
            threshold=threshold,
            judge_score=self.score,
            rationale=self.rationale,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_nano_usd=self.cost_nano_usd,
            latency_ms=round(self.latency_ms, 3),
            response_format=self.response_format,
        )


def parse_verdict(text: str) -> tuple[int, str] | None:
    """Read ``(score, rationale)`` from a judge's reply: JSON first, then a ``score: N`` line."""
    candidates = [text.strip()]
    found = _FENCE.search(text)
    if found:
        candidates.append(found.group())
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            score = data.get("score")
            if not isinstance(score, int | float) or isinstance(score, bool):
                continue
            if 1 <= score <= 5 and float(score).is_integer():
                return int(score), str(data.get("rationale", ""))[:_RATIONALE_CHARS]
    line = _SCORE_LINE.search(text)
    if line:
        return int(line.group(1)), text.strip()[:_RATIONALE_CHARS]
    return None


def _prompt(spec: LlmJudgeSpec, case: ScoringCase) -> list[dict[str, str]]:
    parts = [f"Input:\n{json.dumps(dict(case.inputs), ensure_ascii=False, sort_keys=True)}"]
    if case.context:
        parts.append(f"Context:\n{case.context}")
    if case.expected_response is not None:
        parts.append(f"Expected response:\n{case.expected_response}")
    if case.facts:
        parts.append("Facts the response should state:\n" + "\n".join(f"- {f}" for f in case.facts))
    if case.guidelines:
        parts.append("Guidelines:\n" + "\n".join(f"- {g}" for g in case.guidelines))
    parts.append(f"Response to grade:\n{case.response}")
    system = (
        "You are an impartial grader. Criteria: "
        f"{spec.criteria}\nGrade from 1 (fails the criteria) to 5 (fully meets them). Reply "
        'with JSON only: {"score": <1-5>, "rationale": "<one or two sentences>"}.'
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


@dataclass(frozen=True)
class Judge:
    """Grade cases with one judge spec; ``pricer`` turns its tokens into a cost.

    Reusable outside evaluation runs (sampled production judges): construct it with the spec,
    call :meth:`grade` per case, and handle :class:`~monitors.scoring.openai_chat.EndpointError`.
    """

    spec: LlmJudgeSpec
    pricer: Pricer | None = None
    send: Callable[..., ChatReply] = chat

    def grade(self, case: ScoringCase) -> JudgeVerdict:
        """Ask the judge about one case, falling back on the response format as needed.

        Raises:
            EndpointUnavailable: The endpoint is down, timed out or sent no completion.
            EndpointRefused: The endpoint refused even the plain-text request.
            EndpointError: The judge's reply held no score (after every fallback).
        """
        messages = _prompt(self.spec, case)
        last_refusal: EndpointRefused | None = None
        for response_format, format_name in zip(_FORMATS, _FORMAT_NAMES, strict=True):
            try:
                reply = self.send(
                    self.spec.endpoint,
                    messages,
                    temperature=self.spec.temperature,
                    max_tokens=self.spec.max_tokens,
                    response_format=response_format,
                )
            except EndpointRefused as refused:
                last_refusal = refused
                continue
            parsed = parse_verdict(reply.text)
            if parsed is None:
                raise EndpointError(
                    f"the judge's reply held no score from 1 to 5 ({format_name} request)"
                )
            cost = None
            if self.pricer is not None:
                cost = self.pricer(
                    self.spec.endpoint.provider,
                    reply.model,
                    reply.input_tokens,
                    reply.output_tokens,
                )
            return JudgeVerdict(
                score=parsed[0],
                rationale=parsed[1],
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cost_nano_usd=cost,
                latency_ms=reply.latency_ms,
                response_format=format_name,
            )
        assert last_refusal is not None
        raise last_refusal

    def score(self, case: ScoringCase) -> Score:
        """Grade one case as a :class:`Score`; an endpoint failure is an ``error`` score."""
        try:
            verdict = self.grade(case)
        except EndpointError as error:
            return Score.error(f"judge {self.spec.name!r}: {error}")
        return verdict.to_score(threshold=self.spec.threshold)
