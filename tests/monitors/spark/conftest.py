"""One local Spark session for the whole test session (local[2], UI off, bound to loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from monitors.spark_engine import spark_session, stop_spark


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    session = spark_session("local[2]")
    yield session
    stop_spark()
