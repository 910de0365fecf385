"""An insider with the database (and the signing key) attacks the audit log; verify finds it.

Each test performs the attack on a real store (PostgreSQL when ``TEST_DATABASE_URL`` is set),
shows what the database alone can and cannot prove, and what the anchor (the copy of the
checkpoints outside the database) adds.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance.actors import Actor, PrincipalKind
from governance.anchors import ANNOUNCE_EVENT_TYPE, ChannelRef, FileAnchor, parse_anchor_lines
from governance.audit import AuditEntry, act_then_audit, append, checkpoint
from governance.audit_export import export_lines
from governance.audit_verify import verify_export, verify_store
from governance.channels import SecretBox, create_channel
from governance.checkpoints import (
    AuditCheckpoint,
    CheckpointRecord,
    attach_signer,
    detach_signer,
    format_time,
)
from governance.delivery import deliver_due
from governance.outbound import add_allow_entry, guard_for_project
from governance.signing import Signer, load_or_create_signer
from lineage import InvalidInput, create_project, session_scope
from lineage.projects import Project
from lineage.tables import utcnow
from tests.governance.receivers import http_receiver
from tests.governance.tamper import (
    delete_checkpoints,
    drop_triggers,
    resign_checkpoints,
    rewrite_entry,
    truncate,
)
from tests.governance.test_delivery import verify_standard_webhook

EVERY = 4


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return load_or_create_signer(tmp_path / "keys" / "audit.pem")


@pytest.fixture
def anchor(tmp_path: Path) -> FileAnchor:
    return FileAnchor(tmp_path / "elsewhere" / "audit-anchor.jsonl")


@pytest.fixture
def signed(engine: Engine, signer: Signer, anchor: FileAnchor) -> Iterator[Engine]:
    """The store, with checkpoints every 4 entries, anchored to a file outside it."""
    attach_signer(engine, signer, every=EVERY, anchor=anchor)
    yield engine
    detach_signer(engine)


def _fill(engine: Engine, count: int, project: str = "acme") -> None:
    actor = Actor(principal_id=uuid.uuid4(), name="alice", kind=PrincipalKind.PERSON)
    with session_scope(engine) as session:
        found = session.exec(select(Project).where(Project.name == project)).first()
        if found is None:
            found = create_project(session=session, name=project)
        for number in range(count):
            append(
                session=session,
                actor=actor.in_project(found.id),
                action="model.promote",
                target=f"model_version:{number}",
            )


def _checkpoint_seqs(engine: Engine) -> list[int]:
    with Session(engine) as session:
        seqs = session.exec(select(AuditCheckpoint.seq).order_by(col(AuditCheckpoint.seq)))
        return list(seqs.all())


def test_checkpoints_are_chained_scheduled_and_anchored(
    signed: Engine, signer: Signer, anchor: FileAnchor
) -> None:
    _fill(signed, 10)
    assert _checkpoint_seqs(signed) == [4, 8]
    anchored = anchor.read()
    assert [r.seq for r in anchored] == [4, 8]
    assert anchored[1].prev == anchored[0].digest()
    assert anchored[0].every == EVERY
    report = verify_store(engine=signed, public_key=signer.public_key)
    assert report.intact, report.problem
    assert (report.every, report.anchor, report.anchored, report.unanchored) == (
        EVERY,
        anchor.location,
        2,
        0,
    )
    assert anchor.last_seq() == 8


def test_insider_rewrites_rehashes_and_deletes_the_checkpoints(
    signed: Engine, signer: Signer, anchor: FileAnchor
) -> None:
    """The reported attack: triggers dropped, entry rewritten, tail re-hashed, checkpoints gone."""
    _fill(signed, 10)
    detach_signer(signed)
    drop_triggers(signed)
    rewrite_entry(signed, 6, reason="approved by the board")
    delete_checkpoints(signed)
    chain_only = verify_store(engine=signed, public_key=signer.public_key)
    assert chain_only.first_broken_seq is None  # the hash chain alone links again
    report = verify_store(engine=signed, public_key=signer.public_key, every=EVERY)
    assert not report.intact
    assert report.first_broken_seq == 4
    assert report.problem is not None
    assert "checkpoint due at entry 4" in report.problem
    against_anchor = verify_store(
        engine=signed, public_key=signer.public_key, every=EVERY, anchor=anchor
    )
    assert against_anchor.first_broken_seq == 4
    assert against_anchor.problem is not None


def test_deleting_only_the_checkpoints_after_a_rewrite_is_a_break_at_the_first_one(
    signed: Engine, signer: Signer
) -> None:
    _fill(signed, 13)
    assert _checkpoint_seqs(signed) == [4, 8, 12]
    detach_signer(signed)
    drop_triggers(signed)
    rewrite_entry(signed, 6, target="model_version:forged")
    delete_checkpoints(signed, from_seq=5)
    report = verify_store(engine=signed, public_key=signer.public_key, every=EVERY)
    assert report.first_broken_seq == 8
    assert report.problem is not None
    assert "checkpoint due at entry 8" in report.problem


def test_deleting_one_checkpoint_in_the_middle_is_a_break_at_its_seq(
    signed: Engine, signer: Signer
) -> None:
    _fill(signed, 13)
    detach_signer(signed)
    drop_triggers(signed)
    delete_checkpoints(signed, from_seq=8, to_seq=8)
    # No interval passed: the interval each checkpoint signed is enough to know 8 is missing.
    report = verify_store(engine=signed, public_key=signer.public_key)
    assert report.first_broken_seq == 8
    assert report.problem is not None
    assert "checkpoint due at entry 8" in report.problem


def test_a_deleted_on_demand_checkpoint_breaks_the_checkpoint_chain(
    signed: Engine, signer: Signer
) -> None:
    _fill(signed, 5)
    for _ in range(2):
        with session_scope(signed) as session:
            checkpoint(session=session, signer=signer)
        _fill(signed, 1)
    assert _checkpoint_seqs(signed) == [4, 5, 6]
    detach_signer(signed)
    drop_triggers(signed)
    delete_checkpoints(signed, from_seq=5, to_seq=5)  # on schedule either way: 4 .. 6
    report = verify_store(engine=signed, public_key=signer.public_key, every=EVERY)
    assert report.first_broken_seq == 6
    assert report.problem is not None
    assert "chains to a checkpoint that is not in the log" in report.problem


def test_truncating_the_tail_and_its_checkpoints_is_found_against_the_anchor(
    signed: Engine, signer: Signer, anchor: FileAnchor
) -> None:
    _fill(signed, 10)
    detach_signer(signed)
    drop_triggers(signed)
    truncate(signed, from_seq=7)
    db_only = verify_store(engine=signed, public_key=signer.public_key, every=EVERY)
    assert db_only.intact  # 6 entries and a checkpoint at 4: a consistent, shorter log
    report = verify_store(engine=signed, public_key=signer.public_key, every=EVERY, anchor=anchor)
    assert not report.intact
    assert report.first_broken_seq == 7
    assert report.problem is not None
    assert "truncated" in report.problem


def test_a_rewrite_resigned_with_the_stolen_key_is_found_against_the_anchor(
    signed: Engine, signer: Signer, anchor: FileAnchor
) -> None:
    _fill(signed, 10)
    detach_signer(signed)
    drop_triggers(signed)
    rewrite_entry(signed, 6, outcome="denied")
    resign_checkpoints(signed, signer, from_seq=6)
    db_only = verify_store(engine=signed, public_key=signer.public_key, every=EVERY)
    assert db_only.intact, db_only.problem  # the key holder fools the database check
    report = verify_store(engine=signed, public_key=signer.public_key, every=EVERY, anchor=anchor)
    assert not report.intact
    assert report.first_broken_seq == 8
    assert report.problem is not None
    assert "re-signed" in report.problem


def test_truncated_then_regrown_with_the_key_is_found_against_the_anchor(
    signed: Engine, signer: Signer, anchor: FileAnchor
) -> None:
    """Cut at 7, then let Warden append and sign anew: the anchor holds two checkpoints at 8."""
    _fill(signed, 10)
    drop_triggers(signed)
    truncate(signed, from_seq=7)
    _fill(signed, 4)  # Warden (holding the key) appends 7..10 and signs 8 again
    assert _checkpoint_seqs(signed) == [4, 8]
    report = verify_store(engine=signed, public_key=signer.public_key, anchor=anchor)
    assert report.first_broken_seq == 8
    assert report.problem is not None
    assert "two different checkpoints" in report.problem


def test_an_export_is_verified_against_the_anchor_offline(
    signed: Engine, signer: Signer, anchor: FileAnchor
) -> None:
    _fill(signed, 10)
    lines = list(export_lines(engine=signed, readable=None, key_id=signer.key_id, up_to=10))
    anchored = anchor.read()
    intact = verify_export(lines, public_key=signer.public_key, every=EVERY, anchored=anchored)
    assert intact.intact, intact.problem
    assert intact.anchored == 2
    cut = [line for line in lines if '"seq":9,' not in line and '"seq":10,' not in line]
    cut[0] = cut[0].replace('"head_seq":10', '"head_seq":8')
    assert verify_export(cut, public_key=signer.public_key, anchored=anchored).intact
    detach_signer(signed)
    drop_triggers(signed)
    rewrite_entry(signed, 2, actor_name="mallory")
    resign_checkpoints(signed, signer, from_seq=1)
    forged = list(export_lines(engine=signed, readable=None, key_id=signer.key_id, up_to=10))
    assert verify_export(forged, public_key=signer.public_key).intact
    found = verify_export(forged, public_key=signer.public_key, anchored=anchored)
    assert found.first_broken_seq == 4


def test_lowering_the_interval_keeps_an_honest_log_intact(
    engine: Engine, signer: Signer, anchor: FileAnchor
) -> None:
    attach_signer(engine, signer, every=5, anchor=anchor)
    _fill(engine, 7)
    attach_signer(engine, signer, every=2, anchor=anchor)
    _fill(engine, 3)
    detach_signer(engine)
    assert _checkpoint_seqs(engine) == [5, 7, 9]
    report = verify_store(engine=engine, public_key=signer.public_key, every=2, anchor=anchor)
    assert report.intact, report.problem


def test_keyless_appends_are_a_break_until_a_keyed_process_catches_up(
    engine: Engine, signer: Signer, anchor: FileAnchor
) -> None:
    _fill(engine, 9)  # a process without the key
    pending = verify_store(engine=engine, public_key=signer.public_key, every=EVERY)
    assert pending.first_broken_seq == 4
    assert pending.problem is not None
    assert "warden audit checkpoint" in pending.problem
    attach_signer(engine, signer, every=EVERY, anchor=anchor)
    try:
        with session_scope(engine) as session:
            made = checkpoint(session=session, signer=signer)
    finally:
        detach_signer(engine)
    assert made is not None
    assert made.seq == 9
    assert _checkpoint_seqs(engine) == [4, 8, 9]
    assert [r.seq for r in anchor.read()] == [4, 8, 9]
    report = verify_store(engine=engine, public_key=signer.public_key, every=EVERY, anchor=anchor)
    assert report.intact, report.problem


def test_a_rolled_back_checkpoint_is_never_anchored(signed: Engine, anchor: FileAnchor) -> None:
    _fill(signed, 3)

    def fourth_entry_then_failure() -> None:
        with session_scope(signed) as session:
            project = create_project(session=session, name="beta")
            append(
                session=session,
                actor=Actor.system().in_project(project.id),
                action="model.promote",
                target="model_version:x",
            )
            raise RuntimeError("the action failed after its entry was written")

    with pytest.raises(RuntimeError, match="action failed"):
        fourth_entry_then_failure()
    assert anchor.read() == []
    _fill(signed, 1)
    assert [r.seq for r in anchor.read()] == [4]


def test_an_unwritable_anchor_does_not_fail_appends_and_is_caught_up(
    engine: Engine, signer: Signer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the anchor's directory should be")
    attach_signer(engine, signer, every=2, anchor=FileAnchor(blocked / "anchor.jsonl"))
    with caplog.at_level(logging.ERROR, logger="governance.anchors"):
        _fill(engine, 2)
    assert "not anchored" in caplog.text
    assert _checkpoint_seqs(engine) == [2]
    fixed = FileAnchor(tmp_path / "fixed" / "anchor.jsonl")
    attach_signer(engine, signer, every=2, anchor=fixed)
    try:
        _fill(engine, 2)
    finally:
        detach_signer(engine)
    assert [r.seq for r in fixed.read()] == [2, 4]


def test_the_anchor_file_is_append_only_json_lines(anchor: FileAnchor, signer: Signer) -> None:
    record = CheckpointRecord(
        seq=1, hash="a" * 64, key_id=signer.key_id, at="t", signature="s", prev="0" * 64, every=1
    )
    anchor.publish([record])
    anchor.publish([record])  # the same record twice (two processes catching up) is harmless
    assert anchor.read() == [record, record]
    assert (os.stat(anchor.path).st_mode & 0o777) == 0o640
    with anchor.path.open("a", encoding="utf-8") as handle:
        handle.write('{"seq": 2, "hash"')  # a crash mid-write leaves a torn last line
    assert anchor.read() == [record, record]
    assert anchor.last_seq() == 1
    with pytest.raises(InvalidInput, match="line 1 of the anchor"):
        parse_anchor_lines(["not json\n"], source="x")
    assert FileAnchor(anchor.path.with_name("absent.jsonl")).read() == []


def test_act_then_audit_writes_the_entry_only_when_the_action_succeeds(engine: Engine) -> None:
    actor = Actor.system()
    with session_scope(engine) as session:
        project = act_then_audit(
            lambda: create_project(session=session, name="gamma"),
            session=session,
            actor=actor,
            action="project.create",
            target=lambda p: f"project:{p.id}",
            detail=lambda p: {"name": p.name},
        )

    def refused() -> Project:
        raise InvalidInput("refused")

    def attempt() -> None:
        with session_scope(engine) as session:
            act_then_audit(refused, session=session, actor=actor, action="x.y", target="thing:1")

    with pytest.raises(InvalidInput, match="refused"):
        attempt()
    with Session(engine) as session:
        entries = list(session.exec(select(AuditEntry)).all())
    assert [(e.action, e.target, e.detail_object()) for e in entries] == [
        ("project.create", f"project:{project.id}", {"name": "gamma"})
    ]


def test_checkpoints_sent_to_an_alert_channel_are_a_third_partys_anchor(
    engine: Engine, signer: Signer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = SecretBox.generate()
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        add_allow_entry(
            session=session,
            project_id=project.id,
            target="127.0.0.1",
            note="the auditors' receiver",
            created_by="admin",
        )
    with http_receiver() as receiver:
        with session_scope(engine) as session:
            _channel, secret = create_channel(
                session=session,
                project_id=project.id,
                spec={"kind": "webhook", "name": "auditors", "url": receiver.url + "/hold"},
                box=box,
                created_by="admin",
                check_target=guard_for_project(session=session, project_id=project.id),
            )
        refs = (ChannelRef.parse("acme/auditors"), ChannelRef.parse("acme/nobody"))
        attach_signer(engine, signer, every=EVERY, announce_to=refs)
        try:
            with caplog.at_level(logging.WARNING, logger="governance.anchors"):
                _fill(engine, 9)
        finally:
            detach_signer(engine)
        assert "acme/nobody: no such channel" in caplog.text
        assert deliver_due(engine=engine, box=box) == 2
        received = list(receiver.requests)
    assert secret is not None
    for request in received:
        verify_standard_webhook(secret, request.headers, request.body)
    events = [json.loads(request.body) for request in received]
    assert {e["type"] for e in events} == {ANNOUNCE_EVENT_TYPE}
    assert sorted(e["data"]["checkpoint"]["seq"] for e in events) == _checkpoint_seqs(engine)
    held = tmp_path / "receiver" / "checkpoints.jsonl"
    held.parent.mkdir()
    held.write_bytes(b"".join(request.body + b"\n" for request in received))

    drop_triggers(engine)
    truncate(engine, from_seq=6)
    report = verify_store(engine=engine, public_key=signer.public_key, anchor=FileAnchor(held))
    assert report.first_broken_seq == 6
    assert report.problem is not None
    assert "truncated" in report.problem
    with pytest.raises(InvalidInput, match="'project/channel'"):
        ChannelRef.parse("acme")


def test_unchained_checkpoints_from_before_the_upgrade_still_verify(
    engine: Engine, signer: Signer, anchor: FileAnchor
) -> None:
    _fill(engine, 7)  # signed "every 100 since the last one" at 7 by the old code (v1)
    with session_scope(engine) as session:
        seventh = session.exec(select(AuditEntry).where(AuditEntry.seq == 7)).one()
        at = utcnow()
        legacy = CheckpointRecord(
            seq=7, hash=seventh.hash, key_id=signer.key_id, at=format_time(at), signature=""
        )
        session.add(
            AuditCheckpoint(
                created_at=at,
                seq=7,
                entry_hash=seventh.hash,
                key_id=signer.key_id,
                signature=signer.sign(legacy.message()),
            )
        )
    assert b"checkpoint/v1" in legacy.message()
    attach_signer(engine, signer, every=EVERY, anchor=anchor)
    try:
        _fill(engine, 5)
    finally:
        detach_signer(engine)
    [first_chained] = [r for r in anchor.read() if r.seq == 11]
    assert first_chained.prev == legacy.digest()
    report = verify_store(engine=engine, public_key=signer.public_key, anchor=anchor)
    assert report.intact, report.problem
    assert (report.checkpoints_verified, report.anchored, report.unanchored) == (2, 2, 0)
