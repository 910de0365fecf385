"""The Banking77 customer queries shipped in ``data/banking77``, for the LLM monitor tests."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

__all__ = ["CARD_INTENTS", "banking77"]

DATA = Path(__file__).resolve().parent.parent / "data" / "banking77"
CARD_INTENTS = ("lost_or_stolen_card", "compromised_card", "card_swallowed")
"""The intents of a surge of lost-or-stolen-card questions."""


def banking77(split: str = "test") -> list[tuple[str, str]]:
    """Return ``(text, intent)`` pairs of the ``test`` (3,080) or ``train`` (10,003) split."""
    with gzip.open(DATA / f"{split}.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]
