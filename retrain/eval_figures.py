"""A run's figures from its results: per-scorer mean with a bootstrap interval, pass rate, cost.

Pure: the runner stores :func:`summarise`'s output on the run when it finishes, and comparison
and gates read it back as :class:`RunFigures`, so every reader sees the same numbers. The
interval is the 95 % percentile bootstrap of the mean over the scored records (2,000 resamples,
a fixed seed, so the same results give the same interval).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from monitors.scoring.scores import Score, ScoreStatus

__all__ = [
    "CallFigures",
    "CallRecord",
    "RunFigures",
    "ScorerFigures",
    "bootstrap_mean",
    "summarise",
]

_RESAMPLES = 2000
_SEED = 20261206


def bootstrap_mean(values: Sequence[float]) -> tuple[float, float, float]:
    """Return the mean and its 95 % percentile-bootstrap interval (a point for one value)."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2:
        return mean, mean, mean
    rng = np.random.default_rng(_SEED)
    means = data[rng.integers(0, len(data), size=(_RESAMPLES, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return mean, float(low), float(high)


@dataclass(frozen=True, slots=True)
class ScorerFigures:
    """One scorer over one run: mean and interval over scored records, pass rate, counts."""

    mean: float | None
    low: float | None
    high: float | None
    pass_rate: float | None
    scored: int
    skipped: int
    errors: int


@dataclass(frozen=True, slots=True)
class CallFigures:
    """What calling the candidate cost: tokens, dollars (nano), latency, failures."""

    calls: int
    call_errors: int
    input_tokens: int
    output_tokens: int
    cost_nano_usd: int | None
    """``None`` when no call could be priced (never shown as $0)."""
    unpriced_calls: int
    p95_latency_ms: float | None
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0
    judge_cost_nano_usd: int | None = None


@dataclass(frozen=True, slots=True)
class RunFigures:
    """A run's figures, as stored on the run and read back by comparison and gates."""

    scorers: Mapping[str, ScorerFigures]
    calls: CallFigures
    records: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored on the run."""
        return {
            "records": self.records,
            "scorers": {k: asdict(v) for k, v in self.scorers.items()},
            "calls": asdict(self.calls),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunFigures:
        """Read the stored form back."""
        return cls(
            scorers={k: ScorerFigures(**v) for k, v in (data.get("scorers") or {}).items()},
            calls=CallFigures(**data["calls"]),
            records=int(data.get("records", 0)),
        )


def _p95(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)])


def _scorer(scores: Sequence[Score]) -> ScorerFigures:
    scored = [s for s in scores if s.status is ScoreStatus.SCORED and s.value is not None]
    values = [float(s.value) for s in scored if s.value is not None]
    mean = low = high = rate = None
    if values:
        mean, low, high = (round(x, 6) for x in bootstrap_mean(values))
        rate = round(sum(1 for s in scored if s.passed) / len(scored), 6)
    return ScorerFigures(
        mean=mean,
        low=low,
        high=high,
        pass_rate=rate,
        scored=len(scored),
        skipped=sum(1 for s in scores if s.status is ScoreStatus.SKIPPED),
        errors=sum(1 for s in scores if s.status is ScoreStatus.ERROR),
    )


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One candidate call as the figures need it."""

    ok: bool
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_nano_usd: int | None


def _sum_or_none(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def summarise(*, calls: Sequence[CallRecord], scores: Mapping[str, Sequence[Score]]) -> RunFigures:
    """Return a run's figures from its calls and each scorer's scores (one per record)."""
    ok = [c for c in calls if c.ok]
    judge_details = [s.detail for per in scores.values() for s in per if "judge_score" in s.detail]
    return RunFigures(
        records=len(calls),
        scorers={name: _scorer(per) for name, per in scores.items()},
        calls=CallFigures(
            calls=len(calls),
            call_errors=len(calls) - len(ok),
            input_tokens=sum(c.input_tokens or 0 for c in ok),
            output_tokens=sum(c.output_tokens or 0 for c in ok),
            cost_nano_usd=_sum_or_none([c.cost_nano_usd for c in ok]),
            unpriced_calls=sum(1 for c in ok if c.cost_nano_usd is None),
            p95_latency_ms=_p95([c.latency_ms for c in ok if c.latency_ms is not None]),
            judge_input_tokens=sum(int(d.get("input_tokens") or 0) for d in judge_details),
            judge_output_tokens=sum(int(d.get("output_tokens") or 0) for d in judge_details),
            judge_cost_nano_usd=_sum_or_none([d.get("cost_nano_usd") for d in judge_details]),
        ),
    )
