"""Complete a baseline's reference sections from its sample, when a run needs them.

Reference sections a kind needs but the stored baseline lacks (fairness group metrics from the
reference's logged predictions, SHAP importance with the model) are computed at run time from
the baseline's reference sample: that is why baselines can be built in a request without ever
loading a model. Both ways of judging a window (read, :mod:`monitors.execute`; in place,
:mod:`monitors.in_place`) complete the reference here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from monitors.baseline import Baseline
from monitors.spec import Kind, MonitorSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["complete_reference"]


def _model_inputs(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    return frame[features]


def complete_reference(
    spec: MonitorSpec, baseline: Baseline, model: Any, features: list[str]
) -> Baseline:
    """Compute reference sections the baseline lacks, from its sample (with the model)."""
    sample = baseline.sample
    extras = dict(baseline.extras)
    if sample is None or not len(sample):
        return baseline
    has_features = all(name in sample.columns for name in features)
    if spec.kind == Kind.EXPLANATIONS and "explanations" not in extras and model is not None:
        from monitors.explanations import reference_importance

        if has_features:
            extras["explanations"] = reference_importance(
                _model_inputs(sample, features), model=model, spec=spec
            )
    if spec.kind == Kind.FAIRNESS and "fairness" not in extras:
        from monitors.fairness import reference_fairness

        reference = sample
        if "prediction" not in sample.columns and model is not None and has_features:
            reference = sample.assign(prediction=model.predict(_model_inputs(sample, features)))
        wanted = set(spec.sensitive_features)
        if "prediction" in reference.columns and wanted <= set(reference.columns):
            labelled = spec.label_column is not None and spec.label_column in reference.columns
            extras["fairness"] = reference_fairness(
                reference,
                spec=spec.model_copy(
                    update={
                        "prediction_column": "prediction",
                        "label_column": spec.label_column if labelled else None,
                    }
                ),
            )
    return replace(baseline, extras=extras)
