"""Batched appends, the fast canonical text, the verifier's fast path, and read-only scopes."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance.actors import Actor, PrincipalKind
from governance.audit import (
    AuditEntry,
    PendingEntry,
    append,
    append_many,
    canonical_json,
    entry_hash,
    entry_payload,
    head,
    payload_text,
)
from governance.audit_verify import verify_store
from governance.checkpoints import AuditCheckpoint, attach_signer, detach_signer
from governance.signing import Signer, load_or_create_signer
from lineage import InvalidInput, create_project, session_scope
from lineage.store import is_sqlite
from tests.governance.tamper import drop_triggers


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return load_or_create_signer(tmp_path / "keys" / "audit.pem")


@pytest.fixture
def alice() -> Actor:
    return Actor(
        principal_id=uuid.uuid4(), name="alice", kind=PrincipalKind.PERSON, request_id="r-1"
    )


def _entries(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())


def test_append_many_writes_the_chain_append_would(
    engine: Engine, alice: Actor, signer: Signer
) -> None:
    attach_signer(engine, signer, every=10)
    try:
        with session_scope(engine) as session:
            project = create_project(session=session, name="bulk")
            append(session=session, actor=alice, action="a.first", target="t:0")
            new_head = append_many(
                session=session,
                actor=alice.in_project(project.id),
                entries=[
                    PendingEntry(
                        action="inference.log",
                        target=f"deployment:{n}",
                        detail={"n": n, "ünï": ["é", None, 1.5]},
                        reason="nightly import" if n % 2 else "",
                    )
                    for n in range(24)
                ],
            )
            assert append_many(session=session, actor=alice, entries=[]) == new_head
        with session_scope(engine) as session:
            assert head(session=session) == new_head
    finally:
        detach_signer(engine)
    entries = _entries(engine)
    assert [e.seq for e in entries] == list(range(1, 26))
    assert new_head.seq == 25
    assert new_head.hash == entries[-1].hash
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.hash
    for entry in entries:  # the documented hash, recomputed the slow way
        assert entry.hash == entry_hash(entry_payload(entry))
    assert entries[1].project_id == project.id
    assert entries[1].request_id == "r-1"
    with Session(engine) as session:
        sealed = session.exec(select(AuditCheckpoint.seq).order_by(col(AuditCheckpoint.seq)))
        assert list(sealed.all()) == [10, 20]  # inside the batch, at their exact positions
    report = verify_store(engine=engine, public_key=signer.public_key, every=10)
    assert report.intact, report.problem
    assert report.entries == 25
    assert report.checkpoints_verified == 2


def test_entry_ids_rise_with_seq_and_carry_their_time(engine: Engine, alice: Actor) -> None:
    """Ids are UUIDv7 (time, then a random start counted up within a batch): inserts go in at
    the end of the primary key's index, not at a random place in it."""
    with session_scope(engine) as session:
        append(session=session, actor=alice, action="a.one", target="t:0")
        pending = [PendingEntry(action="a.many", target=f"t:{n}") for n in range(50)]
        append_many(session=session, actor=alice, entries=pending)
    with session_scope(engine) as session:
        append(session=session, actor=alice, action="a.later", target="t:1")
    entries = _entries(engine)
    ids = [entry.id for entry in entries]
    assert {entry_id.version for entry_id in ids} == {7}
    assert ids[1:51] == sorted(ids[1:51])
    assert len(set(ids)) == 52
    for entry in entries:
        assert entry.id.int >> 80 == int(entry.created_at.timestamp() * 1000)
    assert verify_store(engine=engine, public_key=None).intact


def test_one_bad_entry_in_a_batch_writes_nothing(engine: Engine, alice: Actor) -> None:
    good = PendingEntry(action="a.b", target="t:1")
    with pytest.raises(InvalidInput) as raised, session_scope(engine) as session:
        append_many(
            session=session, actor=alice, entries=[good, PendingEntry(action="a.b", target=" ")]
        )
    assert raised.value.field == "target"
    assert _entries(engine) == []


@pytest.mark.parametrize(
    "detail",
    [
        {},
        {"b": 1, "a": [True, None, 1e-7, -0.0]},
        {"q": '"\\\n\t\x00\u2028 ü 😀'},
        {"n": {"m": {}}},
    ],
)
def test_payload_text_is_the_canonical_json_of_the_payload(detail: dict[str, object]) -> None:
    payload = {
        "action": "x.y",
        "actor_id": None,
        "actor_kind": "system",
        "actor_name": 'warden "the" \\ system',
        "created_at": "2026-12-07T01:02:03.000004Z",
        "detail": detail,
        "id": str(uuid.uuid4()),
        "outcome": "denied",
        "prev_hash": "0" * 64,
        "project_id": str(uuid.uuid4()),
        "reason": "line\nbreak é",
        "request_id": None,
        "seq": 12,
        "target": "t:\u0007",
    }
    text = payload_text(**{**payload, "detail": canonical_json(detail)})  # type: ignore[arg-type]
    assert text == canonical_json(payload)


def test_unusual_stored_forms_are_judged_like_before(engine: Engine, alice: Actor) -> None:
    with session_scope(engine) as session:
        for n in range(5):
            append(session=session, actor=alice, action="a.b", target=f"t:{n}", detail={"n": n})
    drop_triggers(engine)
    with engine.begin() as connection:
        # The same detail with whitespace and another key order: the hash covers the parsed
        # detail, so the entry is intact; and on SQLite an upper-case id is the same UUID.
        connection.execute(
            sa.text("UPDATE governance_audit_entry SET detail = :d WHERE seq = 2"),
            {"d": '{ "n" : 1 }'},
        )
        if is_sqlite(engine):
            connection.execute(sa.text("UPDATE governance_audit_entry SET id = upper(id)"))
    assert verify_store(engine=engine, public_key=None).intact
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE governance_audit_entry SET detail = :d WHERE seq = 4"),
            {"d": '{"n": 30}'},
        )
    report = verify_store(engine=engine, public_key=None)
    assert report.first_broken_seq == 4


def test_remembered_actors_and_times_do_not_hide_a_changed_one(
    engine: Engine, alice: Actor
) -> None:
    """The verifier converts each repeated actor, project and time once; a changed one is seen."""
    bob = Actor(principal_id=uuid.uuid4(), name="bob", kind=PrincipalKind.PERSON)
    with session_scope(engine) as session:
        append_many(
            session=session,
            actor=alice,
            entries=[PendingEntry(action="a.b", target=f"t:{n}") for n in range(6)],
        )
    assert verify_store(engine=engine, public_key=None).intact
    drop_triggers(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.update(AuditEntry.__table__)  # type: ignore[attr-defined]
            .where(sa.column("seq") == 5)
            .values(actor_id=bob.principal_id)
        )
    assert verify_store(engine=engine, public_key=None).first_broken_seq == 5


def test_a_read_only_scope_does_not_wait_for_a_writer(engine: Engine, alice: Actor) -> None:
    with session_scope(engine) as session:
        append(session=session, actor=alice, action="a.b", target="t:1")
    writing = threading.Event()
    done = threading.Event()

    def writer() -> None:
        with session_scope(engine) as session:
            append(session=session, actor=alice, action="a.b", target="t:2")
            writing.set()
            done.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        started = time.monotonic()
        with session_scope(engine, read_only=True) as session:
            assert head(session=session).seq == 1  # the committed snapshot, not the open write
        assert time.monotonic() - started < 5
    finally:
        done.set()
        thread.join()
    with session_scope(engine, read_only=True) as session:
        assert head(session=session).seq == 2
