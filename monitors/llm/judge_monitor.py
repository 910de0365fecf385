"""The ``llm_judge`` kind: an LLM judge grades a sample of a deployment's new traced calls.

Options (``spec.options``):

* ``judge`` — an :class:`~monitors.scoring.judges.LlmJudgeSpec` (``type: llm_judge``, the judge's
  ``endpoint`` with a credential *reference* such as ``env:JUDGE_KEY``, ``criteria``,
  ``threshold``);
* ``sample_rate`` (0.1) — the share of the window's calls graded, chosen by a hash of trace and
  span id, so a re-run grades the same calls and two monitors with one rate agree;
* ``max_calls`` (50) — at most this many per run (the oldest sampled first);
* ``filter`` — ``prompt_version`` (``name@version``) and/or ``status`` (``ok``/``error``) a
  call must have to be sampled.

Each graded call becomes an assessment attached to its trace (:mod:`monitors.llm.assessments`,
written by the runner); the run's findings are the ``pass_rate`` and ``mean_score`` of the
graded calls (floors in ``thresholds``: below them, ``alert``) and ``judge_errors`` (calls the
judge could not grade: endpoint down, no score), per deployment and prompt version. The judge is
called through ``context.chat``, which the worker binds to the project's outbound guard (a
loopback or metadata address is refused unless an admin allow-listed it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pandas as pd
from pydantic import ValidationError

from lineage.errors import InvalidInput
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, MonitorContext, register_kind
from monitors.scoring.judges import Judge, LlmJudgeSpec
from monitors.scoring.scores import ScoreStatus, ScoringCase
from monitors.spec import Kind, MonitorSpec

__all__ = ["run_llm_judge", "sampled"]

_OPTIONS = frozenset(
    {"judge", "sample_rate", "max_calls", "filter", "reference_start", "reference_end"}
)
_THRESHOLDS = frozenset({"pass_rate", "mean_score"})
_MONITOR = Kind.LLM_JUDGE.value


def sampled(trace_id: str, span_id: str, rate: float) -> bool:
    """Say whether a call falls in a ``rate`` sample (a stable hash, not a random draw)."""
    digest = hashlib.sha256(f"{trace_id}:{span_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _judge_spec(spec: MonitorSpec) -> LlmJudgeSpec:
    raw = spec.options.get("judge")
    if not isinstance(raw, dict):
        raise InvalidInput(
            "options.judge must be an llm_judge scorer: {type: llm_judge, endpoint: {base_url, "
            "model, credential: env:NAME}, criteria, threshold}",
            field="options.judge",
        )
    try:
        return LlmJudgeSpec.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(
            f"options.judge.{where}: {first['msg']}", field=f"options.judge.{where}"
        ) from None


def _options(spec: MonitorSpec) -> tuple[LlmJudgeSpec, float, int, dict[str, str]]:
    unknown = sorted(set(spec.options) - _OPTIONS)
    if unknown:
        raise InvalidInput(
            f"unknown options {unknown} for llm_judge; use {sorted(_OPTIONS)}", field="options"
        )
    bad = sorted(set(spec.thresholds) - _THRESHOLDS)
    if bad:
        raise InvalidInput(
            f"unknown thresholds {bad} for llm_judge; use {sorted(_THRESHOLDS)}",
            field="thresholds",
        )
    rate = spec.options.get("sample_rate", 0.1)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise InvalidInput("options.sample_rate must be in (0, 1]", field="options.sample_rate")
    limit = spec.options.get("max_calls", 50)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidInput("options.max_calls must be 1 to 1000", field="options.max_calls")
    wanted = spec.options.get("filter") or {}
    if not isinstance(wanted, dict) or not set(wanted) <= {"prompt_version", "status"}:
        raise InvalidInput(
            "options.filter may hold prompt_version and status", field="options.filter"
        )
    return _judge_spec(spec), float(rate), limit, {k: str(v) for k, v in wanted.items()}


def _version(row: Any) -> str:
    version = row["prompt_version"]
    if version is None or pd.isna(version):
        return "unversioned"
    return f"{row['prompt_name']}@{version}"


def _findings(
    rows: list[dict[str, Any]], spec: MonitorSpec, scope: str, sampled_calls: int
) -> list[Finding]:
    scored = [r for r in rows if r["status"] == ScoreStatus.SCORED]
    errors = [r for r in rows if r["status"] == ScoreStatus.ERROR]
    values = {
        "pass_rate": sum(bool(r["passed"]) for r in scored) / len(scored) if scored else None,
        "mean_score": sum(float(r["value"]) for r in scored) / len(scored) if scored else None,
    }
    findings = []
    for metric, value in values.items():
        floor = spec.thresholds.get(metric)
        if value is None:
            status = Status.INSUFFICIENT
        else:
            status = Status.ALERT if floor is not None and value < floor else Status.OK
        findings.append(
            Finding(
                monitor=_MONITOR,
                metric=metric,
                scope=scope,
                value=value,
                threshold=floor,
                status=status,
                detail={"graded": len(scored), "sampled": sampled_calls},
            )
        )
    findings.append(
        Finding(
            monitor=_MONITOR,
            metric="judge_errors",
            scope=scope,
            value=float(len(errors)),
            threshold=None,
            status=Status.WARN if errors else Status.OK,
            detail={"errors": [r["rationale"] for r in errors[:3]]},
        )
    )
    return findings


@register_kind(Kind.LLM_JUDGE)
def run_llm_judge(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Grade a sample of the window's model calls with the judge; findings and assessments."""
    judge_spec, rate, limit, wanted = _options(spec)
    send: Callable[..., Any] | None = context.chat
    if send is None:
        raise InvalidInput(
            "an llm_judge monitor runs only in a worker, which calls the judge through the "
            "project's outbound guard",
            field="kind",
        )
    calls = context.frame()
    model = calls[(calls["type"] == "model") & calls["answer"].notna()].copy()
    model["version"] = [_version(row) for row in model.to_dict("records")]
    if "prompt_version" in wanted:
        model = model[model["version"] == wanted["prompt_version"]]
    if "status" in wanted:
        model = model[model["status"] == wanted["status"]]
    chosen = [
        row
        for row in model.sort_values("start_at").to_dict("records")
        if sampled(str(row["trace_id"]), str(row["span_id"]), rate)
    ][:limit]
    judge = Judge(spec=judge_spec, send=send)
    graded: list[dict[str, Any]] = []
    for index, row in enumerate(chosen):
        context.report_progress(index / max(len(chosen), 1), f"judging call {index + 1}")
        question = row["question"]
        score = judge.score(
            ScoringCase(
                response=str(row["answer"]),
                inputs={"question": "" if question is None else str(question)},
            )
        )
        graded.append(
            {
                "trace_id": row["trace_id"],
                "span_id": row["span_id"],
                "name": judge_spec.name,
                "version": row["version"],
                "status": score.status.value,
                "value": score.value,
                "passed": score.passed,
                "rationale": str(score.detail.get("rationale", score.reason)),
                "detail": {
                    k: v for k, v in score.detail.items() if k != "rationale" and v is not None
                },
            }
        )
    findings = _findings(graded, spec, "dataset", len(chosen))
    for version in sorted({r["version"] for r in graded}):
        rows = [r for r in graded if r["version"] == version]
        findings.extend(_findings(rows, spec, f"prompt_version:{version}", len(rows)))
    scored = [r for r in graded if r["status"] == ScoreStatus.SCORED]
    charts = []
    if scored:
        charts.append(
            Chart(
                title=f"Judge {judge_spec.name!r}: pass rate per prompt version",
                kind="bars",
                data={
                    "labels": sorted({r["version"] for r in scored}),
                    "values": [
                        sum(bool(r["passed"]) for r in scored if r["version"] == v)
                        / sum(1 for r in scored if r["version"] == v)
                        for v in sorted({r["version"] for r in scored})
                    ],
                    "threshold": spec.thresholds.get("pass_rate"),
                },
            )
        )
    report = {
        "judge": {
            "name": judge_spec.name,
            "model": judge_spec.endpoint.model,
            "criteria": judge_spec.criteria,
            "threshold": judge_spec.threshold,
        },
        "eligible_calls": len(model),
        "sample_rate": rate,
        "sampled_calls": len(chosen),
        "assessments": graded,
    }
    return KindResult(findings=findings, report=report, charts=charts)
