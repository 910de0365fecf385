from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance.actors import Actor, PrincipalKind
from governance.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditFilter,
    Outcome,
    append,
    append_in_own_transaction,
    checkpoint,
    entry_hash,
    entry_payload,
    head,
    iter_entries,
    list_entries,
)
from governance.checkpoints import AuditCheckpoint
from governance.signing import Signer, load_or_create_signer
from lineage import InvalidInput, create_project, session_scope
from tests.conftest import POSTGRES_URL


@pytest.fixture
def alice() -> Actor:
    return Actor(
        principal_id=uuid.uuid4(), name="alice", kind=PrincipalKind.PERSON, request_id="req-1"
    )


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return load_or_create_signer(tmp_path / "keys" / "audit.pem")


def _entries(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())


def test_entries_form_a_gapless_hash_chain(engine: Engine, alice: Actor) -> None:
    with session_scope(engine) as session:
        project = create_project(session=session, name="credit")
        for number in range(3):
            append(
                session=session,
                actor=alice.in_project(project.id),
                action="model.promote",
                target=f"model_version:{number}",
                detail={"before": None, "after": "champion"},
            )
    entries = _entries(engine)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert all(e.hash == entry_hash(entry_payload(e)) for e in entries)
    first = entries[0]
    assert (first.actor_id, first.actor_name, first.actor_kind) == (
        alice.principal_id,
        "alice",
        "person",
    )
    assert first.project_id == project.id
    assert first.request_id == "req-1"
    assert first.outcome == "success"
    assert first.detail == '{"after":"champion","before":null}'


def test_detail_is_canonical_json_whatever_the_key_order(engine: Engine, alice: Actor) -> None:
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    version = uuid.UUID(int=7)
    with session_scope(engine) as session:
        entry = append(
            session=session,
            actor=alice,
            action="policy.change",
            target="policy:p",
            detail={"z": 1, "a": {"é": [at, version, Outcome.DENIED]}},
        )
    assert entry.detail == (
        '{"a":{"é":["2026-11-30T12:00:00.000000Z","00000000-0000-0000-0000-000000000007",'
        '"denied"]},"z":1}'
    )


def _promote_then_fail(engine: Engine, actor: Actor) -> None:
    with session_scope(engine) as session:
        append(session=session, actor=actor, action="model.promote", target="model_version:1")
        raise RuntimeError("promotion failed")


def test_a_failed_action_leaves_no_entry(engine: Engine, alice: Actor) -> None:
    with pytest.raises(RuntimeError, match="promotion failed"):
        _promote_then_fail(engine, alice)
    assert _entries(engine) == []


def _denied_request(engine: Engine, actor: Actor) -> None:
    with session_scope(engine) as session:
        append_in_own_transaction(
            engine=engine,
            actor=actor,
            action="model.promote",
            target="model_version:1",
            reason="alice registered this version; another approver must promote it",
        )
        append(session=session, actor=actor, action="model.note", target="model_version:1")
        raise PermissionError("denied")


def test_a_denial_in_its_own_transaction_survives_the_rollback(
    engine: Engine, alice: Actor
) -> None:
    with pytest.raises(PermissionError, match="denied"):
        _denied_request(engine, alice)
    (entry,) = _entries(engine)
    assert (entry.seq, entry.outcome, entry.action) == (1, "denied", "model.promote")
    assert entry.reason.startswith("alice registered")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": " "}, "action"),
        ({"target": ""}, "target"),
        ({"target": "x" * 301}, "target"),
        ({"outcome": "maybe"}, "outcome"),
        ({"detail": {"ratio": float("nan")}}, "detail"),
        ({"detail": {"blob": "x" * 70_000}}, "detail"),
        ({"detail": {"obj": object()}}, "detail"),
    ],
)
def test_bad_entries_are_refused_naming_the_field(
    engine: Engine, alice: Actor, kwargs: dict[str, object], field: str
) -> None:
    arguments: dict[str, object] = {"action": "model.promote", "target": "model_version:1"}
    arguments.update(kwargs)
    with pytest.raises(InvalidInput, match=field) as raised, session_scope(engine) as session:
        append(session=session, actor=alice, **arguments)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert _entries(engine) == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE governance_audit_entry SET reason = 'nothing happened'",
        "DELETE FROM governance_audit_entry",
        "UPDATE governance_audit_checkpoint SET signature = 'forged'",
        "DELETE FROM governance_audit_checkpoint",
    ],
)
def test_the_database_refuses_update_and_delete(
    engine: Engine, alice: Actor, statement: str, signer: Signer
) -> None:
    with session_scope(engine) as session:
        append(session=session, actor=alice, action="model.promote", target="model_version:1")
        assert checkpoint(session=session, signer=signer) is not None
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(sa.text(statement))
    assert len(_entries(engine)) == 1
    with Session(engine) as session:
        (kept,) = session.exec(select(AuditCheckpoint)).all()
    assert kept.signature != "forged"


def test_head_and_filters(engine: Engine, alice: Actor) -> None:
    bob = Actor(principal_id=uuid.uuid4(), name="bob", kind=PrincipalKind.SERVICE)
    with session_scope(engine) as session:
        assert head(session=session).seq == 0
        credit = create_project(session=session, name="credit")
        churn = create_project(session=session, name="churn")
        append(session=session, actor=alice.in_project(credit.id), action="a.x", target="t:1")
        append(session=session, actor=bob.in_project(churn.id), action="a.y", target="t:2")
        append(session=session, actor=bob, action="a.x", target="t:3", outcome="failure")
    with Session(engine) as session:
        assert head(session=session).seq == 3

        def seqs(**where: object) -> list[int]:
            found = list_entries(session=session, where=AuditFilter(**where))  # type: ignore[arg-type]
            return [e.seq for e in found]

        assert seqs() == [1, 2, 3]
        assert seqs(project_ids=frozenset({credit.id})) == [1]
        assert seqs(project_ids=frozenset()) == []
        assert seqs(actor="bob") == [2, 3]
        assert seqs(actor=str(alice.principal_id)) == [1]
        assert seqs(action="a.x") == [1, 3]
        assert seqs(target="t:2") == [2]
        assert seqs(outcome=Outcome.FAILURE) == [3]
        assert seqs(after_seq=1) == [2, 3]
        assert seqs(since=datetime(2999, 1, 1, tzinfo=UTC)) == []
        assert seqs(until=datetime(2999, 1, 1, tzinfo=UTC)) == [1, 2, 3]
        page = list_entries(session=session, where=AuditFilter(), limit=2)
        assert [e.seq for e in page] == [1, 2]
        assert [e.seq for e in iter_entries(session=session, batch=2)] == [1, 2, 3]
        with pytest.raises(InvalidInput, match="limit"):
            list_entries(session=session, where=AuditFilter(), limit=0)


def test_the_hash_follows_the_documented_canonical_form(engine: Engine, alice: Actor) -> None:
    with session_scope(engine) as session:
        entry = append(
            session=session,
            actor=alice,
            action="role.grant",
            target="principal:bob",
            reason="new auditor",
            detail={"role": "auditor", "ünïcode": True},
        )
    payload = {
        "action": "role.grant",
        "actor_id": str(alice.principal_id),
        "actor_kind": "person",
        "actor_name": "alice",
        "created_at": entry.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "detail": {"role": "auditor", "ünïcode": True},
        "id": str(entry.id),
        "outcome": "success",
        "prev_hash": "0" * 64,
        "project_id": None,
        "reason": "new auditor",
        "request_id": "req-1",
        "seq": 1,
        "target": "principal:bob",
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert '"ünïcode"' in text
    assert entry.hash == hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_postgres_refuses_truncate(engine: Engine, alice: Actor) -> None:
    with session_scope(engine) as session:
        append(session=session, actor=alice, action="model.promote", target="model_version:1")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(sa.text("TRUNCATE governance_audit_entry"))
    assert len(_entries(engine)) == 1


def test_actor_fields_are_bounded(engine: Engine, alice: Actor) -> None:
    longest = replace(alice, request_id="r" * 128)
    with session_scope(engine) as session:
        entry = append(session=session, actor=longest, action="a.b", target="t:1")
    assert entry.request_id == "r" * 128
    with pytest.raises(InvalidInput, match=r"actor\.request_id") as raised:
        append_in_own_transaction(
            engine=engine, actor=replace(alice, request_id="r" * 129), action="a.b", target="t:1"
        )
    assert raised.value.field == "actor.request_id"
    with pytest.raises(InvalidInput, match=r"actor\.name"):
        append_in_own_transaction(
            engine=engine, actor=replace(alice, name="n" * 201), action="a.b", target="t:1"
        )
    assert len(_entries(engine)) == 1
