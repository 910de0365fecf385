from __future__ import annotations

from sklearn.metrics import accuracy_score

from tests.adult import FEATURES, TARGET, adult_model, adult_test, adult_train


def test_shipped_adult_data_has_the_documented_rows() -> None:
    assert len(adult_train()) == 32_561
    assert len(adult_test()) == 16_281
    assert set(adult_train()[TARGET].unique()) == {0, 1}


def test_adult_model_predicts_well_above_the_base_rate() -> None:
    test = adult_test()
    accuracy = accuracy_score(test[TARGET], adult_model().predict(test[FEATURES]))
    base_rate = 1 - test[TARGET].mean()
    assert accuracy > base_rate + 0.08
