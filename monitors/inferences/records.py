"""Inference and label records: the shapes a client sends, checked one record at a time.

An inference record carries a client request id, a time, the features (one value per input
column), the prediction, and the score or the class probabilities; a label record carries a
request id already logged and the ground truth. An uploaded table (CSV or Parquet) becomes
records through :func:`records_from_frame`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from lineage.errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CONTEXT_PREFIX",
    "MAX_BATCH",
    "REQUEST_ID_PATTERN",
    "RESERVED_COLUMNS",
    "Cell",
    "InferenceRecord",
    "IngestResult",
    "LabelRecord",
    "check_batch_size",
    "records_from_frame",
    "refuse_non_finite",
]

MAX_BATCH = 10_000
"""The most records one call may log (bounded so a batch fits one request and one file)."""
RESERVED_COLUMNS = (
    "request_id",
    "time",
    "prediction",
    "score",
    "probabilities",
    "attributions",
    "label",
)
"""Window columns Warden adds beside the features; no feature may carry these names."""
CONTEXT_PREFIX = "context."
"""How a context column is named in a stored partition and an uploaded table
(``context.region``): never confused with a feature of the same name."""

# An integer Parquet can hold (int64); a larger one validates as the float it approximates.
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Cell = str | Int64 | float | bool | None
# The span of nanosecond timestamps (pandas, Parquet), in whole years.
_EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
_LATEST = datetime(2262, 1, 1, tzinfo=UTC)


REQUEST_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
"""A request id is printable: control characters (a NUL above all, which PostgreSQL refuses in
text) would reach the store's key table."""


class InferenceRecord(BaseModel):
    """One logged inference: what the model saw and what it answered.

    Attributes:
        request_id: The client's id of the request, unique per deployment.
        time: When the model answered; now when unset.
        features: One value per input column of the model version (nulls allowed).
        prediction: The predicted class or value.
        score: Probability of the positive class (binary classification).
        probabilities: Class → probability, for multi-class models.
        context: Values that are not model inputs: sensitive attributes (fairness reads them)
            and slices (region, channel); the model version's ``context_schema`` declares them.
        attributions: Feature → attribution (e.g. a SHAP value) computed by the serving app;
            explanations read these instead of loading the model.
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200, pattern=REQUEST_ID_PATTERN)
    time: AwareDatetime | None = None
    features: dict[str, Cell]
    prediction: Cell = None
    score: float | None = None
    probabilities: dict[str, float] | None = None
    context: dict[str, Cell] = Field(default_factory=dict)
    attributions: dict[str, float] | None = None

    @field_validator("time")
    @classmethod
    def _storable(cls, time: datetime | None) -> datetime | None:
        """Refuse a time the Parquet partition cannot hold (nanoseconds since 1970 in int64)."""
        if time is not None and not _EARLIEST <= time < _LATEST:
            raise ValueError(f"the time must lie between {_EARLIEST:%Y} and {_LATEST:%Y}")
        return time


class LabelRecord(BaseModel):
    """The ground truth of a logged inference, sent once it is known."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200, pattern=REQUEST_ID_PATTERN)
    label: str | Int64 | float | bool


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a logging call did: how many records were stored and how many were duplicates.

    Attributes:
        batch_id: The stored batch, ``None`` when every record was a duplicate.
        accepted: Records stored.
        duplicates: Records whose request id was logged before (or twice in the batch).
        sha256: The SHA-256 (hex) of the batch's stored Parquet object, ``None`` when nothing
            was stored: the audit entry names the exact bytes, not just their count.
    """

    batch_id: uuid.UUID | None
    accepted: int
    duplicates: int
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (what the audit entry keeps)."""
        return {
            "batch_id": None if self.batch_id is None else str(self.batch_id),
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "sha256": self.sha256,
        }


def check_batch_size(count: int, field: str) -> None:
    """Refuse an empty batch or one above :data:`MAX_BATCH` records, naming ``field``."""
    if count == 0:
        raise InvalidInput(f"{field} is empty; send at least one record", field=field)
    if count > MAX_BATCH:
        raise PayloadTooLarge(
            f"{count} records in one batch; send at most {MAX_BATCH:,} per call", field=field
        )


def records_from_frame(frame: pd.DataFrame) -> list[InferenceRecord]:
    """Turn an uploaded table (CSV or Parquet) into inference records.

    Columns ``request_id`` (required), ``time``, ``prediction``, ``score`` are Warden's; a
    column ``context.<name>`` is the context value ``<name>``; every other column is a feature.
    Missing values become nulls.

    Raises:
        InvalidInput: No ``request_id`` column, or a row that is not a valid record.
    """
    import pandas as pd
    from pydantic import ValidationError

    if "request_id" not in frame.columns:
        raise InvalidInput(
            "the file has no 'request_id' column; add one id per row", field="file.request_id"
        )
    check_batch_size(len(frame), "file")
    own = {"request_id", "time", "prediction", "score"}
    names = [str(c) for c in frame.columns if c not in own]
    context = [n for n in names if n.startswith(CONTEXT_PREFIX)]
    features = [n for n in names if not n.startswith(CONTEXT_PREFIX)]
    records: list[InferenceRecord] = []
    plain = frame.astype(object).where(pd.notna(frame), other=None)  # type: ignore[call-overload]
    for index, row in enumerate(plain.to_dict(orient="records")):
        try:
            records.append(
                InferenceRecord(
                    request_id=str(row["request_id"]),
                    time=row.get("time"),
                    features={name: _cell(row[name]) for name in features},
                    context={n.removeprefix(CONTEXT_PREFIX): _cell(row[n]) for n in context},
                    prediction=_cell(row.get("prediction")),
                    score=row.get("score"),
                )
            )
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidInput(
                f"row {index}: {where}: {first['msg']}", field=f"records[{index}].{where}"
            ) from None
    return records


def _cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if hasattr(value, "item"):
        item: Cell = value.item()
        return item
    return str(value)


def refuse_non_finite(records: Sequence[InferenceRecord]) -> None:
    """Refuse ``NaN`` and ``±Infinity`` from a client, naming ``records.N.<field>``.

    JSON has no such numbers, and a drift run could only count them as missing; a client
    sends ``null`` for a missing value. (Python callers' ``NaN`` stays a missing value.)
    """
    for index, record in enumerate(records):
        cells: list[tuple[str, Any]] = [
            *((f"features.{name}", value) for name, value in record.features.items()),
            ("prediction", record.prediction),
            ("score", record.score),
            *((f"probabilities.{k}", v) for k, v in (record.probabilities or {}).items()),
            *((f"context.{name}", value) for name, value in record.context.items()),
            *((f"attributions.{k}", v) for k, v in (record.attributions or {}).items()),
        ]
        for where, value in cells:
            if isinstance(value, float) and not math.isfinite(value):
                field = f"records.{index}.{where}"
                raise InvalidInput(
                    f"{field} is {value!r}; send a finite number, or null for a missing value",
                    field=field,
                )
