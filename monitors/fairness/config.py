"""Fairness configuration: which groups are compared, how sure, and what counts as unfair.

A monitor spec's ``sensitive_features``, ``thresholds`` and ``options`` are read into one frozen
``FairnessConfig``; a key this kind does not know is refused, naming it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lineage.errors import InvalidInput
from monitors.spec import MonitorSpec

__all__ = ["THRESHOLD_KEYS", "FairnessConfig", "config_from_spec"]


THRESHOLD_KEYS = {
    "demographic_parity_difference": "max_demographic_parity_difference",
    "demographic_parity_ratio": "min_demographic_parity_ratio",
    "equalized_odds_difference": "max_equalized_odds_difference",
    "group_shift": "max_group_shift",
}
"""``MonitorSpec.thresholds`` keys this kind reads, and the config field each sets."""


_OPTION_KEYS = ("intersections", "min_group_size", "bootstrap_samples", "confidence", "seed")


class FairnessConfig(BaseModel):
    """Configure a fairness computation: which groups, how sure, and what counts as unfair.

    Attributes:
        sensitive_features: Columns whose groups are compared, each on its own.
        intersections: Feature combinations compared as joint groups; ``None`` means all the
            sensitive features together when there are at least two (``sex&race``).
        min_group_size: The smallest denominator a group metric is judged on.
        bootstrap_samples: Bootstrap replicates for the intervals (seeded, so reruns agree).
        confidence: The central coverage of the percentile intervals.
        seed: The bootstrap seed.
        positive_label: The prediction (and label) value that counts as the favourable outcome.
        max_demographic_parity_difference: Largest acceptable gap in selection rates.
        min_demographic_parity_ratio: Smallest acceptable ratio of selection rates (the US
            "four-fifths rule" uses 0.8).
        max_equalized_odds_difference: Largest acceptable gap in TPR or FPR.
        max_group_shift: Largest acceptable change of a group metric against the reference.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitive_features: tuple[str, ...] = Field(min_length=1)
    intersections: tuple[tuple[str, ...], ...] | None = None
    min_group_size: int = Field(default=30, ge=1)
    bootstrap_samples: int = Field(default=300, ge=0, le=10_000)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 0
    positive_label: int | str | bool = 1
    max_demographic_parity_difference: float = Field(default=0.1, ge=0, le=1)
    min_demographic_parity_ratio: float = Field(default=0.8, ge=0, le=1)
    max_equalized_odds_difference: float = Field(default=0.1, ge=0, le=1)
    max_group_shift: float = Field(default=0.1, ge=0, le=1)

    @field_validator("intersections")
    @classmethod
    def _at_least_two(
        cls, value: tuple[tuple[str, ...], ...] | None
    ) -> tuple[tuple[str, ...], ...] | None:
        for combination in value or ():
            if len(combination) < 2 or len(set(combination)) != len(combination):
                raise ValueError(
                    f"intersection {list(combination)} needs two or more distinct features; "
                    "list single features in 'sensitive_features'"
                )
        return value

    def scopes(self) -> list[tuple[str, ...]]:
        """Return every feature set to compare: each feature alone, then the intersections."""
        singles = [(name,) for name in dict.fromkeys(self.sensitive_features)]
        if self.intersections is not None:
            return singles + [tuple(c) for c in self.intersections]
        features = tuple(dict.fromkeys(self.sensitive_features))
        return singles + ([features] if len(features) > 1 else [])


def config_from_spec(spec: MonitorSpec) -> FairnessConfig:
    """Read a fairness config from a monitor spec, refusing what this kind does not understand.

    ``spec.sensitive_features`` and ``spec.positive_label`` carry over; ``spec.thresholds`` may
    hold the keys of :data:`THRESHOLD_KEYS`; ``spec.options`` may hold ``intersections`` (a list
    of feature lists), ``min_group_size``, ``bootstrap_samples``, ``confidence`` and ``seed``.

    Raises:
        InvalidInput: No sensitive features, an unknown key, or a value out of range.
    """
    if not spec.sensitive_features:
        raise InvalidInput(
            "fairness needs sensitive_features, the columns whose groups it compares "
            "(e.g. ['sex', 'race'])",
            field="sensitive_features",
        )
    for section, given, known in (
        ("thresholds", spec.thresholds, THRESHOLD_KEYS),
        ("options", spec.options, _OPTION_KEYS),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InvalidInput(
                f"unknown {section} {unknown} for fairness; use {sorted(known)}", field=section
            )
    fields = {THRESHOLD_KEYS[key]: value for key, value in spec.thresholds.items()}
    try:
        return FairnessConfig.model_validate(
            {
                "sensitive_features": tuple(spec.sensitive_features),
                "positive_label": spec.positive_label,
                **fields,
                **spec.options,
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "options"
        keys = {v: k for k, v in THRESHOLD_KEYS.items()}
        where = f"thresholds.{keys[name]}" if name in keys else f"options.{name}"
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None
