"""Our drift verdicts against Evidently 0.7's own, on real Adult samples, and its rendered page."""

from __future__ import annotations

import pandas as pd
import pytest

from lineage.errors import InvalidInput
from monitors.baseline import build_baseline
from monitors.drift import compute_drift
from monitors.evidently_report import evidently_verdicts, render_drift_html

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("reference_rows", [800, 2000])
@pytest.mark.parametrize("shifted", [False, True])
def test_verdicts_and_statistics_agree_with_evidently(
    train: pd.DataFrame, holdout: pd.DataFrame, reference_rows: int, shifted: bool
) -> None:
    reference = train.sample(reference_rows, random_state=7).reset_index(drop=True)
    pool = holdout[holdout["age"] > 45] if shifted else holdout
    window = pool.sample(1500, random_state=8).reset_index(drop=True)
    ours = compute_drift(build_baseline(reference, sample_size=0), window, fdr=None)
    theirs = evidently_verdicts(reference, window)
    assert set(theirs) == {column.column for column in ours.columns}
    for column in ours.columns:
        verdict = theirs[column.column]
        assert column.method is verdict.method, column.column
        assert column.drifted == verdict.drifted, column.column
        assert column.value == pytest.approx(verdict.value, rel=0.02, abs=1e-9), column.column
    assert ("age" in ours.drifted_columns) == shifted


def test_the_drift_page_renders_on_samples(train: pd.DataFrame, holdout: pd.DataFrame) -> None:
    baseline = build_baseline(train, sample_size=500)
    html = render_drift_html(baseline, holdout, columns=["age", "sex"], sample_rows=300)
    assert "<html" in html.lower()
    assert "age" in html


def test_the_drift_page_needs_a_reference_sample(train: pd.DataFrame) -> None:
    baseline = build_baseline(train.head(100), sample_size=0)
    with pytest.raises(InvalidInput, match="keeps no reference sample"):
        render_drift_html(baseline, train.head(100))
