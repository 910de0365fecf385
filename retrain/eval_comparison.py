"""Comparing evaluation runs side by side, and finding the records where they disagree.

Runs are comparable when they scored the same dataset version (same records, same positions).
For each run: its figures (per-scorer mean with bootstrap interval, pass rate; tokens, cost,
p95 latency). For the records: every position where, for some scorer both runs judged, one run
passed and another failed — the answers worth reading before promoting a version.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from lineage.errors import Conflict, InvalidInput
from retrain.eval_datasets import EvalRecord
from retrain.eval_figures import CallFigures, RunFigures
from retrain.eval_runs import (
    FINISHED_STATES,
    EvalResult,
    EvalRun,
    get_eval_run,
    results_of,
    run_figures,
)

__all__ = ["MAX_COMPARED", "Comparison", "DifferingRecord", "compare_runs"]

MAX_COMPARED = 6
"""The most runs one comparison holds."""


@dataclass(frozen=True, slots=True)
class DifferingRecord:
    """A record some scorer passed in one run and failed in another."""

    position: int
    inputs: dict[str, Any]
    expected_response: str | None
    scorers: list[str]
    """The scorers that disagree on it."""
    responses: list[str | None]
    """Each run's answer (``None`` when its call failed), in the comparison's run order."""
    passed: list[dict[str, bool | None]]
    """Each run's pass/fail per disagreeing scorer, in run order."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """Runs side by side on one dataset version."""

    runs: list[EvalRun]
    figures: list[RunFigures]
    scorers: list[str]
    differing: list[DifferingRecord]


def _passed(result: EvalResult | None, scorer: str) -> bool | None:
    if result is None:
        return None
    score = result.scores.get(scorer)
    return score.get("passed") if isinstance(score, dict) else None


def compare_runs(
    *, session: Session, project_id: uuid.UUID, run_ids: Sequence[uuid.UUID]
) -> Comparison:
    """Return the comparison of two or more finished runs of the project.

    Raises:
        InvalidInput: Fewer than two runs, too many, or a run twice.
        NotFound: A run is not in the project.
        Conflict: A run has not finished, or the runs scored different dataset versions.
    """
    if len(run_ids) < 2 or len(run_ids) > MAX_COMPARED:
        raise InvalidInput(
            f"compare 2 to {MAX_COMPARED} runs, not {len(run_ids)}; give ?runs=<id>,<id>",
            field="runs",
        )
    if len(set(run_ids)) != len(run_ids):
        raise InvalidInput("a run is named twice", field="runs")
    runs = [get_eval_run(session=session, project_id=project_id, run_id=i) for i in run_ids]
    unfinished = [str(r.id) for r in runs if r.run_state not in FINISHED_STATES]
    if unfinished:
        raise Conflict(f"runs {unfinished} have not finished; compare them when they have")
    if len({r.dataset_version_id for r in runs}) > 1:
        raise Conflict(
            "the runs scored different dataset versions, so their records differ; compare runs "
            "on the same dataset version",
            field="runs",
        )
    figures = [run_figures(r) for r in runs]
    known = [f for f in figures if f is not None]
    scorers = sorted({name for f in known for name in f.scorers})
    by_run = [{x.position: x for x in results_of(session=session, run=r)} for r in runs]
    positions = sorted({p for results in by_run for p in results})
    differing: list[DifferingRecord] = []
    for position in positions:
        row = [results.get(position) for results in by_run]
        split = []
        for scorer in scorers:
            verdicts = {_passed(result, scorer) for result in row} - {None}
            if verdicts == {True, False}:
                split.append(scorer)
        if not split:
            continue
        first = next(r for r in row if r is not None)
        record = session.get(EvalRecord, first.record_id)
        assert record is not None  # a foreign key guarantees it
        differing.append(
            DifferingRecord(
                position=position,
                inputs=record.inputs,
                expected_response=record.expected_response,
                scorers=split,
                responses=[r.response if r is not None else None for r in row],
                passed=[{s: _passed(r, s) for s in split} for r in row],
            )
        )
    return Comparison(
        runs=runs,
        figures=[f if f is not None else _empty() for f in figures],
        scorers=scorers,
        differing=differing,
    )


def _empty() -> RunFigures:
    return RunFigures(
        scorers={},
        calls=CallFigures(
            calls=0,
            call_errors=0,
            input_tokens=0,
            output_tokens=0,
            cost_nano_usd=None,
            unpriced_calls=0,
            p95_latency_ms=None,
        ),
    )
