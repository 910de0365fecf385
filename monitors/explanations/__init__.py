"""Explanations: SHAP importance, attribution drift, and local explanations (shap's one home).

Global importance of a window, its drift against the training baseline, and the explanation of
one inference. ``shap_explainer`` is the only module that imports shap, lazily, inside the
functions.

Which explainer:
    Models are scikit-learn Pipelines (encoding steps, then a tree model) or bare estimators.
    TreeSHAP cannot read string categoricals, so the final estimator is explained on the
    *transformed* features (``pipeline[:-1].transform``) with ``shap.TreeExplainer`` in its
    default ``tree_path_dependent`` mode: exact, needs no background data, and explains the
    model's margin (log-odds for a gradient-boosted classifier), so base value + contributions =
    the model's ``decision_function``. When the final estimator is not a tree model, a
    model-agnostic ``PermutationExplainer`` explains the *whole* model on its input features
    (categoricals travel through shap's masker as codes), against at most ``background_size``
    background rows and on at most ``max_agnostic_rows`` rows: it is orders of magnitude slower
    and compiles numba code on first use, so it belongs in the worker. The result says which
    method ran.

Back to feature names:
    Each transformed column is mapped to the input feature it came from (its own name; or the
    name without a ``transformer__`` prefix; or the longest input name it starts with followed
    by ``_``, as one-hot columns are named) and SHAP values of columns from one input feature are
    summed, which keeps additivity. A model whose columns cannot be traced is explained by the
    model-agnostic fallback, which works on the input features directly.

Importance and its drift:
    Global importance is the mean absolute SHAP value per input feature over a seeded sample of
    the window (at most ``sample_size`` rows). The reference importance is computed once on the
    training data and stored in the baseline's extras under ``"explanations"``. Attribution drift
    is judged by NDCG, as Amazon SageMaker Clarify defines it and Azure ML uses it: rank the
    features by their importance in the window; the gain of the feature at rank ``i`` is its
    importance in the *reference*; ``DCG = sum_i gain_i / log2(i + 1)`` over the top ``k``
    (every feature by default) and ``NDCG = DCG / IDCG``, where IDCG ranks by the reference
    itself. NDCG is 1 when the window ranks the features as the reference did and falls when
    features that mattered drop in rank; both services flag values below 0.9. Beside it, each
    feature's share of total importance is compared with its reference share.

Where each part lives: ``config`` (what a spec asks), ``shap_explainer`` (SHAP values: importance
and one inference's contributions), ``monitor`` (the kind: NDCG, findings, charts).
"""

from typing import TYPE_CHECKING

from lineage.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from monitors.explanations.config import THRESHOLD_KEYS, ExplanationConfig, config_from_spec
    from monitors.explanations.monitor import (
        attribution_ndcg,
        explanation_charts,
        explanation_findings,
        reference_importance,
        run_explanations,
    )
    from monitors.explanations.shap_explainer import (
        Contributions,
        Importance,
        explain_one,
        global_importance,
    )
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "monitors.explanations.config": (
                "THRESHOLD_KEYS",
                "ExplanationConfig",
                "config_from_spec",
            ),
            "monitors.explanations.monitor": (
                "attribution_ndcg",
                "explanation_charts",
                "explanation_findings",
                "reference_importance",
                "run_explanations",
            ),
            "monitors.explanations.shap_explainer": (
                "Contributions",
                "Importance",
                "explain_one",
                "global_importance",
            ),
        },
    )

__all__ = [
    "THRESHOLD_KEYS",
    "Contributions",
    "ExplanationConfig",
    "Importance",
    "attribution_ndcg",
    "config_from_spec",
    "explain_one",
    "explanation_charts",
    "explanation_findings",
    "global_importance",
    "reference_importance",
    "run_explanations",
]
