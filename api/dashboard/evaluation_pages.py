"""Evaluation pages: a project's evaluation runs, and runs compared side by side.

Read through the same services as ``GET …/evaluation/runs`` and ``…/evaluation/comparison``
(project-filtered, gated by ``model:read``). The comparison shows each run's figures (per-scorer
mean with its 95 % bootstrap interval and pass rate; tokens, cost, p95 latency), the two
prompt templates as a line diff, and the records where one run passed and another failed.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.dashboard.rendering import _render, router
from api.dashboard.trace_pages import usd
from api.deps import SessionDep
from api.routes.evaluation_runs import EvalRunPublic, parse_run_ids
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.permissions import Permission
from lineage.prompts import get_prompt
from monitors.traces import count_run_traces
from retrain.eval_comparison import compare_runs
from retrain.eval_figures import RunFigures
from retrain.eval_runs import get_eval_run, list_eval_runs

__all__ = ["DiffLine", "template_diff", "template_lines"]

Reader = Annotated[Actor, Depends(require(Permission.MODEL_READ))]


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a side-by-side diff: the left and right text and how they differ."""

    kind: str
    """``same``, ``changed``, ``removed`` or ``added``."""
    left: str
    right: str


def template_lines(template: Any, settings: dict[str, Any]) -> list[str]:
    """Return a prompt version as lines to diff: its messages, then its model configuration."""
    lines: list[str] = []
    if isinstance(template, str):
        lines.extend(template.splitlines() or [""])
    else:
        for message in template:
            body = str(message.get("content", "")).splitlines() or [""]
            lines.append(f"[{message.get('role')}] {body[0]}")
            lines.extend(body[1:])
    lines.append("")
    lines.extend(f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(settings.items()))
    return lines


def template_diff(left: list[str], right: list[str]) -> list[DiffLine]:
    """Return the lines of two texts aligned side by side, marking what changed."""
    rows: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            rows.extend(DiffLine("same", left[a0 + i], right[b0 + i]) for i in range(a1 - a0))
            continue
        width = max(a1 - a0, b1 - b0)
        for i in range(width):
            a = left[a0 + i] if a0 + i < a1 else None
            b = right[b0 + i] if b0 + i < b1 else None
            kind = (
                "changed"
                if a is not None and b is not None
                else "removed"
                if b is None
                else "added"
            )
            rows.append(DiffLine(kind, a or "", b or ""))
    return rows


@router.get("/p/{project}/evaluation")
def evaluation_page(
    request: Request, actor: Reader, project: CurrentProject, session: SessionDep
) -> HTMLResponse:
    """List the project's evaluation runs, with links to their traces; pick some to compare."""
    runs = [
        EvalRunPublic.of(r, session=session)
        for r in list_eval_runs(session=session, project_id=project.id)
    ]
    traced = count_run_traces(session=session, project_id=project.id, run_ids=[r.id for r in runs])
    return _render(
        request,
        "evaluations.html",
        actor,
        session,
        project=project,
        runs=runs,
        traced=traced,
        usd=usd,
    )


@router.get("/p/{project}/evaluation/compare")
def comparison_page(
    request: Request,
    actor: Reader,
    project: CurrentProject,
    session: SessionDep,
    runs: Annotated[list[str], Query(min_length=1, max_length=6)],
) -> HTMLResponse:
    """Show finished runs side by side: figures, the templates' diff, the records that differ."""
    ids = parse_run_ids(",".join(runs))
    # Oldest first, so the diff reads from the earlier candidate to the later one.
    started = {
        i: get_eval_run(session=session, project_id=project.id, run_id=i).created_at for i in ids
    }
    ids.sort(key=started.__getitem__)
    comparison = compare_runs(session=session, project_id=project.id, run_ids=ids)
    publics = [EvalRunPublic.of(r, session=session) for r in comparison.runs]
    texts = []
    for run in publics[:2]:
        prompt = get_prompt(
            session=session, project_id=project.id, name=run.prompt, version=run.prompt_version
        )
        settings = {**prompt.artifact.model_settings, **(run.overrides or {})}
        texts.append(template_lines(prompt.artifact.template, settings))
    figures: list[RunFigures] = comparison.figures
    return _render(
        request,
        "evaluation_compare.html",
        actor,
        session,
        project=project,
        runs=publics,
        figures=figures,
        scorers=comparison.scorers,
        differing=comparison.differing,
        diff=template_diff(texts[0], texts[1]),
        usd=usd,
    )
