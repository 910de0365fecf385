"""Window summaries: a Parquet window streams in batches to the same verdicts as a DataFrame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitors.baseline import Baseline, build_baseline
from monitors.baseline.grid import BLOCK, COMPILED_MIN
from monitors.drift import compute_drift, summarise_window
from monitors.drift.window import FEW_CODES, count_codes


def test_a_parquet_window_streams_to_the_same_result(
    adult_baseline: Baseline, older_window: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "window.parquet"
    window = older_window.astype({"sex": "category", "race": "category"})
    window.loc[window.index[:40], "race"] = np.nan
    window.to_parquet(path, index=False)
    in_memory = compute_drift(adult_baseline, window)
    progress: list[float] = []
    streamed = compute_drift(
        adult_baseline, path, batch_rows=700, progress=lambda share, _: progress.append(share)
    )
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    for left, right in zip(in_memory.columns, streamed.columns, strict=True):
        assert left.value == pytest.approx(right.value, rel=1e-9), left.column
        assert left.drifted == right.drifted
        assert left.current_rows == right.current_rows, left.column
    assert streamed.column("race").current_rows == len(window) - 40


def test_categorical_codes_count_as_the_values_do_across_blocks() -> None:
    """Codes counted block by block (missing first) give the object column's counts."""
    rng = np.random.default_rng(3)
    rows = BLOCK + 4_321
    reference = pd.DataFrame({"c": pd.Categorical(rng.choice(list("abcdef"), rows))})
    window = reference.copy()
    window.loc[window.index[rng.random(rows) < 0.01], "c"] = np.nan
    baseline = build_baseline(reference)
    coded = summarise_window(baseline, window, ["c"])["c"]
    plain = summarise_window(baseline, window.astype({"c": object}), ["c"])["c"]
    assert coded.frequencies == plain.frequencies
    assert coded.missing == plain.missing == int(window["c"].isna().sum()) > 0


@pytest.mark.parametrize(
    ("size", "rows"),
    [(1, BLOCK + 999), (FEW_CODES - 1, BLOCK + 999), (FEW_CODES, BLOCK + 999),
     (120, BLOCK + 999), (40, COMPILED_MIN + 3)],
)  # fmt: skip
def test_codes_count_exactly_by_comparisons_or_by_bincount(size: int, rows: int) -> None:
    """Few codes (compared), many (widened for bincount) and a large array (the compiled loop)
    count as ``bincount`` does."""
    codes = np.random.default_rng(size).integers(-1, size, rows).astype(np.int8)
    assert count_codes(codes, size).tolist() == np.bincount(codes + 1, minlength=size + 1).tolist()
