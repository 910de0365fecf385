"""Fairness configuration: what a spec may ask, and what is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitors.fairness import (
    FairnessConfig,
    config_from_spec,
)
from monitors.spec import MonitorSpec
from tests.adult import TARGET


def spec(**fields: object) -> MonitorSpec:
    return MonitorSpec.model_validate(
        {
            "kind": "fairness",
            "sensitive_features": ["sex", "race"],
            "prediction_column": "prediction",
            "label_column": TARGET,
            **fields,
        }
    )


def test_config_refuses_one_feature_intersections_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="two or more distinct features"):
        FairnessConfig(sensitive_features=("sex",), intersections=(("sex",),))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FairnessConfig.model_validate({"sensitive_features": ["sex"], "min_size": 3})
    assert FairnessConfig(sensitive_features=("sex",)).scopes() == [("sex",)]


def test_spec_options_and_thresholds_reach_the_config() -> None:
    config = config_from_spec(
        spec(
            thresholds={"demographic_parity_difference": 0.2, "group_shift": 0.05},
            options={"min_group_size": 50, "intersections": [["race", "sex"]], "seed": 4},
        )
    )
    assert config.max_demographic_parity_difference == 0.2
    assert config.max_group_shift == 0.05
    assert config.min_group_size == 50
    assert config.seed == 4
    assert config.scopes() == [("sex",), ("race",), ("race", "sex")]
