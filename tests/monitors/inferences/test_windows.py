"""Reading logged inferences back: a window keeps only the records inside it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from lineage.models import Deployment
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.inferences import (
    InferenceRecord,
    log_inferences,
    read_window,
)
from tests.adult import adult_test
from tests.monitors.serving import adult_deployment, records


@pytest.fixture
def deployment(engine: Engine) -> Deployment:
    return adult_deployment(engine)


@pytest.fixture
def rows() -> pd.DataFrame:
    return adult_test().iloc[:50]


def _log(
    engine: Engine, data_dir: Path, deployment: Deployment, batch: list[dict[str, Any]]
) -> Any:
    parsed = [InferenceRecord.model_validate(record) for record in batch]
    with session_scope(engine) as session:
        return log_inferences(
            session=session, data_dir=data_dir, deployment=deployment, records=parsed
        )


def test_the_window_keeps_only_records_inside_it(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    now = utcnow()
    _log(
        engine,
        tmp_path,
        deployment,
        records(rows.iloc[:5], prefix="old", time=now - timedelta(days=3)),
    )
    _log(
        engine,
        tmp_path,
        deployment,
        records(rows.iloc[:7], prefix="new", time=now - timedelta(hours=1)),
    )
    with session_scope(engine) as session:
        frame, batches = read_window(
            session=session,
            data_dir=tmp_path,
            deployment=deployment,
            start=now - timedelta(days=1),
            end=now,
        )
    assert sorted(frame["request_id"]) == sorted(f"new{i}" for i in range(7))
    assert len(batches) == 1
