"""Drift on the real Adult data, each statistic checked against scipy computed right here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from lineage.errors import InvalidInput
from monitors.baseline import Baseline, build_baseline
from monitors.drift import benjamini_hochberg, choose_method, compute_drift
from monitors.findings import Finding, Status
from monitors.kinds import MonitorContext, run_monitor
from monitors.spec import DriftMethod, Kind, MonitorSpec
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
    result = compute_drift(adult_baseline, holdout)
    for name in NUMERIC:
        column = result.column(name)
        assert column.method is DriftMethod.WASSERSTEIN
        reference = _finite(train[name])
        exact = stats.wasserstein_distance(reference, _finite(holdout[name])) / np.std(reference)
        assert column.value == pytest.approx(exact, rel=0.02), name
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


def test_a_real_population_shift_is_detected_and_a_random_window_is_not(
    adult_baseline: Baseline, older_window: pd.DataFrame, random_window: pd.DataFrame
) -> None:
    shifted = compute_drift(adult_baseline, older_window)
    assert {"age", "marital_status", "relationship"} <= set(shifted.drifted_columns)
    unshifted = compute_drift(adult_baseline, random_window)
    assert unshifted.drifted_columns == []
    assert not unshifted.dataset_drift


def test_dataset_drifts_when_half_the_columns_drift(adult_baseline: Baseline) -> None:
    older = compute_drift(
        adult_baseline,
        pd.DataFrame({"age": [70.0] * 200, "sex": ["Female"] * 200}),
        columns=["age", "sex"],
    )
    assert older.drifted_columns == ["age", "sex"]
    assert older.drift_share == 1.0
    assert older.dataset_drift


def test_benjamini_hochberg_matches_scipy() -> None:
    p_values = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    expected = stats.false_discovery_control(p_values, method="bh")
    assert benjamini_hochberg(p_values) == pytest.approx(list(expected), rel=1e-12)


def test_fdr_control_adjusts_p_values_across_columns(
    small_baseline: Baseline, holdout: pd.DataFrame
) -> None:
    window = holdout.sample(2000, random_state=5)
    raw = compute_drift(small_baseline, window, fdr=None)
    controlled = compute_drift(small_baseline, window, fdr=0.05)
    tested = [column for column in raw.columns if column.p_value is not None]
    adjusted = benjamini_hochberg([column.p_value or 0.0 for column in tested])
    for column, value in zip(tested, adjusted, strict=True):
        assert controlled.column(column.column).adjusted_p_value == pytest.approx(value)
        assert controlled.column(column.column).drifted == (value <= 0.05)


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


def test_method_overrides_apply_per_column(
    adult_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    result = compute_drift(
        adult_baseline,
        older_window,
        columns=["age", "sex"],
        methods={"age": DriftMethod.KS, "sex": DriftMethod.CHI_SQUARE},
        column_thresholds={"age": 0.01},
    )
    assert result.column("age").method is DriftMethod.KS
    assert result.column("age").threshold == 0.01
    assert result.column("sex").method is DriftMethod.CHI_SQUARE
    assert result.column("age").drifted


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


def test_a_numeric_method_on_a_categorical_column_is_refused(
    adult_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    with pytest.raises(InvalidInput, match="needs a numeric column") as error:
        compute_drift(
            adult_baseline, older_window, columns=["sex"], methods={"sex": DriftMethod.KS}
        )
    assert error.value.field == "methods.sex"


def test_an_unknown_column_is_refused(adult_baseline: Baseline, older_window: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="'salary' is not in the baseline"):
        compute_drift(adult_baseline, older_window, columns=["salary"])


def test_a_column_without_values_is_insufficient(adult_baseline: Baseline) -> None:
    window = pd.DataFrame({"age": [np.nan] * 500, "sex": ["Male"] * 500})
    result = compute_drift(adult_baseline, window, columns=["age", "sex"])
    assert result.column("age").insufficient
    assert not result.column("age").drifted
    assert result.drift_share == 1.0


def test_drift_kind_findings(adult_baseline: Baseline, older_window: pd.DataFrame) -> None:
    received: list[list[Finding]] = []

    def sink(findings: list[Finding]) -> None:
        received.append(findings)

    result = run_monitor(
        MonitorSpec(kind=Kind.DRIFT, thresholds={"drift_share": 0.3}),
        MonitorContext(window=older_window, baseline=adult_baseline),
        sink=sink,
    )
    assert received == [result.findings]
    dataset = next(finding for finding in result.findings if finding.scope == "dataset")
    assert dataset.metric == "drift_share"
    assert dataset.threshold == 0.3
    assert dataset.status is Status.ALERT
    age = next(finding for finding in result.findings if finding.scope == "column:age")
    assert age.metric == "wasserstein_distance"
    assert age.status is Status.WARN
    assert result.status is Status.ALERT


def test_a_small_window_is_insufficient_never_an_alert(adult_baseline: Baseline) -> None:
    window = pd.DataFrame({"age": [90.0] * 20})
    result = run_monitor(
        MonitorSpec(kind=Kind.DRIFT, min_rows=50),
        MonitorContext(window=window, baseline=adult_baseline),
    )
    assert result.status is Status.INSUFFICIENT
    assert [finding.status for finding in result.findings] == [Status.INSUFFICIENT]
    assert result.findings[0].detail == {"rows": 20, "min_rows": 50}


def test_unknown_drift_thresholds_are_refused(
    adult_baseline: Baseline, older_window: pd.DataFrame
) -> None:
    with pytest.raises(InvalidInput, match="unknown thresholds"):
        run_monitor(
            MonitorSpec(kind=Kind.DRIFT, thresholds={"share": 0.5}),
            MonitorContext(window=older_window, baseline=adult_baseline),
        )


def test_prediction_drift_alerts_on_a_shifted_score() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"score": rng.beta(2, 5, 5000)})
    baseline = build_baseline(reference)
    shifted = pd.DataFrame({"score": rng.beta(5, 2, 1000)})
    spec = MonitorSpec(kind=Kind.PREDICTION_DRIFT, score_column="score")
    result = run_monitor(spec, MonitorContext(window=shifted, baseline=baseline))
    assert result.status is Status.ALERT
    same = pd.DataFrame({"score": rng.beta(2, 5, 1000)})
    assert run_monitor(spec, MonitorContext(window=same, baseline=baseline)).status is Status.OK


def test_prediction_drift_needs_a_column(adult_baseline: Baseline) -> None:
    with pytest.raises(InvalidInput, match="prediction_column or score_column"):
        run_monitor(
            MonitorSpec(kind=Kind.PREDICTION_DRIFT, min_rows=1),
            MonitorContext(window=pd.DataFrame({"age": [1.0]}), baseline=adult_baseline),
        )
