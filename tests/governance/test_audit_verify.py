from __future__ import annotations

import base64
import itertools
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance import audit_export, audit_verify
from governance.actors import Actor, PrincipalKind
from governance.audit import (
    AuditEntry,
    append,
    checkpoint,
    entry_hash,
    entry_payload,
)
from governance.audit_export import export_lines
from governance.audit_verify import verify_export, verify_store
from governance.checkpoints import AuditCheckpoint, attach_signer, detach_signer
from governance.signing import Signer, load_or_create_signer
from lineage import create_project, session_scope
from tests.governance.tamper import drop_triggers


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return load_or_create_signer(tmp_path / "keys" / "audit.pem")


@pytest.fixture
def other_signer(tmp_path: Path) -> Signer:
    return load_or_create_signer(tmp_path / "keys" / "impostor.pem")


@pytest.fixture
def alice() -> Actor:
    return Actor(principal_id=uuid.uuid4(), name="alice", kind=PrincipalKind.PERSON)


def _fill(engine: Engine, actor: Actor, count: int) -> None:
    with session_scope(engine) as session:
        project = create_project(session=session, name=f"p-{uuid.uuid4().hex[:8]}")
        for number in range(count):
            append(
                session=session,
                actor=actor.in_project(project.id),
                action="model.promote",
                target=f"model_version:{number}",
                detail={"before": None, "after": "champion", "n": number},
            )


def _sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(statement), params)


def test_an_untouched_chain_verifies(engine: Engine, alice: Actor, signer: Signer) -> None:
    attach_signer(engine, signer, every=4)
    try:
        _fill(engine, alice, 10)
    finally:
        detach_signer(engine)
    report = verify_store(engine=engine, public_key=signer.public_key)
    assert report.intact, report.problem
    assert (report.entries, report.head_seq) == (10, 10)
    assert (report.checkpoints, report.checkpoints_verified) == (2, 2)
    assert report.first_broken_seq is None


def test_a_row_changed_behind_wardens_back_is_found_at_its_seq(
    engine: Engine, alice: Actor
) -> None:
    _fill(engine, alice, 10)
    drop_triggers(engine)
    _sql(engine, "UPDATE governance_audit_entry SET target = 'nothing' WHERE seq = 7")
    report = verify_store(engine=engine, public_key=None)
    assert not report.intact
    assert report.first_broken_seq == 7
    assert report.problem is not None
    assert "entry 7 was changed" in report.problem


@pytest.mark.parametrize(
    ("column", "value"), [("actor_id", "not-a-uuid"), ("created_at", "yesterday")]
)
def test_a_value_no_column_could_hold_is_a_break_not_a_crash(
    engine: Engine, alice: Actor, column: str, value: str
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's uuid and timestamptz columns refuse such values outright")
    _fill(engine, alice, 10)
    drop_triggers(engine)
    statement = f"UPDATE governance_audit_entry SET {column} = :value WHERE seq = 7"  # noqa: S608
    _sql(engine, statement, value=value)
    report = verify_store(engine=engine, public_key=None)
    assert not report.intact
    assert report.first_broken_seq == 7
    assert report.problem is not None
    assert f"entry 7 was changed: its {column}" in report.problem


def test_a_detail_that_is_not_json_is_a_break_not_a_crash(engine: Engine, alice: Actor) -> None:
    _fill(engine, alice, 10)
    drop_triggers(engine)
    _sql(engine, "UPDATE governance_audit_entry SET detail = 'not json' WHERE seq = 6")
    report = verify_store(engine=engine, public_key=None)
    assert (report.intact, report.first_broken_seq) == (False, 6)
    assert report.problem == "entry 6 was changed: its detail is not JSON"


@pytest.mark.parametrize(
    ("statement", "broken"),
    [
        # A detail that reaches into the next field's text, then that field shortened to match.
        (
            "UPDATE governance_audit_entry SET detail = substr(detail, 1, length(detail) - 1) "
            '|| \',"id":"x"}\' WHERE seq = 5',
            5,
        ),
        ("UPDATE governance_audit_entry SET reason = 'x' WHERE seq = 8", 8),
        ("UPDATE governance_audit_entry SET seq = seq + 100 WHERE seq = 9", 9),
    ],
)
def test_changes_inside_a_run_of_rows_read_in_small_chunks_are_found(
    engine: Engine,
    alice: Actor,
    monkeypatch: pytest.MonkeyPatch,
    statement: str,
    broken: int,
) -> None:
    """Entries are read and hashed a chunk at a time; a run across chunks links up, and a
    change anywhere in a run is found at its own seq."""
    monkeypatch.setattr(audit_export, "_CHUNK", 3)
    _fill(engine, alice, 10)
    assert verify_store(engine=engine, public_key=None).entries == 10
    drop_triggers(engine)
    _sql(engine, statement)
    report = verify_store(engine=engine, public_key=None)
    assert (report.intact, report.first_broken_seq, report.entries) == (False, broken, 10)


def test_a_row_rewritten_and_rehashed_is_found_by_its_successor(
    engine: Engine, alice: Actor
) -> None:
    _fill(engine, alice, 10)
    drop_triggers(engine)
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.seq == 4)).one()
        entry.reason = "approved by the board"
        forged_hash = entry_hash(entry_payload(entry))
    _sql(
        engine,
        "UPDATE governance_audit_entry SET reason = 'approved by the board', hash = :h "
        "WHERE seq = 4",
        h=forged_hash,
    )
    report = verify_store(engine=engine, public_key=None)
    assert report.first_broken_seq == 4
    assert report.problem is not None
    assert "entry 5 recorded" in report.problem


def _rehash(engine: Engine, seq: int) -> None:
    """Change entry ``seq`` and re-hash it alone: its successor still records the old hash."""
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.seq == seq)).one()
        entry.reason = "approved by the board"
        forged_hash = entry_hash(entry_payload(entry))
    _sql(
        engine,
        "UPDATE governance_audit_entry SET reason = 'approved by the board', hash = :h "
        "WHERE seq = :s",
        h=forged_hash,
        s=seq,
    )


def _change(*seqs: int) -> Callable[[Engine], None]:
    def change(engine: Engine) -> None:
        for seq in seqs:
            _sql(engine, "UPDATE governance_audit_entry SET reason = 'x' WHERE seq = :s", s=seq)

    return change


# 30 entries in three parts: 1..10 verified by the parent, 11..20 and 21..30 by two workers.
@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        (lambda engine: None, None),
        (_change(15, 25), 15),  # inside a worker's part, and again in the next part
        (_change(21), 21),  # the first entry of a part
        (lambda engine: _rehash(engine, 10), 10),  # found at the boundary: entry 11's link
        (
            lambda engine: _sql(engine, "DELETE FROM governance_audit_entry WHERE seq IN (20, 21)"),
            20,
        ),
        # A detail re-spaced: not the fast path's form, so the parent judges that part (intact).
        (
            lambda engine: _sql(
                engine,
                "UPDATE governance_audit_entry SET detail = replace(detail, ':', ': ') "
                "WHERE seq = 15",
            ),
            None,
        ),
    ],
    ids=[
        "intact",
        "part-2",
        "part-start",
        "boundary-rehash",
        "boundary-gap",
        "slow-path",
    ],
)
def test_a_chain_split_across_processes_gets_the_serial_report(
    engine: Engine,
    alice: Actor,
    signer: Signer,
    monkeypatch: pytest.MonkeyPatch,
    tamper: Callable[[Engine], None],
    broken: int | None,
) -> None:
    """Long chains are hashed by worker processes, a part each; the report is the one reading
    the chain in one process gives, whatever was changed and wherever."""
    attach_signer(engine, signer, every=4)
    try:
        _fill(engine, alice, 30)
    finally:
        detach_signer(engine)
    drop_triggers(engine)
    tamper(engine)
    serial = verify_store(engine=engine, public_key=signer.public_key)
    monkeypatch.setattr(audit_verify, "PARALLEL_FROM", 2)
    monkeypatch.setattr(audit_verify, "_cpus", lambda: 3)
    assert verify_store(engine=engine, public_key=signer.public_key) == serial
    assert (serial.first_broken_seq, serial.checkpoints) == (broken, 7)


def test_a_deleted_row_is_found_as_a_gap(engine: Engine, alice: Actor) -> None:
    _fill(engine, alice, 6)
    drop_triggers(engine)
    _sql(engine, "DELETE FROM governance_audit_entry WHERE seq = 3")
    report = verify_store(engine=engine, public_key=None)
    assert report.first_broken_seq == 3
    assert report.problem is not None
    assert "missing" in report.problem


def test_a_whole_rewritten_chain_is_caught_by_its_checkpoint(
    engine: Engine, alice: Actor, signer: Signer
) -> None:
    _fill(engine, alice, 5)
    with session_scope(engine) as session:
        checkpoint(session=session, signer=signer)
    drop_triggers(engine)
    # Rewrite entry 2 and re-hash it and every successor: the chain alone looks intact.
    with Session(engine) as session:
        entries = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())
    entries[1].reason = "never happened"
    for previous, entry in itertools.pairwise(entries):
        entry.prev_hash = previous.hash
        entry.hash = entry_hash(entry_payload(entry))
    for entry in entries[1:]:
        _sql(
            engine,
            "UPDATE governance_audit_entry SET reason = :r, prev_hash = :p, hash = :h "
            "WHERE seq = :s",
            r=entry.reason,
            p=entry.prev_hash,
            h=entry.hash,
            s=entry.seq,
        )
    assert verify_store(engine=engine, public_key=None).problem is not None  # checkpoint hash
    report = verify_store(engine=engine, public_key=signer.public_key)
    assert report.first_broken_seq == 5
    assert report.problem is not None
    assert "rewritten" in report.problem


def test_truncation_is_caught_by_a_checkpoint_beyond_the_end(
    engine: Engine, alice: Actor, signer: Signer
) -> None:
    _fill(engine, alice, 5)
    with session_scope(engine) as session:
        checkpoint(session=session, signer=signer)
    drop_triggers(engine)
    _sql(engine, "DELETE FROM governance_audit_entry WHERE seq >= 4")
    report = verify_store(engine=engine, public_key=signer.public_key)
    assert report.first_broken_seq == 4
    assert report.problem is not None
    assert "truncated" in report.problem


def test_a_forged_checkpoint_is_detected(
    engine: Engine, alice: Actor, signer: Signer, other_signer: Signer
) -> None:
    _fill(engine, alice, 3)
    with session_scope(engine) as session:
        made = checkpoint(session=session, signer=signer)
    assert made is not None
    forged = base64.b64encode(b"\x00" * 64).decode()
    drop_triggers(engine)
    _sql(engine, "UPDATE governance_audit_checkpoint SET signature = :s", s=forged)
    report = verify_store(engine=engine, public_key=signer.public_key)
    assert report.first_broken_seq == 3
    assert report.problem is not None
    assert "invalid signature" in report.problem
    # A checkpoint signed by a key that is not Warden's is refused too.
    wrong = verify_store(engine=engine, public_key=other_signer.public_key)
    assert wrong.problem is not None
    assert "names key" in wrong.problem


def test_checkpoints_every_n_entries_and_on_demand(
    engine: Engine, alice: Actor, signer: Signer
) -> None:
    attach_signer(engine, signer, every=3)
    try:
        _fill(engine, alice, 7)
        with session_scope(engine) as session:
            on_demand = checkpoint(session=session, signer=signer)
            again = checkpoint(session=session, signer=signer)
    finally:
        detach_signer(engine)
    assert on_demand is not None
    assert again is not None
    assert again.id == on_demand.id
    with Session(engine) as session:
        seqs = session.exec(select(AuditCheckpoint.seq).order_by(col(AuditCheckpoint.seq))).all()
    assert list(seqs) == [3, 6, 7]
    with pytest.raises(ValueError, match="at least 1"):
        attach_signer(engine, signer, every=0)


def test_a_process_with_the_key_catches_up_on_missed_checkpoints(
    engine: Engine, alice: Actor, signer: Signer
) -> None:
    _fill(engine, alice, 4)  # appended by a process that does not hold the key
    attach_signer(engine, signer, every=3)
    try:
        _fill(engine, alice, 1)
    finally:
        detach_signer(engine)
    with Session(engine) as session:
        seqs = session.exec(select(AuditCheckpoint.seq).order_by(col(AuditCheckpoint.seq)))
        assert list(seqs.all()) == [3]  # at the position the schedule missed, not at 5


def test_checkpoint_of_an_empty_log_is_none(engine: Engine, signer: Signer) -> None:
    with session_scope(engine) as session:
        assert checkpoint(session=session, signer=signer) is None


def _export(engine: Engine, signer: Signer, head: int) -> list[str]:
    return list(export_lines(engine=engine, readable=None, key_id=signer.key_id, up_to=head))


def test_offline_verification_of_an_export(engine: Engine, alice: Actor, signer: Signer) -> None:
    attach_signer(engine, signer, every=5)
    try:
        _fill(engine, alice, 12)
    finally:
        detach_signer(engine)
    lines = _export(engine, signer, 12)
    kinds = [json.loads(line)["record"] for line in lines]
    assert kinds.count("entry") == 12
    assert kinds.count("checkpoint") == 2
    assert kinds[0] == "header"
    report = verify_export(lines, public_key=signer.public_key)
    assert report.intact, report.problem
    assert report.checkpoints_verified == 2

    tampered = list(lines)
    index = next(i for i, line in enumerate(lines) if '"seq":8,' in line and "entry" in line)
    tampered[index] = tampered[index].replace('"outcome":"success"', '"outcome":"denied"')
    assert tampered != lines
    broken = verify_export(tampered, public_key=signer.public_key)
    assert broken.first_broken_seq == 8

    dropped = [line for i, line in enumerate(lines) if i != index]
    assert verify_export(dropped, public_key=signer.public_key).first_broken_seq == 8

    cut = [line for line in lines if '"seq":12,' not in line]
    assert verify_export(cut, public_key=signer.public_key).first_broken_seq == 12

    forged = [
        line.replace('"signature":"', '"signature":"A') if '"checkpoint"' in line else line
        for line in lines
    ]
    assert verify_export(forged, public_key=signer.public_key).first_broken_seq == 5


def test_an_export_that_is_not_an_export_is_refused(signer: Signer) -> None:
    from lineage import InvalidInput

    with pytest.raises(InvalidInput, match="line 1"):
        verify_export(["not json"], public_key=signer.public_key)
    with pytest.raises(InvalidInput, match="record"):
        verify_export(['{"seq": 1}'], public_key=signer.public_key)


def _writer(engine: Engine, actor: Actor, count: int, errors: list[BaseException]) -> None:
    try:
        for number in range(count):
            with session_scope(engine) as session:
                append(
                    session=session,
                    actor=actor,
                    action="model.promote",
                    target=f"model_version:{number}",
                    detail={"writer": actor.name},
                )
    except BaseException as error:  # reported by the test thread
        errors.append(error)


@pytest.mark.slow
def test_concurrent_writers_never_fork_the_chain(engine: Engine, signer: Signer) -> None:
    writers, per_writer = 8, 200
    attach_signer(engine, signer, every=100)
    errors: list[BaseException] = []
    actors = [
        Actor(principal_id=uuid.uuid4(), name=f"writer-{i}", kind=PrincipalKind.SERVICE)
        for i in range(writers)
    ]
    threads = [
        threading.Thread(target=_writer, args=(engine, actor, per_writer, errors))
        for actor in actors
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        detach_signer(engine)
    assert errors == []
    report = verify_store(engine=engine, public_key=signer.public_key)
    assert report.intact, report.problem
    assert report.head_seq == writers * per_writer
    assert report.checkpoints_verified == writers * per_writer // 100
    with Session(engine) as session:
        seqs = list(session.exec(select(AuditEntry.seq).order_by(col(AuditEntry.seq))).all())
    assert seqs == list(range(1, writers * per_writer + 1))
