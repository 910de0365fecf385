"""The audit log's time bounds: time rises with seq, and ``since``/``until`` select by time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance import audit
from governance.actors import Actor, PrincipalKind
from governance.audit import (
    AuditEntry,
    AuditFilter,
    AuditTimeOrder,
    PendingEntry,
    append,
    append_many,
    iter_entries,
    list_entries,
)
from governance.audit_verify import verify_store
from lineage import create_project, session_scope

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
SECOND = timedelta(seconds=1)
ROBOT = Actor(principal_id=None, name="robot", kind=PrincipalKind.SERVICE)


def _clock(monkeypatch: pytest.MonkeyPatch, *times: datetime) -> None:
    """Make the audit log's clock answer ``times``, one per chain write."""
    ticks: Iterator[datetime] = iter(times)
    monkeypatch.setattr(audit, "utcnow", lambda: next(ticks))


def _bounds() -> list[datetime | None]:
    """Bounds before, at, between and after the entries' times (T0 .. T0 + 3 s)."""
    return [None, *(T0 + SECOND * half / 2 for half in (-1, 0, 1, 2, 5, 6, 7))]


def _paged(session: Session, where: AuditFilter) -> list[int]:
    """Return the seqs ``where`` selects, two entries a page, following the cursor."""
    seqs: list[int] = []
    while page := list_entries(session=session, where=where, limit=2):
        seqs.extend(e.seq for e in page)
        where = replace(where, after_seq=page[-1].seq)
    return seqs


def _check_every_bound(engine: Engine, projects: frozenset[uuid.UUID] | None) -> None:
    """Compare every pair of bounds with a filter over all entries read in seq order."""
    with Session(engine) as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        for since, until in product(_bounds(), _bounds()):
            expected = [
                e.seq
                for e in entries
                if (projects is None or e.project_id in projects)
                and (since is None or e.created_at >= since)
                and (until is None or e.created_at < until)
            ]
            where = AuditFilter(project_ids=projects, since=since, until=until)
            found = [e.seq for e in list_entries(session=session, where=where)]
            assert found == expected, (since, until)
            assert [e.seq for e in iter_entries(session=session, where=where, batch=2)] == expected
            assert _paged(session, where) == expected, (since, until)


def test_an_entry_is_never_earlier_than_the_one_before_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clock stepping back (or a replica behind) does not put time out of seq order."""
    _clock(monkeypatch, T0 + 5 * SECOND, T0, T0 + 6 * SECOND)
    for number in range(3):
        with session_scope(engine) as session:
            append(session=session, actor=ROBOT, action="a.b", target=f"t:{number}")
    with Session(engine) as session:
        times = [
            e.created_at for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))
        ]
    assert times == [T0 + 5 * SECOND, T0 + 5 * SECOND, T0 + 6 * SECOND]
    assert verify_store(engine=engine, public_key=None).intact


def test_since_and_until_select_by_time_at_every_boundary(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inclusive ``since``, exclusive ``until``, ties, empty ranges, cursor pages, projects."""
    with session_scope(engine) as session:
        credit = create_project(session=session, name="credit").id
        churn = create_project(session=session, name="churn").id
    _clock(monkeypatch, T0, T0 + SECOND, T0 + 2 * SECOND, T0 + 3 * SECOND)
    with session_scope(engine) as session:  # T0
        append(session=session, actor=ROBOT.in_project(credit), action="a.b", target="t:1")
    with session_scope(engine) as session:  # T0 + 1 s: three entries sharing the time
        append_many(
            session=session,
            actor=ROBOT,
            entries=[
                PendingEntry("a.b", f"t:{n}", project_id=(credit, churn)[n % 2]) for n in (2, 3, 4)
            ],
        )
    for project in (churn, credit):  # T0 + 2 s and T0 + 3 s
        with session_scope(engine) as session:
            append(session=session, actor=ROBOT.in_project(project), action="a.b", target="t:5")
    with Session(engine) as session:
        assert session.exec(select(sa.func.count()).select_from(AuditTimeOrder)).one() == 0
    _check_every_bound(engine, None)
    _check_every_bound(engine, frozenset({credit}))
    _check_every_bound(engine, frozenset())
    with Session(engine) as session:  # both bounds are seq ranges: no time filter is left
        narrowed = audit._in_seq(session, AuditFilter(since=T0 + SECOND, until=T0 + 3 * SECOND))
    assert (narrowed.since, narrowed.until, narrowed.after_seq, narrowed.before_seq) == (
        None,
        None,
        1,
        6,
    )


def test_bounds_within_an_older_unordered_log_still_select_by_time(engine: Engine) -> None:
    """Entries from before ``audit_0005`` may be out of time order: bounds up to it are filters."""
    with session_scope(engine) as session:
        credit = create_project(session=session, name="credit").id
    offsets = [2, 0, 1, 3, 3, 4]  # seq 1..6; the last entry out of order is seq 3
    with engine.begin() as connection:
        connection.execute(
            sa.insert(AuditEntry.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": uuid.uuid4(),
                    "created_at": T0 + offset * SECOND,
                    "seq": seq,
                    "actor_name": "robot",
                    "actor_kind": "service",
                    "project_id": credit,
                    "action": "a.b",
                    "target": "t:1",
                    "outcome": "success",
                    "reason": "",
                    "detail": "{}",
                    "prev_hash": "0" * 64,
                    "hash": "0" * 64,
                }
                for seq, offset in enumerate(offsets, start=1)
            ],
        )
    with session_scope(engine) as session:
        session.add(AuditTimeOrder(unordered_until=T0 + 2 * SECOND))
    _check_every_bound(engine, frozenset({credit}))
    with Session(engine) as session:  # only the bound after the unordered time is a seq bound
        narrowed = audit._in_seq(session, AuditFilter(since=T0 + SECOND, until=T0 + 3 * SECOND))
    assert (narrowed.since, narrowed.until, narrowed.before_seq) == (T0 + SECOND, None, 4)
