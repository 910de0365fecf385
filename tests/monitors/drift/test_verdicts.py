"""Drift verdicts: per-column and dataset judgements, FDR control, overrides and refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lineage.errors import InvalidInput
from monitors.baseline import Baseline
from monitors.drift import benjamini_hochberg, compute_drift
from monitors.spec import DriftMethod


def test_a_real_population_shift_is_detected_and_a_random_window_is_not(
    adult_baseline: Baseline, older_window: pd.DataFrame, random_window: pd.DataFrame
) -> None:
    shifted = compute_drift(adult_baseline, older_window)
    assert {"age", "marital_status", "relationship"} <= set(shifted.drifted_columns)
    unshifted = compute_drift(adult_baseline, random_window)
    assert unshifted.drifted_columns == []
    assert not unshifted.dataset_drift


def test_dataset_drifts_when_half_the_columns_drift(adult_baseline: Baseline) -> None:
    older = compute_drift(
        adult_baseline,
        pd.DataFrame({"age": [70.0] * 200, "sex": ["Female"] * 200}),
        columns=["age", "sex"],
    )
    assert older.drifted_columns == ["age", "sex"]
    assert older.drift_share == 1.0
    assert older.dataset_drift


def test_fdr_control_adjusts_p_values_across_columns(
    small_baseline: Baseline, holdout: pd.DataFrame
) -> None:
    window = holdout.sample(2000, random_state=5)
    raw = compute_drift(small_baseline, window, fdr=None)
    controlled = compute_drift(small_baseline, window, fdr=0.05)
    tested = [column for column in raw.columns if column.p_value is not None]
    adjusted = benjamini_hochberg([column.p_value or 0.0 for column in tested])
    for column, value in zip(tested, adjusted, strict=True):
        assert controlled.column(column.column).adjusted_p_value == pytest.approx(value)
        assert controlled.column(column.column).drifted == (value <= 0.05)


def test_method_overrides_apply_per_column(
    adult_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    result = compute_drift(
        adult_baseline,
        older_window,
        columns=["age", "sex"],
        methods={"age": DriftMethod.KS, "sex": DriftMethod.CHI_SQUARE},
        column_thresholds={"age": 0.01},
    )
    assert result.column("age").method is DriftMethod.KS
    assert result.column("age").threshold == 0.01
    assert result.column("sex").method is DriftMethod.CHI_SQUARE
    assert result.column("age").drifted


def test_a_numeric_method_on_a_categorical_column_is_refused(
    adult_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    with pytest.raises(InvalidInput, match="needs a numeric column") as error:
        compute_drift(
            adult_baseline, older_window, columns=["sex"], methods={"sex": DriftMethod.KS}
        )
    assert error.value.field == "methods.sex"


def test_an_unknown_column_is_refused(adult_baseline: Baseline, older_window: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="'salary' is not in the baseline"):
        compute_drift(adult_baseline, older_window, columns=["salary"])


def test_a_column_without_values_is_insufficient(adult_baseline: Baseline) -> None:
    window = pd.DataFrame({"age": [np.nan] * 500, "sex": ["Male"] * 500})
    result = compute_drift(adult_baseline, window, columns=["age", "sex"])
    assert result.column("age").insufficient
    assert not result.column("age").drifted
    assert result.drift_share == 1.0
