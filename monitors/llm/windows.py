"""The two windows an LLM monitor run reads: the current one and its reference window.

The reference of a kind over traces is another window of the same deployment slot, not a stored
baseline: ``options.reference_start`` / ``options.reference_end`` (ISO 8601 with a time zone) fix
it — the traffic the application was accepted on, say — and without them it is the window of
the same length just before the current one (so a run compares with the previous period).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlmodel import Session

from lineage.errors import InvalidInput
from lineage.models import Deployment
from monitors.llm.calls import MAX_CALLS, read_calls
from monitors.spec import MonitorSpec

__all__ = ["CallWindows", "read_call_windows", "reference_range"]


@dataclass(frozen=True, slots=True)
class CallWindows:
    """The current window's calls, the reference window's calls, and where the latter lies."""

    current: pd.DataFrame
    reference: pd.DataFrame | None
    reference_start: datetime | None
    reference_end: datetime | None


def _moment(spec: MonitorSpec, name: str) -> datetime | None:
    raw = spec.options.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(
            f"options.{name} must be an ISO 8601 time with a time zone, e.g. "
            "'2026-12-01T00:00:00+00:00'",
            field=f"options.{name}",
        )
    return moment


def reference_range(
    spec: MonitorSpec, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime] | None:
    """Return the reference window ``[start, end)``; ``None`` when none can be placed.

    Raises:
        InvalidInput: only one bound given, a bound that is not an aware ISO time, or an
            empty range.
    """
    fixed_start, fixed_end = _moment(spec, "reference_start"), _moment(spec, "reference_end")
    if (fixed_start is None) != (fixed_end is None):
        raise InvalidInput(
            "give both options.reference_start and options.reference_end, or neither",
            field="options.reference_start" if fixed_start is None else "options.reference_end",
        )
    if fixed_start is not None and fixed_end is not None:
        if fixed_start >= fixed_end:
            raise InvalidInput(
                "options.reference_start must come before options.reference_end",
                field="options.reference_start",
            )
        return fixed_start, fixed_end
    if start is None or end is None:
        return None
    return start - (end - start), start


def read_call_windows(
    *,
    session: Session,
    spec: MonitorSpec,
    deployment: Deployment,
    start: datetime | None,
    end: datetime | None,
) -> CallWindows:
    """Read the current window's calls and the reference window's (see the module docstring)."""
    current = read_calls(
        session=session, deployment=deployment, start=start, end=end, max_calls=MAX_CALLS
    )
    placed = reference_range(spec, start, end)
    if placed is None:
        return CallWindows(current, None, None, None)
    reference = read_calls(
        session=session,
        deployment=deployment,
        start=placed[0],
        end=placed[1],
        max_calls=MAX_CALLS,
    )
    return CallWindows(current, reference, placed[0], placed[1])
