from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from lineage import session_scope, utcnow
from lineage.runtime.lease import current_leader, holds_lease, release_lease, try_acquire_lease

TTL = timedelta(seconds=10)


def _acquire(engine: Engine, holder: str, now_offset: float = 0.0) -> bool:
    now = utcnow() + timedelta(seconds=now_offset)
    with session_scope(engine) as session:
        return try_acquire_lease(session=session, name="scheduler", holder=holder, ttl=TTL, now=now)


def test_one_holder_at_a_time_until_the_lease_expires(engine: Engine) -> None:
    assert _acquire(engine, "a")
    assert not _acquire(engine, "b")
    assert _acquire(engine, "a", now_offset=5)
    assert not _acquire(engine, "b", now_offset=14)
    assert _acquire(engine, "b", now_offset=16)
    with session_scope(engine) as session:
        assert current_leader(session=session, name="scheduler", now=utcnow() + TTL) == "b"
        assert not holds_lease(session=session, name="scheduler", holder="a")
    assert not _acquire(engine, "a", now_offset=17)


def test_a_released_lease_is_taken_at_once(engine: Engine) -> None:
    assert _acquire(engine, "a")
    with session_scope(engine) as session:
        release_lease(session=session, name="scheduler", holder="a")
        assert current_leader(session=session, name="scheduler") is None
    assert _acquire(engine, "b")


def test_leases_are_per_role(engine: Engine) -> None:
    assert _acquire(engine, "a")
    with session_scope(engine) as session:
        assert try_acquire_lease(session=session, name="other-role", holder="b", ttl=TTL)
        assert holds_lease(session=session, name="scheduler", holder="a")
        assert holds_lease(session=session, name="other-role", holder="b")
