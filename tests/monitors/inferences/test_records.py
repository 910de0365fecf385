"""Inference records: what a record may hold, and uploaded tables turned into records."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from lineage.errors import InvalidInput
from monitors.inferences import (
    InferenceRecord,
    records_from_frame,
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
