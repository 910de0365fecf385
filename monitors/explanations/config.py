"""Explanations configuration: how much to explain and when attributions have drifted.

A monitor spec's ``thresholds`` and ``options`` are read into one frozen ``ExplanationConfig``;
a key this kind does not know is refused, naming it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lineage.errors import InvalidInput
from monitors.spec import MonitorSpec

__all__ = ["THRESHOLD_KEYS", "ExplanationConfig", "config_from_spec"]


THRESHOLD_KEYS = {
    "attribution_ndcg": "min_attribution_ndcg",
    "attribution_share_shift": "max_share_shift",
}
"""``MonitorSpec.thresholds`` keys this kind reads, and the config field each sets."""
_OPTION_KEYS = (
    "background_size",
    "max_agnostic_rows",
    "ndcg_top_k",
    "permutations",
    "sample_size",
    "seed",
)


class ExplanationConfig(BaseModel):
    """Configure an explanations run: how much to explain and when attributions have drifted.

    Attributes:
        sample_size: Window rows explained (a seeded sample when the window is larger).
        background_size: Background rows for the model-agnostic fallback.
        max_agnostic_rows: Rows explained when the fallback runs (it is slow).
        permutations: Feature orderings the fallback averages per row (each costs
            ``2 * features + 1`` model calls on the background).
        seed: The sampling seed.
        min_attribution_ndcg: NDCG below this is an alert (SageMaker and Azure ML use 0.9).
        max_share_shift: A feature whose share of total importance moves more than this warns.
        ndcg_top_k: Rank positions NDCG counts; ``None`` counts every feature.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_size: int = Field(default=10_000, ge=1, le=10_000)
    background_size: int = Field(default=100, ge=1, le=100)
    max_agnostic_rows: int = Field(default=200, ge=1, le=1_000)
    permutations: int = Field(default=3, ge=1, le=50)
    seed: int = 0
    min_attribution_ndcg: float = Field(default=0.9, ge=0, le=1)
    max_share_shift: float = Field(default=0.1, ge=0, le=1)
    ndcg_top_k: int | None = Field(default=None, ge=1)


def config_from_spec(spec: MonitorSpec) -> ExplanationConfig:
    """Read an explanations config from a monitor spec, refusing what this kind does not know.

    ``spec.thresholds`` may hold the keys of :data:`THRESHOLD_KEYS`; ``spec.options`` may hold
    ``sample_size``, ``background_size``, ``max_agnostic_rows``, ``permutations``, ``seed`` and
    ``ndcg_top_k``.

    Raises:
        InvalidInput: An unknown key or a value out of range.
    """
    for section, given, known in (
        ("thresholds", spec.thresholds, THRESHOLD_KEYS),
        ("options", spec.options, _OPTION_KEYS),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InvalidInput(
                f"unknown {section} {unknown} for explanations; use {sorted(known)}",
                field=section,
            )
    fields = {THRESHOLD_KEYS[key]: value for key, value in spec.thresholds.items()}
    try:
        return ExplanationConfig.model_validate({**fields, **spec.options})
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "options"
        keys = {v: k for k, v in THRESHOLD_KEYS.items()}
        where = f"thresholds.{keys[name]}" if name in keys else f"options.{name}"
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None
