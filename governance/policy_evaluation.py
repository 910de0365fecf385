"""Pure policy evaluation: findings history + policies + prior decisions + time → Decisions.

:func:`evaluate` reads nothing but its arguments and touches nothing: :mod:`retrain.loop`
executes the decisions it returns, ``POST …/policies/{id}:dry-run`` only shows them. A rule fires
for a monitor when its condition holds on each of the monitor's last ``consecutive_runs`` runs,
unless the same rule fired for the same scope within its cooldown.
"""

from __future__ import annotations

import fnmatch
import math
import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from governance.policy_language import (
    Action,
    AllCondition,
    Condition,
    LeafCondition,
    PolicyDocument,
    Scope,
)
from monitors.findings import Finding, Status

__all__ = ["Decision", "PolicyRef", "PriorDecision", "RunFindings", "evaluate", "finding_id"]


@dataclass(frozen=True, slots=True)
class RunFindings:
    """The findings of one monitor run, and what the monitor watches."""

    run_id: str
    source_id: str
    at: datetime
    findings: tuple[Finding, ...]
    model: str | None = None
    deployment: str | None = None
    environment: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """A policy as evaluation needs it: which one, which version, what it says."""

    policy_id: uuid.UUID
    name: str
    version: int
    document: PolicyDocument


@dataclass(frozen=True, slots=True)
class PriorDecision:
    """A decision that fired earlier (cooldowns count from it)."""

    policy_id: uuid.UUID
    rule: str
    scope_key: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """What one rule decided for one scope: ``fire`` (act) or ``cooldown`` (held back)."""

    policy_id: uuid.UUID
    policy_name: str
    policy_version: int
    rule: str
    scope_key: str
    status: Literal["fire", "cooldown"]
    actions: tuple[Action, ...]
    run_ids: tuple[str, ...]
    finding_ids: tuple[str, ...]
    source_id: str
    model: str | None
    deployment: str | None
    environment: str | None
    reason: str
    findings: tuple[Finding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready view (for the dry-run answer and the decision row)."""
        return {
            "policy_id": str(self.policy_id),
            "policy_name": self.policy_name,
            "policy_version": self.policy_version,
            "rule": self.rule,
            "scope_key": self.scope_key,
            "status": self.status,
            "actions": [a.model_dump(mode="json") for a in self.actions],
            "run_ids": list(self.run_ids),
            "finding_ids": list(self.finding_ids),
            "source_id": self.source_id,
            "model": self.model,
            "deployment": self.deployment,
            "environment": self.environment,
            "reason": self.reason,
        }


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def finding_id(run_id: str, finding: Finding) -> str:
    """Return the stable id of a finding: its run plus monitor, metric and scope."""
    return f"{run_id}:{finding.monitor}.{finding.metric}@{finding.scope}"


def _leaf(leaf: LeafCondition, findings: Sequence[Finding]) -> list[Finding]:
    hits = []
    for f in findings:
        if leaf.monitor is not None and f.monitor != leaf.monitor:
            continue
        if not fnmatch.fnmatchcase(f.metric, leaf.metric):
            continue
        if not fnmatch.fnmatchcase(f.scope, leaf.scope):
            continue
        if leaf.status is not None:
            if f.status.rank >= Status(leaf.status).rank:
                hits.append(f)
        elif (
            leaf.op is not None
            and leaf.threshold is not None
            and f.value is not None
            and math.isfinite(f.value)
            and _OPS[leaf.op](f.value, leaf.threshold)
        ):
            hits.append(f)
    return hits


def _holds(condition: Condition, findings: Sequence[Finding]) -> tuple[bool, list[Finding]]:
    if isinstance(condition, LeafCondition):
        hits = _leaf(condition, findings)
        return bool(hits), hits
    parts = [_holds(c, findings) for c in getattr(condition, "all", None) or condition.any]  # type: ignore[union-attr]
    evidence = [f for ok, hits in parts if ok for f in hits]
    if isinstance(condition, AllCondition):
        return all(ok for ok, _ in parts), evidence
    return any(ok for ok, _ in parts), evidence


def _in_scope(scope: Scope, run: RunFindings) -> bool:
    return all(
        wanted is None or wanted == have
        for wanted, have in (
            (scope.model, run.model),
            (scope.deployment, run.deployment),
            (scope.environment, run.environment),
        )
    )


def _scope_key(run: RunFindings) -> str:
    if run.model is None and run.deployment is None:
        return f"source={run.source_id}"
    return f"model={run.model or '-'};deployment={run.deployment or '-'}/{run.environment or '-'}"


def evaluate(
    *,
    history: Sequence[RunFindings],
    policies: Sequence[PolicyRef],
    prior: Sequence[PriorDecision],
    now: datetime,
) -> list[Decision]:
    """Decide, for every rule and every monitor in its scope, whether to act now.

    A rule fires for a monitor when its condition holds on each of that monitor's last
    ``consecutive_runs`` runs (fewer runs: no decision). It is held back (``cooldown``) when the
    same rule fired for the same scope (model, deployment) less than ``cooldown_seconds`` before
    ``now`` — earlier in ``prior`` or earlier in this very evaluation. Pure: reads nothing else.
    """
    by_source: dict[str, list[RunFindings]] = {}
    for run in sorted(history, key=lambda r: r.at):
        by_source.setdefault(run.source_id, []).append(run)
    fired: dict[tuple[uuid.UUID, str, str], datetime] = {}
    for p in prior:
        key = (p.policy_id, p.rule, p.scope_key)
        fired[key] = max(fired.get(key, p.at), p.at)
    decisions: list[Decision] = []
    for policy in policies:
        for rule in policy.document.rules:
            for source_id, runs in sorted(by_source.items()):
                latest = runs[-1]
                if not _in_scope(rule.scope, latest):
                    continue
                window = runs[-rule.consecutive_runs :]
                if len(window) < rule.consecutive_runs:
                    continue
                results = [_holds(rule.when, run.findings) for run in window]
                if not all(ok for ok, _ in results):
                    continue
                evidence = results[-1][1]
                key = (policy.policy_id, rule.name, _scope_key(latest))
                last = fired.get(key)
                cooling = (
                    last is not None
                    and rule.cooldown_seconds > 0
                    and now - last < timedelta(seconds=rule.cooldown_seconds)
                )
                if cooling:
                    assert last is not None
                    reason = (
                        f"rule {rule.name!r} fired for {key[2]} at {last.isoformat()}; "
                        f"cooldown is {rule.cooldown_seconds} s"
                    )
                else:
                    reason = (
                        f"rule {rule.name!r} held on the last {rule.consecutive_runs} run(s) "
                        f"of monitor {source_id}"
                    )
                    fired[key] = now
                finding_ids = tuple(
                    dict.fromkeys(
                        finding_id(run.run_id, f)
                        for run, (_, hits) in zip(window, results, strict=True)
                        for f in hits
                    )
                )
                decisions.append(
                    Decision(
                        policy_id=policy.policy_id,
                        policy_name=policy.name,
                        policy_version=policy.version,
                        rule=rule.name,
                        scope_key=key[2],
                        status="cooldown" if cooling else "fire",
                        actions=tuple(rule.actions),
                        run_ids=tuple(run.run_id for run in window),
                        finding_ids=finding_ids,
                        source_id=source_id,
                        model=latest.model,
                        deployment=latest.deployment,
                        environment=latest.environment,
                        reason=reason,
                        findings=tuple(
                            {(f.monitor, f.metric, f.scope): f for f in evidence}.values()
                        ),
                    )
                )
    return decisions
