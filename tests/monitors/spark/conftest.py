"""One local Spark session for the whole test session (local[2], UI off, bound to loopback).

Spark's Python workers get the environment the session started with, so the test bucket's
credentials (moto's, any will do) are set before it starts, unless real ones are set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from monitors.spark_engine import spark_session, stop_spark
from tests.s3 import ACCESS_KEY, SECRET_KEY


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ):
        os.environ.setdefault(name, value)
    session = spark_session("local[2]")
    yield session
    stop_spark()
