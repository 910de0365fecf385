"""The two values every scorer shares: what it judges (a case) and what it says (a score).

One typed contract, used by evaluation runs (``retrain``), the offline scorers (``scorers``) and
LLM judges (``judges``, also for sampled production traces), so a score is read back the same
way wherever it was made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Score", "ScoreStatus", "ScoringCase"]


class ScoreStatus(StrEnum):
    """Whether a scorer judged a case, had nothing to judge, or could not judge it."""

    SCORED = "scored"
    SKIPPED = "skipped"
    """The case lacks what the scorer compares with (no expected response, no facts)."""
    ERROR = "error"
    """The scorer could not run (a judge's endpoint was down): the run is ``partial``."""


@dataclass(frozen=True, slots=True)
class ScoringCase:
    """One response to judge, with the record's inputs and expectations."""

    response: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    expected_response: str | None = None
    facts: Sequence[str] = ()
    guidelines: Sequence[str] = ()
    context: str | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """A scorer's verdict on one case: a value in [0, 1], pass or fail, and why.

    ``value`` and ``passed`` are ``None`` unless ``status`` is ``scored``; ``reason`` says
    why a case was skipped or errored; ``detail`` carries what a scorer measured beside the
    value (a judge's rationale, tokens and cost; the PII entities found).
    """

    status: ScoreStatus
    value: float | None = None
    passed: bool | None = None
    reason: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, value: float, *, threshold: float, **detail: Any) -> Score:
        """Return a scored verdict that passes when ``value`` reaches ``threshold``."""
        return cls(ScoreStatus.SCORED, float(value), value >= threshold, detail=detail)

    @classmethod
    def skipped(cls, reason: str) -> Score:
        """Return a verdict for a case the scorer has nothing to compare with."""
        return cls(ScoreStatus.SKIPPED, reason=reason)

    @classmethod
    def error(cls, reason: str, **detail: Any) -> Score:
        """Return a verdict for a case the scorer could not judge."""
        return cls(ScoreStatus.ERROR, reason=reason, detail=detail)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored with a result."""
        out: dict[str, Any] = {"status": str(self.status), "value": self.value}
        out["passed"] = self.passed
        if self.reason:
            out["reason"] = self.reason
        if self.detail:
            out["detail"] = dict(self.detail)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Score:
        """Read a stored score back."""
        return cls(
            ScoreStatus(data["status"]),
            data.get("value"),
            data.get("passed"),
            str(data.get("reason", "")),
            dict(data.get("detail") or {}),
        )
