"""NannyML 0.13 as the oracle of performance estimation: run quietly, results per chunk.

NannyML is a test dependency only (the ``dev`` extra); it is imported here and nowhere in
Warden. Its usage telemetry is switched off before the import, LightGBM's log is silenced, and
its warnings (deprecations of its own dependencies) are kept out of the warnings-as-errors run.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import pandas as pd

os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

CLASSIFICATION = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def cbpe(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    *,
    y_true: str,
    y_pred: str,
    y_pred_proba: str | dict[str, str],
    chunk_size: int,
) -> pd.DataFrame:
    """Return NannyML's CBPE estimates of the analysis chunks (value, sampling error, realised)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import nannyml

        estimator = nannyml.CBPE(
            y_pred_proba=y_pred_proba,
            y_pred=y_pred,
            y_true=y_true,
            problem_type="classification_binary"
            if isinstance(y_pred_proba, str)
            else "classification_multiclass",
            metrics=CLASSIFICATION,
            chunk_size=chunk_size,
        )
        estimator.fit(reference)
        result: Any = estimator.estimate(analysis)
        frame: pd.DataFrame = result.filter(period="analysis").to_df()
    return frame


def dle(
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    *,
    features: list[str],
    y_true: str,
    y_pred: str,
    chunk_size: int,
) -> pd.DataFrame:
    """Return NannyML's DLE estimates of MAE and RMSE per analysis chunk."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import nannyml

        estimator = nannyml.DLE(
            feature_column_names=features,
            y_pred=y_pred,
            y_true=y_true,
            metrics=["mae", "rmse"],
            chunk_size=chunk_size,
            hyperparameters={"verbosity": -1, "n_jobs": 1},
        )
        estimator.fit(reference)
        result: Any = estimator.estimate(analysis)
        frame: pd.DataFrame = result.filter(period="analysis").to_df()
    return frame


def shipped(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return one of the data sets NannyML ships: reference, and analysis with its targets."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import nannyml

        reference, analysis, targets = getattr(nannyml, f"load_{name}")()
    return reference, analysis.merge(targets, on="id")
