"""SHAP values on the real Adult model: importance and local explanations checked against shap."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
import shap
from pydantic import ValidationError
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lineage.errors import InvalidInput
from monitors.explanations import (
    ExplanationConfig,
    Importance,
    explain_one,
    global_importance,
)
from tests.adult import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    TARGET,
    adult_model,
    adult_test,
    adult_train,
)

SAMPLE = ExplanationConfig(sample_size=2000)


@cache
def training_importance() -> Importance:
    """The reference importance, as a baseline would store it (training rows)."""
    return global_importance(model=adult_model(), frame=adult_train()[FEATURES], config=SAMPLE)


@cache
def linear_model() -> Pipeline:
    """A non-tree model on one-hot columns, which TreeSHAP cannot explain."""
    train = adult_train().sample(4000, random_state=0)
    encode = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ("numeric", StandardScaler(), NUMERIC),
        ]
    )
    model = Pipeline([("encode", encode), ("classify", LogisticRegression(max_iter=1000))])
    return model.fit(train[FEATURES], train[TARGET])


def test_importance_equals_mean_abs_shap_computed_directly() -> None:
    model = adult_model()
    rows = adult_test()[FEATURES].iloc[:1500]
    importance = global_importance(model=model, frame=rows, config=SAMPLE)

    encoded = model[:-1].transform(rows)
    values = shap.TreeExplainer(model[-1]).shap_values(encoded)
    names = model[:-1].get_feature_names_out()
    expected = dict(zip(names, np.abs(values).mean(axis=0), strict=True))

    assert importance.method == "tree"
    assert importance.rows == 1500
    assert set(importance.values) == set(FEATURES)
    for name in FEATURES:
        assert importance.values[name] == pytest.approx(expected[name], rel=1e-9)
    assert list(importance.values.values()) == sorted(importance.values.values(), reverse=True)


def test_importance_samples_large_windows_with_a_seed() -> None:
    rows = adult_test()[FEATURES]
    config = ExplanationConfig(sample_size=500, seed=3)
    first = global_importance(model=adult_model(), frame=rows, config=config)
    again = global_importance(model=adult_model(), frame=rows, config=config)
    assert first.rows == 500
    assert first == again


def test_local_explanation_adds_up_to_the_model_margin_and_matches_shap() -> None:
    model = adult_model()
    row = adult_test()[FEATURES].iloc[[7]]
    explained = explain_one(model, {str(k): v for k, v in row.iloc[0].items()})

    margin = model.decision_function(row)[0]
    assert explained.method == "tree"
    assert explained.output == pytest.approx(margin, abs=1e-9)
    assert explained.base_value + sum(explained.contributions.values()) == pytest.approx(margin)
    direct = shap.TreeExplainer(model[-1]).shap_values(model[:-1].transform(row))[0]
    names = list(model[:-1].get_feature_names_out())
    for name in FEATURES:
        assert explained.contributions[name] == pytest.approx(direct[names.index(name)])
    assert explained.to_dict()["contributions"] == explained.contributions


def test_importance_round_trips_through_baseline_extras() -> None:
    importance = training_importance()
    assert Importance.from_dict(importance.to_dict()) == importance


@pytest.mark.slow
def test_non_tree_model_falls_back_to_the_permutation_explainer() -> None:
    model = linear_model()
    train, test = adult_train()[FEATURES], adult_test()[FEATURES]
    row = test.iloc[[11]]
    explained = explain_one(model, row, background=train.iloc[:50])

    assert explained.method == "permutation"
    assert set(explained.contributions) == set(FEATURES)
    margin = model.decision_function(row)[0]
    assert explained.base_value + sum(explained.contributions.values()) == pytest.approx(margin)
    expected_base = model.decision_function(train.iloc[:50]).mean()
    assert explained.base_value == pytest.approx(expected_base)

    config = ExplanationConfig(max_agnostic_rows=10, background_size=30, permutations=1)
    importance = global_importance(model=model, frame=test.iloc[:500], config=config)
    assert importance.method == "permutation"
    assert importance.rows == 10
    assert set(importance.values) == set(FEATURES)


def test_non_tree_model_without_background_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a tree model") as error:
        explain_one(linear_model(), adult_test()[FEATURES].iloc[[0]])
    assert error.value.field == "background"


def test_missing_columns_and_several_rows_are_refused() -> None:
    rows = adult_test()[FEATURES]
    with pytest.raises(InvalidInput, match=r"columns \['age'\] that the data lacks"):
        global_importance(model=adult_model(), frame=rows.drop(columns="age"))
    with pytest.raises(InvalidInput, match="explains one row, got 2"):
        explain_one(adult_model(), rows.iloc[:2])
    with pytest.raises(InvalidInput, match="no rows to explain"):
        global_importance(model=adult_model(), frame=rows.iloc[:0])
    with pytest.raises(ValidationError, match="less than or equal to 100"):
        ExplanationConfig(background_size=500)


def test_multiclass_models_explain_the_predicted_class() -> None:
    train = adult_train().sample(3000, random_state=1)
    model = Pipeline(
        [
            ("encode", ColumnTransformer([("numeric", "passthrough", NUMERIC)])),
            ("classify", RandomForestClassifier(n_estimators=5, max_depth=5, random_state=0)),
        ]
    )
    classes = pd.cut(train["age"], [0, 30, 50, 120], labels=False)
    model.fit(train[NUMERIC], classes)
    row = adult_test()[NUMERIC].iloc[[0]]
    explained = explain_one(model, row)
    probabilities = model.predict_proba(row)[0]
    assert explained.output_class == int(np.argmax(probabilities))
    assert explained.output == pytest.approx(probabilities[explained.output_class])
    assert set(explained.contributions) == set(NUMERIC)
