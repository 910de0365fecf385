"""The ``embedding_drift`` kind: has the meaning of the questions (or answers) moved?

Samples up to ``options.sample`` (default 500) texts per side from the window and the reference
window, embeds them offline (:mod:`monitors.embeddings`, all-MiniLM-L6-v2 run by numpy) and
judges each field (``options.fields``, default ``["question", "answer"]``) with the three views
of :mod:`monitors.embedding_drift`: the domain classifier's ROC AUC, the MMD permutation p-value
and the topic mix (clusters of the reference, shares now vs then, named by the reference text
nearest each centre). Findings carry the scope ``field:<name>``; a field with fewer than
``options.min_samples`` (default 20) texts on a side is ``insufficient``.
Options: ``sample``, ``fields``, ``alpha`` (0.01), ``permutations`` (200), ``clusters`` (8),
``min_samples``, ``seed`` (0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lineage.errors import InvalidInput
from monitors.embedding_drift import MONITOR, EmbeddingDriftResult, compute_embedding_drift
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, MonitorContext, register_kind
from monitors.spec import Kind, MonitorSpec

__all__ = ["FIELDS", "run_embedding_drift"]

FIELDS = ("question", "answer")
_OPTIONS = frozenset(
    {
        "sample",
        "fields",
        "alpha",
        "permutations",
        "clusters",
        "min_samples",
        "seed",
        "reference_start",
        "reference_end",
    }
)
_LABEL = 48


def _texts(calls: pd.DataFrame | None, field: str, sample: int, seed: int) -> list[str]:
    if calls is None or calls.empty:
        return []
    model = calls[calls["type"] == "model"][field].dropna().astype(str)
    texts = [text for text in model if text.strip()]
    if len(texts) > sample:
        chosen = np.random.default_rng(seed).choice(len(texts), sample, replace=False)
        texts = [texts[int(i)] for i in sorted(chosen)]
    return texts


def _int_option(spec: MonitorSpec, name: str, default: int, low: int, high: int) -> int:
    value = spec.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"options.{name} must be a whole number from {low} to {high}", field=f"options.{name}"
        )
    return value


def _fields(spec: MonitorSpec) -> list[str]:
    fields = spec.options.get("fields", list(FIELDS))
    if not isinstance(fields, list) or not fields or not set(fields) <= set(FIELDS):
        raise InvalidInput(
            f"options.fields must be a non-empty list of {list(FIELDS)}", field="options.fields"
        )
    return [str(f) for f in fields]


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _LABEL else line[: _LABEL - 1] + "…"


def _charts(field: str, result: EmbeddingDriftResult) -> list[Chart]:
    charts = []
    if result.domain is not None:
        charts.append(
            Chart(
                title=f"{field}s: telling current from reference (ROC AUC; 0.5 = cannot)",
                kind="bars",
                data={
                    "labels": ["domain classifier AUC"],
                    "values": [result.domain.auc],
                    "threshold": result.domain.threshold,
                    "flags": [result.domain.drifted],
                },
            )
        )
    if result.topics is not None:
        charts.append(
            Chart(
                title=f"{field}s: topic mix, shares of the reference's clusters",
                kind="distribution",
                data={
                    "labels": [_short(label) for label in result.topics.labels],
                    "reference": result.topics.reference_shares,
                    "current": result.topics.current_shares,
                },
            )
        )
    return charts


@register_kind(Kind.EMBEDDING_DRIFT)
def run_embedding_drift(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Embed samples of the window and the reference window; judge each field's three views."""
    from monitors.embeddings import embed_texts

    unknown = sorted(set(spec.options) - _OPTIONS)
    if unknown or spec.thresholds:
        raise InvalidInput(
            f"unknown options {unknown or sorted(spec.thresholds)} for embedding_drift; "
            f"use options {sorted(_OPTIONS)} (no thresholds: alpha sets the level)",
            field="options" if unknown else "thresholds",
        )
    sample = _int_option(spec, "sample", 500, 20, 5000)
    permutations = _int_option(spec, "permutations", 200, 1, 2000)
    clusters = _int_option(spec, "clusters", 8, 2, 50)
    min_samples = _int_option(spec, "min_samples", 20, 10, 5000)
    seed = _int_option(spec, "seed", 0, 0, 2**31 - 1)
    alpha = spec.options.get("alpha", 0.01)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        raise InvalidInput("options.alpha must be between 0 and 0.5", field="options.alpha")
    fields = _fields(spec)
    findings: list[Finding] = []
    report: dict[str, Any] = {"sample": sample, "fields": {}}
    charts: list[Chart] = []
    for index, field in enumerate(fields):
        current = _texts(context.frame(), field, sample, seed)
        reference = _texts(context.reference, field, sample, seed)
        step = index / len(fields)
        if min(len(current), len(reference)) < min_samples:
            findings.extend(
                Finding(
                    monitor=MONITOR,
                    metric=metric,
                    scope=f"field:{field}",
                    value=None,
                    threshold=None,
                    status=Status.INSUFFICIENT,
                    detail={
                        "n_reference": len(reference),
                        "n_current": len(current),
                        "min_samples": min_samples,
                    },
                )
                for metric in ("domain_classifier_auc", "mmd_p_value", "topic_mix_p_value")
            )
            report["fields"][field] = {"n_reference": len(reference), "n_current": len(current)}
            continue
        context.report_progress(step, f"embedding {len(reference) + len(current)} {field}s")
        vectors = embed_texts([*reference, *current])
        context.report_progress(step + 0.8 / len(fields), f"judging {field} drift")
        result = compute_embedding_drift(
            vectors[: len(reference)],
            vectors[len(reference) :],
            alpha=float(alpha),
            permutations=permutations,
            clusters=clusters,
            min_samples=min_samples,
            seed=seed,
            reference_texts=reference,
        )
        findings.extend(result.findings(scope=f"field:{field}"))
        report["fields"][field] = result.to_dict()
        charts.extend(_charts(field, result))
    context.report_progress(1.0, "embedding drift judged")
    return KindResult(findings=findings, report=report, charts=charts)
