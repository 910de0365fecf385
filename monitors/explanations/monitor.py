"""The explanations monitor kind: attribution drift judged by NDCG and share shifts.

The window's importance is compared with the reference importance stored in the baseline's
``"explanations"`` extras; NDCG below ``min_attribution_ndcg`` alerts, a feature whose share of
importance moves more than ``max_share_shift`` warns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from lineage.errors import InvalidInput
from monitors.explanations.config import THRESHOLD_KEYS, ExplanationConfig, config_from_spec
from monitors.explanations.shap_explainer import Importance, global_importance, ranked
from monitors.findings import Finding, Status
from monitors.kinds import Chart, KindResult, MonitorContext, register_kind
from monitors.spec import Kind, MonitorSpec

__all__ = [
    "attribution_ndcg",
    "explanation_charts",
    "explanation_findings",
    "logged_importance",
    "reference_importance",
    "run_explanations",
]

MONITOR = Kind.EXPLANATIONS.value


def attribution_ndcg(
    *,
    reference: Mapping[str, float],
    current: Mapping[str, float],
    top_k: int | None = None,
) -> float:
    """Return the NDCG of the window's feature ranking against the reference importance.

    Rank features by ``current`` (ties by name); the gain at rank ``i`` (from 1) is the
    feature's ``reference`` importance (0 if the reference lacks it), discounted by
    ``log2(i + 1)``; divide by the same sum for the reference's own ranking. Only the top
    ``top_k`` ranks count (all by default). NDCG is 1 for an identical ranking and 1 when the
    reference carries no importance at all (nothing to lose).
    """
    gains = {name: max(float(value), 0.0) for name, value in reference.items()}
    names = set(gains) | set(current)
    ranked = sorted(names, key=lambda n: (-float(current.get(n, 0.0)), n))
    ideal = sorted(names, key=lambda n: (-gains.get(n, 0.0), n))
    k = len(names) if top_k is None else min(top_k, len(names))

    def dcg(order: list[str]) -> float:
        return sum(gains.get(n, 0.0) / math.log2(i + 2) for i, n in enumerate(order[:k]))

    best = dcg(ideal)
    return 1.0 if best <= 0 else dcg(ranked) / best


def explanation_findings(
    current: Importance,
    *,
    reference: Importance | None,
    config: ExplanationConfig | None = None,
) -> list[Finding]:
    """Judge a window's importance against the reference.

    Returns:
        ``attribution_ndcg`` on scope ``dataset`` (``alert`` below ``min_attribution_ndcg``,
        ``insufficient`` without a reference), then ``attribution_share_shift`` per feature on
        scope ``feature:<name>`` (window share minus reference share; ``warn`` beyond
        ``max_share_shift``; without a reference it reports the share, unjudged).
    """
    config = config or ExplanationConfig()
    findings: list[Finding] = []
    ranks = {name: i + 1 for i, name in enumerate(current.values)}
    if reference is None:
        findings.append(
            Finding(
                monitor=MONITOR,
                metric="attribution_ndcg",
                scope="dataset",
                value=None,
                threshold=config.min_attribution_ndcg,
                status=Status.INSUFFICIENT,
                detail={
                    "reason": "the baseline has no reference importance; rebuild it with "
                    "the explanations section",
                    "rows": current.rows,
                    "method": current.method,
                },
            )
        )
        for name, share in current.shares().items():
            findings.append(
                Finding(
                    monitor=MONITOR,
                    metric="attribution_share",
                    scope=f"feature:{name}",
                    value=share,
                    threshold=None,
                    status=Status.OK,
                    detail={"mean_abs_shap": current.values[name], "rank": ranks[name]},
                )
            )
        return findings
    ndcg = attribution_ndcg(
        reference=reference.values, current=current.values, top_k=config.ndcg_top_k
    )
    findings.append(
        Finding(
            monitor=MONITOR,
            metric="attribution_ndcg",
            scope="dataset",
            value=ndcg,
            threshold=config.min_attribution_ndcg,
            status=Status.OK if ndcg >= config.min_attribution_ndcg else Status.ALERT,
            detail={
                "top_k": config.ndcg_top_k,
                "rows": current.rows,
                "method": current.method,
                "reference_rows": reference.rows,
                "reference_top": list(reference.values)[:5],
                "current_top": list(current.values)[:5],
            },
        )
    )
    now, before = current.shares(), reference.shares()
    reference_ranks = {name: i + 1 for i, name in enumerate(reference.values)}
    for name in ranked({**{n: 0.0 for n in before}, **current.values}):
        shift = now.get(name, 0.0) - before.get(name, 0.0)
        findings.append(
            Finding(
                monitor=MONITOR,
                metric="attribution_share_shift",
                scope=f"feature:{name}",
                value=shift,
                threshold=config.max_share_shift,
                status=Status.WARN if abs(shift) > config.max_share_shift else Status.OK,
                detail={
                    "share": now.get(name, 0.0),
                    "reference_share": before.get(name, 0.0),
                    "mean_abs_shap": current.values.get(name, 0.0),
                    "reference_mean_abs_shap": reference.values.get(name, 0.0),
                    "rank": ranks.get(name),
                    "reference_rank": reference_ranks.get(name),
                },
            )
        )
    return findings


def explanation_charts(current: Importance, reference: Importance | None) -> list[Chart]:
    """Return the importance bars of the window and, with a reference, the shares side by side."""
    charts = [
        Chart(
            title=f"Feature importance, mean |SHAP| over {current.rows} rows ({current.method})",
            kind="bars",
            data={"labels": list(current.values), "values": list(current.values.values())},
        )
    ]
    if reference is not None:
        now, before = current.shares(), reference.shares()
        names = list(dict.fromkeys([*reference.values, *current.values]))
        charts.append(
            Chart(
                title="Share of total importance: reference (training) vs window",
                kind="distribution",
                data={
                    "labels": names,
                    "reference": [before.get(n, 0.0) for n in names],
                    "current": [now.get(n, 0.0) for n in names],
                },
            )
        )
    return charts


def reference_importance(
    frame: pd.DataFrame, *, model: Any, spec: MonitorSpec | None = None
) -> dict[str, Any]:
    """Return the ``baseline.extras["explanations"]`` section: importance on reference rows.

    Computed once when the baseline is built (typically on the training data), with the same
    sample sizes as the monitor's spec, so runs compare like with like.
    """
    config = config_from_spec(spec) if spec is not None else ExplanationConfig()
    return global_importance(model=model, frame=frame, config=config).to_dict()


def logged_importance(frame: pd.DataFrame, features: list[str]) -> Importance | None:
    """Return mean |attribution| per feature over rows that logged attributions, else ``None``.

    A serving app that computes SHAP values itself sends them with each record, so Warden need
    not load the model: the same global importance, from the app's own numbers.
    """
    import json

    if "attributions" not in frame.columns:
        return None
    logged = [json.loads(text) for text in frame["attributions"] if isinstance(text, str)]
    if not logged:
        return None
    names = features or sorted({name for row in logged for name in row})
    totals = {name: sum(abs(float(row.get(name, 0.0))) for row in logged) for name in names}
    return Importance(
        values=ranked({name: total / len(logged) for name, total in totals.items()}),
        rows=len(logged),
        method="logged",
        base_value=0.0,
    )


@register_kind(Kind.EXPLANATIONS)
def run_explanations(spec: MonitorSpec, context: MonitorContext) -> KindResult:
    """Run explanations: the window's importance and its drift from the reference importance.

    Reads the attributions the records logged when they carry them (no model needed), else
    needs ``context.model``; reads the model's input columns (``context.feature_names``, else
    the model's ``feature_names_in_``, else ``spec.columns``) and the reference from
    ``baseline.extras["explanations"]`` (built by :func:`reference_importance`). Thresholds and
    options as in :func:`config_from_spec`. Heavy: run it in the worker, never in a request.
    """
    config = config_from_spec(spec)
    model = context.model
    logged = None
    if "attributions" in context.window_columns():
        logged = logged_importance(
            context.frame(["attributions"]), list(context.feature_names or [])
        )
    if logged is not None:
        return _explained(logged, context, config)
    if model is None:
        raise InvalidInput(
            "explanations needs the model under watch; run it where the registered model "
            "version is loaded (the worker)",
            field="model",
        )
    available = context.window_columns()
    features = (
        context.feature_names
        or [str(c) for c in getattr(model, "feature_names_in_", [])]
        or spec.columns
        or available
    )
    missing = [name for name in features if name not in available]
    if missing:
        raise InvalidInput(
            f"the window lacks the model's input columns {missing}; log every feature",
            field="columns",
        )
    frame = context.frame(list(features))
    context.report_progress(0.1, f"explaining {min(len(frame), config.sample_size)} rows")
    current = global_importance(model=model, frame=frame, config=config)
    return _explained(current, context, config)


def _explained(
    current: Importance, context: MonitorContext, config: ExplanationConfig
) -> KindResult:
    context.report_progress(0.9, "comparing with the reference importance")
    stored = context.baseline.extras.get("explanations")
    reference = Importance.from_dict(stored) if stored else None
    findings = explanation_findings(current, reference=reference, config=config)
    ndcg = next(f for f in findings if f.metric == "attribution_ndcg")
    return KindResult(
        findings=findings,
        report={
            "importance": current.to_dict(),
            "reference": None if reference is None else reference.to_dict(),
            "attribution_ndcg": ndcg.value,
            "thresholds": {key: getattr(config, name) for key, name in THRESHOLD_KEYS.items()},
            "ndcg": "rank by window importance; gain = reference importance; "
            "DCG = sum gain_i / log2(i + 1) over the top k; NDCG = DCG / ideal DCG",
        },
        charts=explanation_charts(current, reference),
    )
