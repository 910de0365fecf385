"""Typed findings: what a monitor run concluded, one value per metric and scope.

Monitors describe; they never decide what a finding means. A run hands its findings to a
callback (governance turns them into policy decisions), so this type is the contract between
the two rooms: keep it small, stable and serialisable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

__all__ = ["Finding", "FindingSink", "Status", "worst_status"]


class Status(StrEnum):
    """The verdict of one finding, ordered from harmless to urgent (``insufficient`` aside)."""

    OK = "ok"
    WARN = "warn"
    ALERT = "alert"
    INSUFFICIENT = "insufficient"


_RANK = {Status.INSUFFICIENT: 0, Status.OK: 1, Status.WARN: 2, Status.ALERT: 3}


def worst_status(statuses: list[Status]) -> Status:
    """Return the most urgent status; ``insufficient`` only when nothing else was judged."""
    if not statuses:
        return Status.INSUFFICIENT
    return max(statuses, key=_RANK.__getitem__)


@dataclass(frozen=True, slots=True)
class Finding:
    """One judged metric of one monitor run.

    Attributes:
        monitor: The monitor kind that produced it (``drift``, ``quality``, ``performance``,
            ``fairness``, ``explanations``).
        metric: What was measured (``wasserstein_distance``, ``drift_share``, ``accuracy``,
            ``demographic_parity_difference``, ``attribution_ndcg`` …).
        scope: Where: ``dataset``, ``column:<name>``, ``group:<feature>=<value>`` or
            ``feature:<name>`` for intersections and explanations alike.
        value: The measured value; ``None`` when the data was insufficient.
        threshold: The threshold it was judged against, if any.
        status: The verdict.
        detail: Extra numbers worth keeping (p-value, effect size, interval, method, counts).
    """

    monitor: str
    metric: str
    scope: str
    value: float | None
    threshold: float | None
    status: Status
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "monitor": self.monitor,
            "metric": self.metric,
            "scope": self.scope,
            "value": self.value,
            "threshold": self.threshold,
            "status": self.status.value,
            "detail": self.detail,
        }


class FindingSink(Protocol):
    """The callback a monitor run hands its findings to (governance supplies the real one)."""

    def __call__(self, findings: list[Finding]) -> None:
        """Receive the findings of one run."""
