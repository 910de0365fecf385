"""Records as Warden's routes take them, built from whatever Python values a model hands over.

JSON has no ``NaN`` or ``Infinity`` and Warden refuses them, so a non-finite float becomes
``null`` (a missing value); numpy and pandas scalars become plain Python values (``.item()``),
datetimes ISO 8601 text, anything else its ``str``. No numpy or pandas import is needed.
"""

from __future__ import annotations

import math
import re
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


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def deployment_id(value: uuid.UUID | str) -> str:
    """Return the deployment as Warden's routes take it: its UUID, or its name.

    A name addresses the deployment live in the ``production`` slot of that name, as Warden's
    ``…/inferences`` and ``…/labels`` routes resolve it; give the id for another environment.

    Raises:
        ValueError: ``value`` is neither a UUID nor a deployment name.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        pass
    if _NAME.match(str(value)):
        return str(value)
    raise ValueError(
        f"deployment {value!r} is neither a UUID nor a deployment name (letters, digits, '.', "
        "'_' and '-'; GET /api/v1/projects/{project}/deployments lists them)"
    )


def inference(
    *,
    features: Mapping[str, object],
    prediction: object = None,
    score: object = None,
    probabilities: Mapping[object, object] | None = None,
    request_id: str | None = None,
    time: datetime | None = None,
    context: Mapping[str, object] | None = None,
    attributions: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """Return one inference record (``time`` defaults to now: when the model answered).

    ``context`` holds values that are not model inputs (a sensitive attribute such as ``sex``,
    a slice such as ``region``), declared in the model version's ``context_schema``;
    ``attributions`` a per-feature attribution the serving app computed (e.g. SHAP values),
    which Warden's explanations read instead of loading the model. Non-finite attributions
    are dropped (JSON has no NaN).
    """
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
        record["probabilities"] = _numbers(probabilities)
    if context:
        record["context"] = {str(name): cell(value) for name, value in context.items()}
    if attributions is not None:
        record["attributions"] = _numbers(attributions)
    return record


def _numbers(values: Mapping[Any, object]) -> dict[str, float]:
    """Return the finite numbers of ``values`` by name (``None``, text and NaN left out)."""
    return {
        str(name): float(number)
        for name, value in values.items()
        if isinstance(number := cell(value), int | float) and not isinstance(number, bool)
    }


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
