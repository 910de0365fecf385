"""Typed findings and run summaries: what a monitor run concluded, and its one stored form.

Monitors describe; they never decide what a finding means. A run hands its findings to a
callback (governance turns them into alerts and policy decisions), so these types are the
contract between the rooms: keep them small, stable and serialisable.

- :class:`Finding` is one judged metric; :meth:`Finding.to_dict` / :meth:`Finding.from_dict`
  are its only JSON codec, and :class:`FindingList` is the column type that stores a list of
  them and reads it back as findings (policy history, incidents).
- :class:`RunSummary` is what a run stores on ``MonitorRun.summary``; :meth:`RunSummary.to_json`
  writes it, :meth:`RunSummary.from_json` reads it back.
- :func:`run_status` is the one rule for a run's overall verdict (``/metrics``, the dashboard
  and the reports use it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Finding",
    "FindingList",
    "FindingSink",
    "RunSummary",
    "Status",
    "run_status",
    "worst_status",
]


class Status(StrEnum):
    """The verdict of one finding, ordered from harmless to urgent (``insufficient`` aside)."""

    OK = "ok"
    WARN = "warn"
    ALERT = "alert"
    INSUFFICIENT = "insufficient"

    @property
    def rank(self) -> int:
        """How urgent: ``insufficient`` 0, ``ok`` 1, ``warn`` 2, ``alert`` 3."""
        return _RANK[self]


_RANK = {Status.INSUFFICIENT: 0, Status.OK: 1, Status.WARN: 2, Status.ALERT: 3}


def worst_status(statuses: list[Status]) -> Status:
    """Return the most urgent status; ``insufficient`` only when nothing else was judged."""
    if not statuses:
        return Status.INSUFFICIENT
    return max(statuses, key=lambda status: status.rank)


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Return the finding :meth:`to_dict` wrote (the one way back from JSON).

        Raises:
            KeyError: ``monitor``, ``metric``, ``scope`` or ``status`` is missing.
            ValueError: ``status`` is not a :class:`Status`.
        """
        value, threshold = data.get("value"), data.get("threshold")
        return cls(
            monitor=str(data["monitor"]),
            metric=str(data["metric"]),
            scope=str(data["scope"]),
            value=None if value is None else float(value),
            threshold=None if threshold is None else float(threshold),
            status=Status(data["status"]),
            detail=dict(data.get("detail") or {}),
        )


class FindingList(TypeDecorator[list[Finding]]):
    """A JSON column of findings: written with :meth:`Finding.to_dict`, read back as findings."""

    impl = sa.JSON
    cache_ok = True

    def process_bind_param(
        self, value: Iterable[Finding] | None, dialect: Dialect
    ) -> list[dict[str, Any]] | None:
        """Store each finding in its JSON form."""
        return None if value is None else [finding.to_dict() for finding in value]

    def process_result_value(self, value: Any, dialect: Dialect) -> list[Finding] | None:
        """Read the stored JSON back as findings."""
        return None if value is None else [Finding.from_dict(item) for item in value]


def _dataset_drift_share(findings: Iterable[Finding]) -> float | None:
    return next(
        (f.value for f in findings if f.metric == "drift_share" and f.scope == "dataset"),
        None,
    )


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one monitor run concluded, as stored on the run and read by every consumer.

    Attributes:
        kind: The monitor kind that ran.
        status: The run's verdict; ``None`` only when read from a stored summary without one
            (:func:`run_status` then judges by the findings).
        rows: Rows of the window the kind judged.
        findings: The findings, in the order the kind produced them.
        drift_share: The dataset-level share of drifted columns, ``None`` when the kind does
            not judge drift.
        computed: Whether the kind ran (``False``: nothing to read, see ``reason``).
        reason: Why nothing was judged.
        lineage_run_id: The lineage run recorded for the run, once it is.
    """

    kind: str
    status: Status | None
    rows: int = 0
    findings: tuple[Finding, ...] = ()
    drift_share: float | None = None
    computed: bool = True
    reason: str | None = None
    lineage_run_id: str | None = None

    @classmethod
    def of(
        cls,
        *,
        kind: str,
        status: Status,
        rows: int,
        findings: Iterable[Finding],
        reason: str | None = None,
    ) -> RunSummary:
        """Return the summary of a run's result (``reason``: why nothing was computed)."""
        found = tuple(findings)
        return cls(
            kind=kind,
            status=status,
            rows=rows,
            findings=found,
            drift_share=_dataset_drift_share(found),
            computed=reason is None,
            reason=reason,
        )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form stored on ``MonitorRun.summary`` and served by the API."""
        stored: dict[str, Any] = {
            "status": None if self.status is None else self.status.value,
            "drift_share": self.drift_share,
            "findings": [finding.to_dict() for finding in self.findings],
            "rows": self.rows,
            "kind": self.kind,
            "computed": self.computed,
            "reason": self.reason,
        }
        if self.lineage_run_id is not None:
            stored["lineage_run_id"] = self.lineage_run_id
        return stored

    @classmethod
    def from_json(cls, data: Any) -> RunSummary | None:
        """Read a stored summary back; ``None`` when ``data`` is not a monitor run's summary.

        Lenient on purpose: summaries stored by older versions may lack ``status`` or
        ``drift_share`` (taken from the findings then), and a finding that cannot be read is
        left out rather than hiding the rest of the run.
        """
        if not isinstance(data, Mapping):
            return None
        raw_status, raw_findings = data.get("status"), data.get("findings")
        if raw_status is None and not isinstance(raw_findings, list):
            return None
        findings = []
        for item in raw_findings if isinstance(raw_findings, list) else []:
            try:
                findings.append(Finding.from_dict(item))
            except (KeyError, TypeError, ValueError):
                continue
        status = raw_status if raw_status in set(Status) else None
        share = data.get("drift_share")
        if not isinstance(share, int | float) or not math.isfinite(share):
            share = _dataset_drift_share(findings)
        rows = data.get("rows")
        reason, lineage = data.get("reason"), data.get("lineage_run_id")
        return cls(
            kind=str(data.get("kind") or ""),
            status=None if status is None else Status(status),
            rows=rows if isinstance(rows, int) else 0,
            findings=tuple(findings),
            drift_share=None if share is None else float(share),
            computed=bool(data.get("computed", True)),
            reason=reason if isinstance(reason, str) else None,
            lineage_run_id=lineage if isinstance(lineage, str) else None,
        )


def run_status(summary: RunSummary | None) -> Status | None:
    """Return a run's overall verdict: its stored status, else the worst of its findings.

    ``None`` when there is nothing to say (no summary, or neither a status nor a finding).
    """
    if summary is None:
        return None
    if summary.status is not None:
        return summary.status
    if not summary.findings:
        return None
    return worst_status([finding.status for finding in summary.findings])


class FindingSink(Protocol):
    """The callback a monitor run hands its findings to (governance supplies the real one)."""

    def __call__(self, findings: list[Finding]) -> None:
        """Receive the findings of one run."""
