"""Evaluation gates on prompt versions: a scorer's mean on a named dataset, and its drop vs live.

:func:`retrain.gates.gate_results` calls :func:`check_eval_gate` for the ``eval_min`` and
``eval_max_drop`` gates of the project's policies when the version going live is a prompt
version (a model version of kind ``prompt``). The evidence is the version's latest finished run
on the dataset that evaluated the version itself (not a variant with overrides); for the drop,
the live version's latest finished run on the *same dataset version*. A refusal names the
scorer, the figures and the run, so the reader knows what to look at or re-run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.policy_language import EvalMaxDropGate, EvalMinGate
from lineage.models import ModelVersion
from retrain.eval_datasets import EvalDataset, EvalDatasetVersion
from retrain.eval_figures import RunFigures, ScorerFigures
from retrain.eval_runs import EvalRun, EvalRunState, run_figures

__all__ = ["EvalEvidence", "check_eval_gate", "eval_evidence"]

_COUNTED = (EvalRunState.SUCCEEDED.value, EvalRunState.PARTIAL.value)


@dataclass(frozen=True, slots=True)
class EvalEvidence:
    """A finished run of a version on a dataset version, with its figures."""

    run: EvalRun
    figures: RunFigures
    dataset_version: int


def eval_evidence(
    *,
    session: Session,
    model_version: ModelVersion,
    dataset: str,
    dataset_version_id: uuid.UUID | None = None,
) -> EvalEvidence | None:
    """Return the version's latest finished own run on ``dataset`` (or on one version of it)."""
    query = (
        select(EvalRun, EvalDatasetVersion.version)
        .join(EvalDatasetVersion, col(EvalDatasetVersion.id) == col(EvalRun.dataset_version_id))
        .join(EvalDataset, col(EvalDataset.id) == col(EvalDatasetVersion.dataset_id))
        .where(
            EvalRun.project_id == model_version.project_id,
            EvalRun.model_version_id == model_version.id,
            col(EvalRun.overrides).is_(None),
            col(EvalRun.state).in_(_COUNTED),
            EvalDataset.name == dataset,
        )
        .order_by(sa.desc(col(EvalRun.finished_at)))
    )
    if dataset_version_id is not None:
        query = query.where(EvalRun.dataset_version_id == dataset_version_id)
    row = session.exec(query).first()
    if row is None:
        return None
    run, number = row
    figures = run_figures(run)
    return None if figures is None else EvalEvidence(run, figures, number)


def _usable(
    evidence: EvalEvidence, scorer: str, who: str
) -> tuple[ScorerFigures | None, str | None]:
    figures = evidence.figures.scorers.get(scorer)
    where = f"run {evidence.run.id} ({who}, dataset version {evidence.dataset_version})"
    if figures is None:
        return None, f"{where} has no scorer {scorer!r}; evaluate with it"
    if figures.errors:
        return None, (
            f"{where} has {figures.errors} error(s) for scorer {scorer!r} (a judge was "
            "unavailable?); run the evaluation again"
        )
    if figures.mean is None:
        return None, f"{where} scored no record with {scorer!r}"
    return figures, None


def _figure(figures: ScorerFigures) -> str:
    return (
        f"mean {figures.mean:.4f} [{figures.low:.4f}, {figures.high:.4f}] over "
        f"{figures.scored} records, pass rate {figures.pass_rate:.0%}"
    )


def check_eval_gate(
    gate: EvalMinGate | EvalMaxDropGate,
    *,
    candidate: ModelVersion,
    evidence: EvalEvidence | None,
    live: ModelVersion | None,
    live_evidence: EvalEvidence | None,
) -> tuple[bool, str]:
    """Judge one evaluation gate on the evidence given (pure); return (passed, message)."""
    if evidence is None:
        return False, (
            f"version {candidate.version} has no finished evaluation run on dataset "
            f"{gate.dataset!r}; run one (POST …/evaluation/runs) first"
        )
    ours, problem = _usable(evidence, gate.scorer, f"version {candidate.version}")
    if ours is None or ours.mean is None:
        return False, problem or ""
    run = f"run {evidence.run.id}"
    if isinstance(gate, EvalMinGate):
        ok = ours.mean >= gate.min
        verb = "reaches" if ok else "is below"
        return ok, (
            f"{gate.scorer} on {gate.dataset} v{evidence.dataset_version}: {_figure(ours)} "
            f"({run}) {verb} the minimum {gate.min:g}"
        )
    if live is None or live.id == candidate.id:
        return True, "nothing else is live to compare with"
    if live_evidence is None:
        return False, (
            f"the live version {live.version} has no finished run on dataset {gate.dataset!r} "
            f"version {evidence.dataset_version} to compare with; evaluate it on that version"
        )
    theirs, problem = _usable(live_evidence, gate.scorer, f"live version {live.version}")
    if theirs is None or theirs.mean is None:
        return False, problem or ""
    floor = theirs.mean - gate.max_drop
    ok = ours.mean >= floor
    return ok, (
        f"{gate.scorer} on {gate.dataset} v{evidence.dataset_version}: version "
        f"{candidate.version} {_figure(ours)} ({run}) vs live version {live.version} "
        f"{_figure(theirs)} (run {live_evidence.run.id}); "
        + (
            f"within the {gate.max_drop:g} drop allowed"
            if ok
            else f"it drops {theirs.mean - ours.mean:.4f}, more than the {gate.max_drop:g} allowed"
        )
    )
