"""The UCI Adult data shipped in ``data/adult`` and a real model trained on it, for tests.

The model is what the demo trains too: an ``OrdinalEncoder`` for the categorical columns in front
of scikit-learn's ``HistGradientBoostingClassifier`` (TreeSHAP can explain the final tree model on
the encoded features).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

DATA = Path(__file__).resolve().parents[1] / "data" / "adult"
COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]  # fmt: skip
CATEGORICAL = [
    "workclass", "education", "marital_status", "occupation", "relationship", "race", "sex",
    "native_country",
]  # fmt: skip
NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "income"


def _read(name: str, *, skip: int) -> pd.DataFrame:
    frame = pd.read_csv(
        DATA / name, header=None, names=COLUMNS, sep=r",\s*", engine="python",
        na_values="?", skiprows=skip, compression="gzip",
    )  # fmt: skip
    frame[TARGET] = frame[TARGET].str.rstrip(".").eq(">50K").astype(int)
    return frame.dropna(subset=[TARGET]).reset_index(drop=True)


@cache
def adult_train() -> pd.DataFrame:
    """Return the 32,561 training rows; ``income`` is 1 for >50K."""
    return _read("adult.data.gz", skip=0)


@cache
def adult_test() -> pd.DataFrame:
    """Return the 16,281 test rows; ``income`` is 1 for >50K."""
    return _read("adult.test.gz", skip=1)


@cache
def adult_model() -> Pipeline:
    """Return an income classifier trained on the training rows (about 2 s on one core)."""
    encoder = ColumnTransformer(
        [("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                        encoded_missing_value=-1), CATEGORICAL)],
        remainder="passthrough", verbose_feature_names_out=False,
    )  # fmt: skip
    model = Pipeline(
        [("encode", encoder), ("classify", HistGradientBoostingClassifier(random_state=0))]
    )
    train = adult_train()
    model.fit(train[FEATURES], train[TARGET])
    return model
