"""Inference records: what a record may hold, and uploaded tables turned into records."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from lineage.errors import InvalidInput
from monitors.inferences import (
    InferenceRecord,
    records_from_frame,
    refuse_non_finite,
)
from tests.adult import FEATURES, adult_test


@pytest.fixture
def rows() -> pd.DataFrame:
    return adult_test().iloc[:50]


@pytest.mark.parametrize("time", ["0638-05-30T02:23:21+22:11", "9999-12-31T00:00:00Z"])
def test_a_time_parquet_cannot_hold_is_refused(time: str) -> None:
    with pytest.raises(ValidationError, match="between 1678 and 2262"):
        InferenceRecord.model_validate({"request_id": "r", "time": time, "features": {}})


def test_an_uploaded_table_becomes_records(rows: pd.DataFrame) -> None:
    table = rows[FEATURES].assign(request_id=[f"u{i}" for i in range(len(rows))], prediction=1)
    parsed = records_from_frame(table)
    assert len(parsed) == len(rows)
    assert parsed[0].request_id == "u0"
    assert parsed[0].features["age"] == int(rows.iloc[0]["age"])
    assert parsed[0].prediction == 1
    with pytest.raises(InvalidInput, match="request_id"):
        records_from_frame(rows[FEATURES])


def test_non_finite_numbers_from_a_client_are_refused_naming_the_field() -> None:
    fine = InferenceRecord(request_id="a", features={"age": 30.0}, score=0.5)
    refuse_non_finite([fine])
    for record, field in [
        (InferenceRecord(request_id="b", features={"age": math.nan}), "records.1.features.age"),
        (InferenceRecord(request_id="b", features={}, score=math.inf), "records.1.score"),
        (
            InferenceRecord(request_id="b", features={}, probabilities={"1": -math.inf}),
            "records.1.probabilities.1",
        ),
    ]:
        with pytest.raises(InvalidInput, match="send a finite number, or null") as error:
            refuse_non_finite([fine, record])
        assert error.value.field == field
