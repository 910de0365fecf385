"""Reference baselines on the real Adult data: types, counts, serialisation and merging."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lineage.errors import InvalidInput
from monitors.baseline import (
    RAW_LIMIT,
    Baseline,
    CategoricalSummary,
    NumericSummary,
    build_baseline,
    merge,
)
from monitors.baseline.column_summary import column_type
from tests.adult import CATEGORICAL, NUMERIC


def test_column_types_follow_evidently_inference(adult_baseline: Baseline) -> None:
    for name in NUMERIC:
        assert adult_baseline.columns[name].type == "numeric", name
    for name in CATEGORICAL:
        assert adult_baseline.columns[name].type == "categorical", name
    assert adult_baseline.columns["income"].type == "categorical"
    assert column_type(pd.Series([1, 2, 3] * 5)) == "categorical"
    assert column_type(pd.Series(range(11))) == "numeric"
    assert column_type(pd.Series([0.5, 1.5])) == "numeric"
    assert column_type(pd.Series([True, False])) == "categorical"


def test_numeric_summary_counts_and_moments(adult_baseline: Baseline, train: pd.DataFrame) -> None:
    for name in NUMERIC:
        summary = adult_baseline.columns[name]
        assert isinstance(summary, NumericSummary)
        values = train[name].dropna().to_numpy(np.float64)
        assert summary.count == values.size
        assert summary.bin_counts.sum() + summary.atom_counts.sum() == values.size
        assert summary.mean == pytest.approx(values.mean())
        assert summary.std == pytest.approx(np.std(values))
        assert (summary.minimum, summary.maximum) == (values.min(), values.max())
        points = np.quantile(values, [0.1, 0.5, 0.9])
        exact = np.searchsorted(np.sort(values), points, side="right")
        assert summary.cumulative(points) == pytest.approx(exact, rel=0.01)
        assert summary.values is None


def test_heavy_values_are_exact_atoms(adult_baseline: Baseline, train: pd.DataFrame) -> None:
    summary = adult_baseline.columns["capital_gain"]
    assert isinstance(summary, NumericSummary)
    zeros = int((train["capital_gain"] == 0).sum())
    assert summary.atom_counts[np.searchsorted(summary.atoms, 0.0)] == zeros
    education = adult_baseline.columns["education_num"]
    assert isinstance(education, NumericSummary)
    counts = train["education_num"].value_counts()
    assert education.frequencies() == {
        float(key): int(count) for key, count in zip(counts.index, counts, strict=True)
    }


def test_categorical_summary_counts_and_missing(
    adult_baseline: Baseline, train: pd.DataFrame
) -> None:
    summary = adult_baseline.columns["workclass"]
    assert isinstance(summary, CategoricalSummary)
    assert summary.frequencies == train["workclass"].value_counts().to_dict()
    assert summary.missing == int(train["workclass"].isna().sum()) > 0
    assert summary.missing_share == pytest.approx(train["workclass"].isna().mean())


def test_small_references_keep_raw_values(train: pd.DataFrame) -> None:
    baseline = build_baseline(train.head(RAW_LIMIT))
    age = baseline.columns["age"]
    assert isinstance(age, NumericSummary)
    assert age.values is not None
    assert list(age.values) == sorted(train["age"].head(RAW_LIMIT).astype(float))


def test_json_round_trip_keeps_everything(train: pd.DataFrame) -> None:
    baseline = build_baseline(
        train.head(3000), sample_size=50, extras={"performance": {"metrics": {"accuracy": 0.9}}}
    )
    again = Baseline.from_json(baseline.to_json())
    assert again.to_dict() == baseline.to_dict()
    assert again.extras == {"performance": {"metrics": {"accuracy": 0.9}}}
    assert again.sample is not None
    assert baseline.sample is not None
    pd.testing.assert_frame_equal(again.sample, baseline.sample)


def test_from_json_refuses_other_documents() -> None:
    with pytest.raises(InvalidInput, match="not a Warden baseline"):
        Baseline.from_json('{"rows": 1}')


def test_merging_halves_matches_the_whole(adult_baseline: Baseline, train: pd.DataFrame) -> None:
    merged = merge(build_baseline(train.iloc[:16000]), build_baseline(train.iloc[16000:]))
    assert merged.rows == adult_baseline.rows
    for name, whole in adult_baseline.columns.items():
        part = merged.columns[name]
        if isinstance(whole, NumericSummary):
            assert isinstance(part, NumericSummary)
            assert part.count == whole.count
            assert part.mean == pytest.approx(whole.mean)
            assert part.std == pytest.approx(whole.std)
            assert part.bin_counts.sum() + part.atom_counts.sum() == whole.count
            points = np.quantile(train[name].dropna(), [0.25, 0.5, 0.75])
            assert part.cumulative(points) == pytest.approx(whole.cumulative(points), rel=0.01)
        else:
            assert isinstance(part, CategoricalSummary)
            assert part.frequencies == whole.frequencies
            assert part.missing == whole.missing


def test_merging_different_columns_is_refused(train: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="different columns"):
        merge(build_baseline(train[["age"]]), build_baseline(train[["sex"]]))


def test_forcing_an_unknown_column_is_refused(train: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="'salary' is not in the reference"):
        build_baseline(train.head(10), categorical=["salary"])


def test_an_unknown_baseline_column_names_the_known_ones(adult_baseline: Baseline) -> None:
    with pytest.raises(InvalidInput, match="'salary' is not in the baseline") as error:
        adult_baseline.column("salary")
    assert error.value.field == "columns"
