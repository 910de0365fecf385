"""The ``text_descriptors`` kind: what the questions and answers of an LLM deployment look like.

Per model call, offline (nothing is downloaded: ``langid`` bundles its model, ``vaderSentiment``
its lexicon; this is the one module importing either, on first use):

* lengths of question and answer (characters; words of the answer), an **empty answer** flag;
* **refusal**: the answer contains a phrase of the list shipped in ``refusal_phrases.txt`` (or
  ``options.refusal_phrases``), case-insensitive, curly apostrophes read as straight ones;
* **PII**: the span's redaction counts (part 1's detectors ran at ingest, so the stored text
  holds ``[EMAIL]`` where an address was; a call with any redaction counts);
* **JSON validity** of the answer (judged only with ``options.structured_output: true``);
* **language** of the answer (``langid``, on a seeded sample of :data:`LANGUAGE_SAMPLE` calls:
  it takes 10-25 ms a text here; ``options.languages`` narrows its choice, which short texts need)
  and **sentiment** of question and answer (VADER's compound score, -1 … 1).

Rates (refusal, empty answer, PII, invalid JSON) are judged against ceilings named in
``thresholds``, for the deployment and per prompt version. The numeric descriptors and the
answer language are drift-tested against the monitor's reference window with the drift engine
(:func:`monitors.drift.verdicts.compute_drift`): a ``warn`` per drifted descriptor and an
``alert`` when the share of drifted descriptors reaches ``drift_share`` (default 0.5).
Calls whose content is not kept (retention purged it) count for nothing here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd

from lineage.errors import InvalidInput
from monitors.baseline import build_baseline
from monitors.drift.verdicts import compute_drift
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, MonitorContext, register_kind
from monitors.spec import Kind, MonitorSpec

__all__ = [
    "DRIFT_COLUMNS",
    "LANGUAGE_SAMPLE",
    "RATES",
    "default_refusal_phrases",
    "describe_calls",
    "is_refusal",
    "json_valid",
    "run_text_descriptors",
]

RATES = ("refusal_rate", "empty_answer_rate", "pii_rate", "json_invalid_rate")
"""The rate metrics, each a share of the model calls whose content is kept."""
DRIFT_COLUMNS = (
    "question_length",
    "answer_length",
    "answer_words",
    "question_sentiment",
    "answer_sentiment",
    "answer_language",
)
"""The descriptors drift-tested against the reference window."""
LANGUAGE_SAMPLE = 400
"""Calls per window whose answer language is identified (a seeded sample)."""
_THRESHOLDS = frozenset({*RATES, "drift_share"})
_OPTIONS = frozenset({"refusal_phrases", "languages", "structured_output"})
_SPACE = re.compile(r"\s+")
_MONITOR = Kind.TEXT_DESCRIPTORS.value


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text.replace("\u2019", "'").replace("\u2018", "'")).lower()


@cache
def default_refusal_phrases() -> tuple[str, ...]:
    """Return the shipped refusal phrases (``monitors/llm/refusal_phrases.txt``)."""
    text = files("monitors.llm").joinpath("refusal_phrases.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return tuple(_normalise(line) for line in lines if line and not line.startswith("#"))


def is_refusal(answer: str, phrases: Iterable[str]) -> bool:
    """Say whether ``answer`` contains one of ``phrases`` (already normalised)."""
    text = _normalise(answer)
    return any(phrase in text for phrase in phrases)


def json_valid(answer: str) -> bool:
    """Say whether ``answer`` is one JSON document (code fences around it are allowed)."""
    text = answer.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return bool(text)


@cache
def _language_model(languages: tuple[str, ...]) -> Any:
    from langid.langid import LanguageIdentifier, model

    identifier = LanguageIdentifier.from_modelstring(model, norm_probs=False)
    if languages:
        try:
            identifier.set_languages(list(languages))
        except ValueError as error:
            raise InvalidInput(
                f"options.languages: {error}; use ISO 639-1 codes langid knows, e.g. ['en', 'de']",
                field="options.languages",
            ) from error
    return identifier


@cache
def _sentiment_model() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _language(text: str | None, languages: tuple[str, ...]) -> str | None:
    if text is None or not text.strip():
        return None
    return str(_language_model(languages).classify(text)[0])


def _sentiment(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    return float(_sentiment_model().polarity_scores(text)["compound"])


def describe_calls(
    calls: pd.DataFrame,
    *,
    phrases: Sequence[str] | None = None,
    languages: Sequence[str] = (),
    language_sample: int = LANGUAGE_SAMPLE,
) -> pd.DataFrame:
    """Return one row of descriptors per model call whose content is kept.

    Columns: ``prompt_version`` (``name@version``), the :data:`DRIFT_COLUMNS`, ``empty``,
    ``refusal``, ``pii``, ``json_valid``. The answer language is identified on a seeded sample
    of ``language_sample`` calls (``None`` for the others): langid takes 10-25 ms a text.
    """
    wanted = tuple(_normalise(p) for p in phrases) if phrases else default_refusal_phrases()
    chosen = tuple(sorted(languages))
    model = calls[(calls["type"] == "model") & calls["answer"].notna()]
    rng = np.random.default_rng(0)
    identified = set(range(len(model)))
    if len(model) > language_sample:
        identified = {int(i) for i in rng.choice(len(model), language_sample, replace=False)}
    rows = []
    for index, call in enumerate(model.to_dict("records")):
        answer = str(call["answer"])
        question = None if call["question"] is None else str(call["question"])
        version = call["prompt_version"]
        rows.append(
            {
                "prompt_version": "unversioned"
                if version is None or pd.isna(version)
                else f"{call['prompt_name']}@{version}",
                "question_length": None if question is None else float(len(question)),
                "answer_length": float(len(answer)),
                "answer_words": float(len(answer.split())),
                "question_sentiment": _sentiment(question),
                "answer_sentiment": _sentiment(answer),
                "answer_language": (_language(answer, chosen) or "none")
                if index in identified
                else None,
                "empty": not answer.strip(),
                "refusal": is_refusal(answer, wanted),
                "pii": int(call["pii_count"]) > 0,
                "json_valid": json_valid(answer),
            }
        )
    frame = pd.DataFrame(
        rows, columns=["prompt_version", *DRIFT_COLUMNS, "empty", "refusal", "pii", "json_valid"]
    )
    for name in (
        "question_length",
        "answer_length",
        "answer_words",
        "question_sentiment",
        "answer_sentiment",
    ):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


def _rates(described: pd.DataFrame) -> dict[str, float | None]:
    if described.empty:
        return dict.fromkeys(RATES)
    return {
        "refusal_rate": float(described["refusal"].mean()),
        "empty_answer_rate": float(described["empty"].mean()),
        "pii_rate": float(described["pii"].mean()),
        "json_invalid_rate": float(1.0 - described["json_valid"].mean()),
    }


def _options(spec: MonitorSpec) -> tuple[list[str] | None, list[str], bool]:
    unknown = sorted(set(spec.options) - _OPTIONS - {"reference_start", "reference_end"})
    if unknown:
        raise InvalidInput(
            f"unknown options {unknown} for text_descriptors; use {sorted(_OPTIONS)}",
            field="options",
        )
    bad = sorted(set(spec.thresholds) - _THRESHOLDS)
    if bad:
        raise InvalidInput(
            f"unknown thresholds {bad} for text_descriptors; use {sorted(_THRESHOLDS)}",
            field="thresholds",
        )
    phrases = spec.options.get("refusal_phrases")
    if phrases is not None and (
        not isinstance(phrases, list)
        or not phrases
        or not all(isinstance(p, str) and p.strip() for p in phrases)
    ):
        raise InvalidInput(
            "options.refusal_phrases must be a non-empty list of phrases",
            field="options.refusal_phrases",
        )
    languages = spec.options.get("languages") or []
    if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
        raise InvalidInput(
            "options.languages must be a list of ISO 639-1 codes", field="options.languages"
        )
    return phrases, languages, bool(spec.options.get("structured_output", False))


def _rate_findings(
    rates: dict[str, float | None],
    counts: dict[str, int],
    reference: dict[str, float | None] | None,
    spec: MonitorSpec,
    scope: str,
    names: Iterable[str],
) -> list[Finding]:
    findings = []
    for metric in names:
        value, threshold = rates[metric], spec.thresholds.get(metric)
        if value is None:
            status = Status.INSUFFICIENT
        elif threshold is not None and value > threshold:
            status = Status.ALERT
        else:
            status = Status.OK
        detail: dict[str, Any] = {"calls": counts["calls"]}
        if reference is not None:
            detail["reference"] = reference[metric]
        findings.append(
            Finding(
                monitor=_MONITOR,
                metric=metric,
                scope=scope,
                value=value,
                threshold=threshold,
                status=status,
                detail=detail,
            )
        )
    return findings


def _drift(
    spec: MonitorSpec, current: pd.DataFrame, reference: pd.DataFrame | None
) -> tuple[list[Finding], dict[str, Any] | None, list[Chart]]:
    share = spec.thresholds.get("drift_share", 0.5)
    if reference is None or len(reference) < spec.min_rows:
        have = 0 if reference is None else len(reference)
        finding = Finding(
            monitor=_MONITOR,
            metric="descriptor_drift_share",
            scope="dataset",
            value=None,
            threshold=share,
            status=Status.INSUFFICIENT,
            detail={"reference_calls": have, "min_rows": spec.min_rows},
        )
        return [finding], None, []
    columns = [c for c in DRIFT_COLUMNS if reference[c].notna().any() and current[c].notna().any()]
    baseline = build_baseline(reference[columns], categorical=["answer_language"], sample_size=0)
    result = compute_drift(
        baseline,
        current[columns],
        columns=columns,
        methods=spec.methods,
        column_thresholds=spec.column_thresholds,
        fdr=spec.fdr,
        drift_share=share,
    )
    findings = []
    for column in result.columns:
        verdict = (
            Status.INSUFFICIENT
            if column.insufficient
            else Status.WARN
            if column.drifted
            else Status.OK
        )
        findings.append(
            Finding(
                monitor=_MONITOR,
                metric=column.metric,
                scope=f"column:{column.column}",
                value=column.value,
                threshold=column.threshold,
                status=verdict,
                detail={
                    k: v
                    for k, v in column.to_dict().items()
                    if k not in {"column", "value", "threshold", "distribution", "metric"}
                },
            )
        )
    judged = [column for column in result.columns if not column.insufficient]
    findings.append(
        Finding(
            monitor=_MONITOR,
            metric="descriptor_drift_share",
            scope="dataset",
            value=result.drift_share if judged else None,
            threshold=result.share_threshold,
            status=Status.INSUFFICIENT
            if not judged
            else Status.ALERT
            if result.dataset_drift
            else Status.OK,
            detail={"drifted_columns": result.drifted_columns, "reference_calls": len(reference)},
        )
    )
    charts = [
        Chart(
            title=f"{column.column}: reference vs current",
            kind="distribution",
            data=column.distribution,
        )
        for column in judged
        if column.distribution
    ]
    return findings, result.to_dict(), charts


@register_kind(Kind.TEXT_DESCRIPTORS)
def run_text_descriptors(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Describe the window's questions and answers, judge the rates and their drift.

    Thresholds: ``refusal_rate``, ``empty_answer_rate``, ``pii_rate``, ``json_invalid_rate``
    (ceilings) and ``drift_share``. Options: ``refusal_phrases``, ``languages``,
    ``structured_output``.
    """
    phrases, languages, structured = _options(spec)
    names = [m for m in RATES if structured or m != "json_invalid_rate"]
    context.report_progress(0.0, "describing the window's answers")
    current = describe_calls(context.frame(), phrases=phrases, languages=languages)
    reference = None
    if context.reference is not None:
        context.report_progress(0.4, "describing the reference window's answers")
        reference = describe_calls(context.reference, phrases=phrases, languages=languages)
    context.report_progress(0.7, "comparing descriptors with the reference window")
    rates = _rates(current)
    reference_rates = None if reference is None or reference.empty else _rates(reference)
    findings = _rate_findings(
        rates, {"calls": len(current)}, reference_rates, spec, "dataset", names
    )
    per_version: dict[str, dict[str, Any]] = {}
    for version, group in current.groupby("prompt_version", sort=True):
        version_rates = _rates(group)
        per_version[str(version)] = {"calls": len(group), **version_rates}
        judged = [m for m in names if m in spec.thresholds]
        findings.extend(
            _rate_findings(
                version_rates,
                {"calls": len(group)},
                None,
                spec,
                f"prompt_version:{version}",
                judged,
            )
        )
    drift_findings, drift_report, drift_charts = _drift(spec, current, reference)
    findings.extend(drift_findings)
    languages_now = (
        current["answer_language"].dropna().value_counts(normalize=True).round(4).to_dict()
    )
    report = {
        "calls": len(current),
        "reference_calls": None if reference is None else len(reference),
        "rates": rates,
        "reference_rates": reference_rates,
        "per_prompt_version": per_version,
        "answer_languages": {str(k): float(v) for k, v in languages_now.items()},
        "means": {
            name: None if current.empty else _finite(current[name].mean())
            for name in ("question_length", "answer_length", "answer_sentiment")
        },
        "drift": drift_report,
        "refusal_phrases": "custom" if phrases else "shipped",
    }
    charts = [
        Chart(
            title="Rates of the window (marks: ceilings)",
            kind="bars",
            data={
                "labels": names,
                "values": [rates[m] for m in names],
                "thresholds": [spec.thresholds.get(m, 1.0) for m in names],
                "flags": [
                    rates[m] is not None and rates[m] > spec.thresholds.get(m, 1.0)  # type: ignore[operator]
                    for m in names
                ],
            },
        ),
        *drift_charts,
    ]
    context.report_progress(1.0, "descriptors judged")
    return KindResult(findings=findings, report=report, charts=charts)


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if number == number else None
