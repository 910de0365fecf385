"""Promotion gates: the ``gates`` of the active policies, checked before a version goes live.

:func:`policy_gate` is called by :mod:`retrain.promotion` itself on every path that changes what a
slot serves (promote, a recorded deployment, rollback, redeploy); nobody hands it in, so no
caller can forget it. It reads the project's enabled policies at their active versions, checks
every gate that applies to the model, and refuses a model under a ``block_promotion`` decision
in force. It raises :class:`~lineage.errors.PermissionDenied` naming each failed gate with its
numbers, so nothing changes and the refusal is audited by the caller.

A version *restored* (rollback, redeploy) is judged by the gates that look at the version itself;
``metric_vs_champion`` then has no champion to beat (the version being left is the one found
wanting) and a ``block_promotion`` does not apply (it stops new versions, not the way back).

:func:`check_gate` is the pure part (one gate against the facts it needs), for tests and for
anyone who wants to show what a gate would say.

=======================  ===================================================================
``metric_vs_champion``   candidate metric >= champion metric - ``max_drop`` on the same held-out
                         rows (the latest :class:`~retrain.evaluation.Evaluation`, which must
                         be against the current champion); passes when there is no champion
``metric_no_worse``      the same, with confidence: the candidate's lower 95 % bootstrap bound
                         >= champion metric - ``max_drop``; the refusal shows both intervals
``fairness_max``         candidate fairness metric ≤ ``max`` for every (or the named)
                         sensitive feature of the evaluation
``model_card``           the version's registered metadata fills every listed field
``approvers``            the approved promotion request has ≥ ``min`` distinct approvers
``eval_min``             a prompt version's scorer mean on a named dataset ≥ ``min``
                         (:mod:`retrain.eval_gates`; skipped for model versions)
``eval_max_drop``        that mean trails the live version's, on the same dataset version, by
                         ≤ ``max_drop``; passes when nothing is live
=======================  ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from governance.approvals import ApprovalAction, decisions_of, find_approved
from governance.decisions import active_block
from governance.policies import active_policies
from governance.policy_language import (
    ApproversGate,
    EvalMaxDropGate,
    EvalMinGate,
    FairnessMaxGate,
    Gate,
    MetricNoWorseGate,
    MetricVsChampionGate,
    ModelCardGate,
)
from lineage.errors import PermissionDenied
from lineage.models import ModelVersion, VersionKind
from lineage.tables import utcnow
from retrain.eval_gates import check_eval_gate, eval_evidence
from retrain.evaluation import Evaluation, latest_evaluation

__all__ = ["GateResult", "check_gate", "gate_results", "policy_gate"]


@dataclass(frozen=True, slots=True)
class GateResult:
    """Whether one gate let a version through, and the numbers that say why."""

    gate: str
    passed: bool
    message: str


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def check_gate(
    gate: Gate,
    *,
    model_version: ModelVersion,
    champion: ModelVersion | None,
    evaluation: Evaluation | None,
    approvers: int,
) -> GateResult:
    """Judge one gate on the facts given (pure)."""
    name = gate.type
    if isinstance(gate, ApproversGate):
        ok = approvers >= gate.min
        return GateResult(name, ok, f"{approvers} approver(s), {gate.min} required")
    if isinstance(gate, EvalMinGate | EvalMaxDropGate):
        return GateResult(name, False, "an evaluation gate is judged on runs (gate_results)")
    if isinstance(gate, ModelCardGate):
        filled = {
            "description": bool(model_version.description.strip()),
            "feature_schema": bool(model_version.feature_schema),
            "metrics": bool(model_version.metrics),
            "parameters": bool(model_version.parameters),
            "source_run": model_version.source_run_id is not None,
        }
        missing = [f for f in gate.fields if not filled[f]]
        if missing:
            return GateResult(name, False, f"the model card lacks {', '.join(missing)}")
        return GateResult(name, True, "the model card is complete")
    if evaluation is None:
        return GateResult(
            name,
            False,
            f"version {model_version.version} has no evaluation against the champion; "
            "evaluate it first",
        )
    if isinstance(gate, MetricNoWorseGate):
        return _no_worse(gate, champion=champion, evaluation=evaluation)
    if isinstance(gate, MetricVsChampionGate):
        if champion is None:
            return GateResult(name, True, "there is no champion to compare with")
        if evaluation.champion_version_id != champion.id:
            return GateResult(
                name,
                False,
                f"the evaluation compared with another version than the champion "
                f"(version {champion.version}); evaluate again",
            )
        candidate = _number(evaluation.performance.get("candidate", {}).get(gate.metric))
        best = _number(evaluation.performance.get("champion", {}).get(gate.metric))
        if candidate is None or best is None:
            return GateResult(name, False, f"the evaluation has no {gate.metric!r} for both")
        ok = candidate >= best - gate.max_drop
        return GateResult(
            name,
            ok,
            f"{gate.metric} {candidate:.4f} vs champion {best:.4f} "
            f"(may trail by at most {gate.max_drop:g})",
        )
    assert isinstance(gate, FairnessMaxGate)
    per_feature = evaluation.fairness.get("candidate", {})
    features = [gate.feature] if gate.feature else sorted(per_feature)
    if not features:
        return GateResult(name, False, "the evaluation measured no sensitive feature")
    worst: list[str] = []
    for feature in features:
        value = _number(per_feature.get(feature, {}).get("metrics", {}).get(gate.metric))
        if value is None:
            return GateResult(name, False, f"the evaluation has no {gate.metric!r} for {feature}")
        if value > gate.max:
            worst.append(f"{feature} {value:.4f}")
    if worst:
        return GateResult(name, False, f"{gate.metric} above {gate.max:g}: {', '.join(worst)}")
    return GateResult(name, True, f"{gate.metric} at most {gate.max:g} for {', '.join(features)}")


def _interval(evaluation: Evaluation, role: str, metric: str) -> tuple[float, float] | None:
    spread = evaluation.performance.get("intervals", {}).get(role, {}).get(metric)
    if not isinstance(spread, list) or len(spread) != 2:
        return None
    low, high = _number(spread[0]), _number(spread[1])
    return (low, high) if low is not None and high is not None else None


def _no_worse(
    gate: MetricNoWorseGate, *, champion: ModelVersion | None, evaluation: Evaluation
) -> GateResult:
    """Judge ``metric_no_worse`` on the stored bootstrap intervals."""
    name = gate.type
    if champion is None:
        return GateResult(name, True, "there is no champion to compare with")
    if evaluation.champion_version_id != champion.id:
        return GateResult(
            name,
            False,
            f"the evaluation compared with another version than the champion "
            f"(version {champion.version}); evaluate again",
        )
    candidate = _number(evaluation.performance.get("candidate", {}).get(gate.metric))
    best = _number(evaluation.performance.get("champion", {}).get(gate.metric))
    ours = _interval(evaluation, "candidate", gate.metric)
    theirs = _interval(evaluation, "champion", gate.metric)
    if candidate is None or best is None or ours is None or theirs is None:
        return GateResult(
            name, False, f"the evaluation has no {gate.metric!r} with its interval for both"
        )
    floor = best - gate.max_drop
    ok = ours[0] >= floor
    level = f"{gate.confidence:.0%}"
    message = (
        f"{gate.metric} {candidate:.4f} [{ours[0]:.4f}, {ours[1]:.4f}] vs champion {best:.4f} "
        f"[{theirs[0]:.4f}, {theirs[1]:.4f}] ({level} intervals); "
        + (
            f"its lower bound {ours[0]:.4f} reaches {floor:.4f}"
            if ok
            else f"its lower bound {ours[0]:.4f} is below {floor:.4f} (champion less "
            f"max_drop {gate.max_drop:g}): not shown to be no worse with {level} confidence"
        )
    )
    return GateResult(name, ok, message)


def _approvers(session: Session, model_version: ModelVersion) -> int:
    approval = find_approved(
        session=session,
        project_id=model_version.project_id,
        action=ApprovalAction.PROMOTE,
        target_kind="model_version",
        target_id=str(model_version.id),
    )
    if approval is None:
        return 0
    decisions = decisions_of(session=session, approval_id=approval.id)
    return len({d.principal_id for d in decisions if d.approve})


def _eval_gate(
    session: Session,
    gate: EvalMinGate | EvalMaxDropGate,
    version: ModelVersion,
    live: ModelVersion | None,
) -> tuple[bool, str]:
    evidence = eval_evidence(session=session, model_version=version, dataset=gate.dataset)
    live_evidence = None
    if isinstance(gate, EvalMaxDropGate) and live is not None and evidence is not None:
        live_evidence = eval_evidence(
            session=session,
            model_version=live,
            dataset=gate.dataset,
            dataset_version_id=evidence.run.dataset_version_id,
        )
    return check_eval_gate(
        gate, candidate=version, evidence=evidence, live=live, live_evidence=live_evidence
    )


def gate_results(
    *,
    session: Session,
    model_version: ModelVersion,
    champion: ModelVersion | None,
    restoring: bool = False,
) -> list[GateResult]:
    """Return every applicable gate's verdict (and a block in force) for a version.

    ``restoring`` judges a version put back live (rollback, redeploy): no champion to compare
    with, and a ``block_promotion`` in force does not apply.
    """
    results = []
    if restoring:
        champion = None
    block = (
        None
        if restoring
        else active_block(
            session=session,
            project_id=model_version.project_id,
            model_name=model_version.name,
            now=utcnow(),
        )
    )
    if block is not None:
        results.append(
            GateResult(
                "block_promotion",
                False,
                f"promotions of {model_version.name!r} are blocked until "
                f"{block.until.isoformat()} ({block.reason})",
            )
        )
    evaluation = latest_evaluation(
        session=session, project_id=model_version.project_id, model_version_id=model_version.id
    )
    approvers = _approvers(session, model_version)
    for policy in active_policies(session=session, project_id=model_version.project_id):
        for gate in policy.document.gates:
            if gate.model is not None and gate.model != model_version.name:
                continue
            if isinstance(gate, EvalMinGate | EvalMaxDropGate):
                if model_version.kind != VersionKind.PROMPT:
                    continue
                passed, message = _eval_gate(session, gate, model_version, champion)
                results.append(
                    GateResult(f"{policy.name} v{policy.version} {gate.type}", passed, message)
                )
                continue
            result = check_gate(
                gate,
                model_version=model_version,
                champion=champion,
                evaluation=evaluation,
                approvers=approvers,
            )
            results.append(
                GateResult(
                    f"{policy.name} v{policy.version} {result.gate}", result.passed, result.message
                )
            )
    return results


def policy_gate(
    *,
    session: Session,
    model_version: ModelVersion,
    champion: ModelVersion | None,
    restoring: bool,
) -> None:
    """Refuse a version going live when a policy gate fails or a block is in force.

    Raises:
        PermissionDenied: Naming every failed gate and its numbers.
    """
    results = gate_results(
        session=session, model_version=model_version, champion=champion, restoring=restoring
    )
    failed = [r for r in results if not r.passed]
    if failed:
        raise PermissionDenied(
            f"version {model_version.version} of {model_version.name!r} fails its promotion "
            "gates: " + "; ".join(f"gate {r.gate!r}: {r.message}" for r in failed)
        )
