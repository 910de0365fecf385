"""Records as Warden's routes take them, built from whatever Python values a model hands over.

JSON has no ``NaN`` or ``Infinity`` and Warden refuses them, so a non-finite float becomes
``null`` (a missing value); numpy and pandas scalars become plain Python values (``.item()``),
datetimes ISO 8601 text, anything else its ``str``. No numpy or pandas import is needed.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

__all__ = ["Batch", "Cell", "Kind", "cell", "deployment_id", "inference", "label", "new_request_id"]

Cell = str | int | float | bool | None
Kind = Literal["inferences", "labels"]


def cell(value: object) -> Cell:
    """Return ``value`` as a JSON cell Warden accepts (non-finite floats become ``None``)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    item = getattr(value, "item", None)
    if callable(item):
        plain = item()
        if plain is not value and not hasattr(plain, "item"):
            return cell(plain)
    return str(value)


def new_request_id() -> str:
    """Return a fresh request id (a UUID4 in hex): unique per deployment, as Warden requires."""
    return uuid.uuid4().hex


def deployment_id(value: uuid.UUID | str) -> str:
    """Return the deployment's UUID as text; Warden's routes address a deployment by UUID only.

    Raises:
        ValueError: ``value`` is not a UUID (a deployment's name is not accepted by the server).
    """
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(
            f"deployment {value!r} is not a UUID; Warden addresses a deployment by its id "
            "(GET /api/v1/projects/{project}/deployments lists them)"
        ) from None


def inference(
    *,
    features: Mapping[str, object],
    prediction: object = None,
    score: object = None,
    probabilities: Mapping[object, object] | None = None,
    request_id: str | None = None,
    time: datetime | None = None,
) -> dict[str, Any]:
    """Return one inference record (``time`` defaults to now: when the model answered)."""
    record: dict[str, Any] = {
        "request_id": request_id or new_request_id(),
        "time": (time or datetime.now(UTC)).isoformat(),
        "features": {str(name): cell(value) for name, value in features.items()},
        "prediction": cell(prediction),
    }
    plain_score = cell(score)
    if isinstance(plain_score, int | float) and not isinstance(plain_score, bool):
        record["score"] = float(plain_score)
    if probabilities is not None:
        record["probabilities"] = {
            str(name): float(p)
            for name, value in probabilities.items()
            if isinstance(p := cell(value), int | float) and not isinstance(p, bool)
        }
    return record


def label(*, request_id: str, value: object) -> dict[str, Any]:
    """Return one label record: the ground truth of an inference logged before."""
    return {"request_id": request_id, "label": cell(value)}


@dataclass(slots=True)
class Batch:
    """Records of one kind for one deployment: one request to Warden, or one spool file."""

    kind: Kind
    deployment: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def halves(self) -> tuple[Batch, Batch]:
        """Split in two, to find the record Warden refused without refusing its neighbours."""
        middle = len(self.records) // 2
        return (
            Batch(self.kind, self.deployment, self.records[:middle]),
            Batch(self.kind, self.deployment, self.records[middle:]),
        )

    def body(self) -> dict[str, list[dict[str, Any]]]:
        """Return the JSON body Warden's route takes."""
        return {"records" if self.kind == "inferences" else "labels": self.records}
