"""The UCI Adult data shipped in ``data/adult`` and a real model trained on it, for tests.

The column lists and the model are the product's own (``api.demo.adult``: what the demo trains);
this module only caches them per test session. The reader keeps the file's integer dtypes, as a
user's raw frame would have them, where the training step converts numerics to floats.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
from sklearn.pipeline import Pipeline

from api.demo.adult import CATEGORICAL, COLUMNS, FEATURES, NUMERIC, TARGET, build_model

__all__ = [
    "CATEGORICAL",
    "DATA",
    "FEATURES",
    "NUMERIC",
    "TARGET",
    "adult_model",
    "adult_test",
    "adult_train",
]

DATA = Path(__file__).resolve().parents[1] / "data" / "adult"


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
    """Return the product's income classifier trained on the training rows."""
    model = build_model()
    train = adult_train()
    model.fit(train[FEATURES], train[TARGET])
    return model
