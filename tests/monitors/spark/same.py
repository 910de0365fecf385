"""What "the same findings" means between engines: statuses equal, numbers within 1e-9."""

from __future__ import annotations

import math
from typing import Any

from monitors.findings import Finding

__all__ = ["same", "same_findings"]


def same(local: Any, spark: Any) -> None:
    """Assert two JSON-like values are equal, floats within 1e-9 relative (NaN equals NaN)."""
    if isinstance(local, float) and isinstance(spark, float):
        assert math.isclose(local, spark, rel_tol=1e-9, abs_tol=1e-12) or (
            math.isnan(local) and math.isnan(spark)
        )
    elif isinstance(local, dict):
        assert local.keys() == spark.keys()
        for key in local:
            same(local[key], spark[key])
    elif isinstance(local, list):
        assert len(local) == len(spark)
        for left, right in zip(local, spark, strict=True):
            same(left, right)
    else:
        assert local == spark


def same_findings(local: list[Finding], spark: list[Finding]) -> None:
    """Assert identical verdicts in the same order, and the same values, limits and details."""
    assert [(f.scope, f.metric, f.status) for f in local] == [
        (f.scope, f.metric, f.status) for f in spark
    ]
    for left, right in zip(local, spark, strict=True):
        same(left.value, right.value)
        same(left.threshold, right.threshold)
        same(left.detail, right.detail)
