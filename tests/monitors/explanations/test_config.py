"""Explanations configuration: spec thresholds and options reach the config."""

from __future__ import annotations

from monitors.explanations import (
    config_from_spec,
)
from monitors.spec import MonitorSpec


def test_spec_thresholds_and_options_reach_the_config() -> None:
    spec = MonitorSpec.model_validate(
        {
            "kind": "explanations",
            "thresholds": {"attribution_ndcg": 0.95, "attribution_share_shift": 0.2},
            "options": {"ndcg_top_k": 5, "seed": 2},
        }
    )
    config = config_from_spec(spec)
    assert config.min_attribution_ndcg == 0.95
    assert config.max_share_shift == 0.2
    assert config.ndcg_top_k == 5
    assert config.seed == 2
