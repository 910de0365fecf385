"""Drift statistics on the real Adult data, each checked against scipy computed right here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from monitors.baseline import Baseline
from monitors.drift import benjamini_hochberg, choose_method, compute_drift
from monitors.spec import DriftMethod
from tests.adult import CATEGORICAL, NUMERIC


def _finite(values: pd.Series) -> np.ndarray:
    return values.dropna().to_numpy(np.float64)


def _evidently_shares(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Category shares over the union of values, as Evidently's get_binned_data builds them."""
    keys = sorted(set(reference.dropna()) | set(current.dropna()), key=str)
    ref_counts, cur_counts = reference.value_counts(), current.value_counts()
    ref = np.array([ref_counts.get(key, 0) for key in keys]) / len(reference.dropna())
    cur = np.array([cur_counts.get(key, 0) for key in keys]) / len(current.dropna())
    return ref, cur


def test_default_methods_follow_evidently_rules() -> None:
    assert choose_method("numeric", reference_rows=1000, distinct=None) is DriftMethod.KS
    assert choose_method("numeric", reference_rows=1000, distinct=4) is DriftMethod.CHI_SQUARE
    assert choose_method("numeric", reference_rows=1000, distinct=2) is DriftMethod.Z
    assert choose_method("categorical", reference_rows=10, distinct=7) is DriftMethod.CHI_SQUARE
    assert choose_method("categorical", reference_rows=10, distinct=2) is DriftMethod.Z
    assert choose_method("numeric", reference_rows=1001, distinct=None) is DriftMethod.WASSERSTEIN
    assert choose_method("numeric", reference_rows=1001, distinct=5) is DriftMethod.JENSEN_SHANNON
    assert choose_method("categorical", reference_rows=5000, distinct=2) is (
        DriftMethod.JENSEN_SHANNON
    )


def test_wasserstein_matches_scipy_on_adult(
    adult_baseline: Baseline, train: pd.DataFrame, holdout: pd.DataFrame
) -> None:
    """Cell counts (age, fnlwgt, capital gain and loss) or quantile bins: within 1 % of scipy."""
    result = compute_drift(adult_baseline, holdout)
    for name in NUMERIC:
        column = result.column(name)
        assert column.method is DriftMethod.WASSERSTEIN
        reference = _finite(train[name])
        exact = stats.wasserstein_distance(reference, _finite(holdout[name])) / np.std(reference)
        assert column.value == pytest.approx(exact, rel=0.01), name
        assert column.effect_size == column.value


def test_wasserstein_is_exact_in_bins_under_a_real_shift(
    adult_baseline: Baseline, train: pd.DataFrame, older_window: pd.DataFrame
) -> None:
    result = compute_drift(adult_baseline, older_window, columns=["age", "fnlwgt"])
    for name in ("age", "fnlwgt"):
        reference = _finite(train[name])
        exact = stats.wasserstein_distance(reference, _finite(older_window[name]))
        assert result.column(name).value == pytest.approx(exact / np.std(reference), rel=0.005)


def test_jensen_shannon_matches_scipy_on_adult(
    adult_baseline: Baseline, train: pd.DataFrame, older_window: pd.DataFrame
) -> None:
    result = compute_drift(adult_baseline, older_window)
    for name in CATEGORICAL:
        column = result.column(name)
        assert column.method is DriftMethod.JENSEN_SHANNON
        reference, current = _evidently_shares(train[name], older_window[name])
        assert column.value == pytest.approx(distance.jensenshannon(reference, current), rel=1e-9)


def test_ks_matches_scipy_for_small_references(
    small_baseline: Baseline, holdout: pd.DataFrame
) -> None:
    reference = small_baseline.sample
    assert reference is not None
    for rows in (3000, 16000):
        window = holdout.sample(rows, random_state=3)
        result = compute_drift(small_baseline, window, columns=["age", "fnlwgt"], fdr=None)
        for name in ("age", "fnlwgt"):
            column = result.column(name)
            expected = stats.ks_2samp(_finite(reference[name]), _finite(window[name]))
            assert column.method is DriftMethod.KS
            assert column.p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)
            assert column.effect_size == pytest.approx(expected.statistic, rel=1e-9)
            assert not column.approximate


def test_chi_square_and_z_match_scipy_for_small_references(
    small_baseline: Baseline, holdout: pd.DataFrame
) -> None:
    reference = small_baseline.sample
    assert reference is not None
    window = holdout.sample(2000, random_state=4)
    result = compute_drift(small_baseline, window, columns=["race", "sex"], fdr=None)
    race = result.column("race")
    assert race.method is DriftMethod.CHI_SQUARE
    ref_shares, cur_shares = _evidently_shares(reference["race"], window["race"])
    observed = cur_shares * len(window["race"].dropna())
    expected = ref_shares * observed.sum()
    assert race.p_value == pytest.approx(stats.chisquare(observed, expected).pvalue, rel=1e-9)
    table = np.vstack([ref_shares * len(reference["race"].dropna()), observed])
    chi2 = stats.chi2_contingency(table, correction=False).statistic
    assert race.effect_size == pytest.approx(np.sqrt(chi2 / table.sum()), rel=1e-9)
    sex = result.column("sex")
    assert sex.method is DriftMethod.Z
    p_ref = (reference["sex"] == "Male").mean()
    p_cur = (window["sex"] == "Male").mean()
    n_ref, n_cur = len(reference), len(window)
    pooled = (p_ref * n_ref + p_cur * n_cur) / (n_ref + n_cur)
    z = (p_ref - p_cur) / np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    assert sex.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


def test_benjamini_hochberg_matches_scipy() -> None:
    p_values = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    expected = stats.false_discovery_control(p_values, method="bh")
    assert benjamini_hochberg(p_values) == pytest.approx(list(expected), rel=1e-12)


def test_ks_on_a_large_reference_is_binned_and_close_to_scipy(
    adult_baseline: Baseline, train: pd.DataFrame, random_window: pd.DataFrame
) -> None:
    result = compute_drift(
        adult_baseline, random_window, columns=["fnlwgt"], methods={"fnlwgt": DriftMethod.KS}
    )
    column = result.column("fnlwgt")
    expected = stats.ks_2samp(_finite(train["fnlwgt"]), _finite(random_window["fnlwgt"]))
    assert column.approximate
    assert column.effect_size == pytest.approx(expected.statistic, abs=0.002)
    assert column.p_value == pytest.approx(expected.pvalue, abs=0.05)
