"""Shared monitor fixtures: Adult baselines and windows, built once per session."""

from __future__ import annotations

import pandas as pd
import pytest

from monitors.baseline import Baseline, build_baseline
from tests.adult import adult_test, adult_train


@pytest.fixture(scope="session")
def train() -> pd.DataFrame:
    return adult_train()


@pytest.fixture(scope="session")
def holdout() -> pd.DataFrame:
    return adult_test()


@pytest.fixture(scope="session")
def adult_baseline(train: pd.DataFrame) -> Baseline:
    """The full training data as reference (32,561 rows: distance methods)."""
    return build_baseline(train)


@pytest.fixture(scope="session")
def small_baseline(train: pd.DataFrame) -> Baseline:
    """800 training rows as reference (p-value methods, as Evidently picks them)."""
    return build_baseline(train.sample(800, random_state=1))


@pytest.fixture(scope="session")
def older_window(holdout: pd.DataFrame) -> pd.DataFrame:
    """A real population shift: a window of people over 45 only."""
    return holdout[holdout["age"] > 45].sample(3000, random_state=0)


@pytest.fixture(scope="session")
def random_window(holdout: pd.DataFrame) -> pd.DataFrame:
    """An unshifted window: a random sample of the test rows."""
    return holdout.sample(3000, random_state=0)
