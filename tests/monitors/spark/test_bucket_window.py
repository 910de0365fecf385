"""A window whose Parquet objects live in an S3 bucket (moto's server) is read by Spark's tasks.

Spark here has no S3 connector (no hadoop-aws jars, nothing fetched at run time): the object keys
are Spark's tasks, each reading its object with pyarrow's S3 client, and the summaries merged on
the driver equal the local engine's reading the same objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lineage.storage import ObjectStore, open_store, write_parquet
from monitors.baseline import Baseline
from monitors.drift.verdicts import compare
from monitors.drift.window import summarise_window
from monitors.engine import ObjectWindow, fold_locally
from monitors.fairness import FairnessConfig
from monitors.fairness.counts import fairness_fold
from monitors.fairness.metrics import fairness_from_counts
from monitors.quality import quality_fold
from monitors.spark_engine import spark_fold, spark_window_summaries
from tests.monitors.spark.same import same
from tests.s3 import create_bucket, moto_server

pytestmark = pytest.mark.slow


@pytest.fixture
def bucket(spark: Any, tmp_path: Path) -> Iterator[ObjectStore]:
    with moto_server() as endpoint:
        create_bucket(endpoint, "warden-windows")
        yield open_store("s3://warden-windows/prod", data_dir=tmp_path, endpoint_url=endpoint)


def test_a_window_in_a_bucket_is_read_by_spark_tasks(
    spark: Any,
    bucket: ObjectStore,
    adult_baseline: Baseline,
    holdout: pd.DataFrame,
    tmp_path: Path,
) -> None:
    """Drift, fairness and quality summaries of three objects: Spark's equal the local ones."""
    window = holdout.copy()
    window["hours_per_week"] = window["hours_per_week"] + 10  # a planted shift
    window["prediction"] = (window["education_num"] >= 13).astype(np.int64)
    keys = []
    for index, part in enumerate(np.array_split(np.arange(len(window)), 3)):
        key = f"inferences/batch-{index}.parquet"
        write_parquet(bucket, key, pa.Table.from_pandas(window.iloc[part], preserve_index=False))
        keys.append(key)
    objects = ObjectWindow(store=bucket, keys=tuple(keys))
    assert sorted(bucket.list("inferences/")) == keys

    columns = list(adult_baseline.columns)
    local = compare(adult_baseline, summarise_window(adult_baseline, window, columns))
    on_spark = compare(
        adult_baseline, spark_window_summaries(adult_baseline, objects, columns, session=spark)
    )
    same(local.to_dict(), on_spark.to_dict())
    assert "hours_per_week" in on_spark.drifted_columns

    config = FairnessConfig(sensitive_features=("sex", "race"), bootstrap_samples=100)
    fold = fairness_fold(config, prediction_column="prediction", label_column="income")
    here = fairness_from_counts(fold_locally(fold, objects), config=config)
    there = fairness_from_counts(spark_fold(fold, objects, session=spark), config=config)
    same(here.to_dict(), there.to_dict())
    assert here.rows == len(window)

    names = ["age", "sex", "hours_per_week"]
    quality = quality_fold(adult_baseline, names)
    same(
        fold_locally(quality, objects).to_dict(),
        spark_fold(quality, objects, session=spark).to_dict(),
    )
    assert not list(tmp_path.rglob("*.parquet"))  # nothing staged on local disk
