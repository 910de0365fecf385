from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from governance.actors import Actor, PrincipalKind
from governance.identity import (
    MIN_PASSWORD_LENGTH,
    AuthThrottle,
    Principal,
    actor_for,
    authenticate_api_key,
    bootstrap_admin,
    check_throttle,
    create_person,
    create_service_account,
    issue_api_key,
    list_api_keys,
    record_auth_failure,
    revoke_api_key,
    verify_password,
)
from lineage.errors import Conflict, InvalidInput, RateLimited, Unauthenticated
from lineage.store import session_scope
from lineage.tables import utcnow
from tests.conftest import Issued

SYSTEM = Actor.system()
PASSWORD = "correct horse battery staple"


def test_passwords_are_stored_as_argon2_and_verified(engine: Engine) -> None:
    with session_scope(engine) as session:
        alice = create_person(session=session, actor=SYSTEM, name="alice", password=PASSWORD)
        assert alice.password_hash is not None
        assert alice.password_hash.startswith("$argon2id$")
        assert PASSWORD not in alice.password_hash
    with session_scope(engine) as session:
        found = verify_password(session=session, name="alice", password=PASSWORD)
        assert found is not None
        assert found.id == alice.id
        assert verify_password(session=session, name="alice", password="wrong password!") is None
        assert verify_password(session=session, name="nobody", password=PASSWORD) is None


def test_short_passwords_and_bad_or_taken_names_are_refused(engine: Engine) -> None:
    with session_scope(engine) as session:
        with pytest.raises(InvalidInput, match=f"at least {MIN_PASSWORD_LENGTH}") as short:
            create_person(session=session, actor=SYSTEM, name="bob", password="short")
        assert short.value.field == "password"
        with pytest.raises(InvalidInput, match="not valid") as bad:
            create_person(session=session, actor=SYSTEM, name="Bob Smith")
        assert bad.value.field == "name"
        create_service_account(session=session, actor=SYSTEM, name="ingest")
        with pytest.raises(Conflict, match="exists already"):
            create_person(session=session, actor=SYSTEM, name="ingest")


def test_a_key_is_shown_once_and_only_its_digest_is_stored(engine: Engine) -> None:
    with session_scope(engine) as session:
        robot = create_service_account(session=session, actor=SYSTEM, name="ingest")
        issued = issue_api_key(session=session, actor=SYSTEM, principal_id=robot.id, label="ci")
    assert issued.secret.startswith(f"{issued.key.display_prefix}_")
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT * FROM governance_api_key")).all()
    assert issued.secret not in repr(stored)
    assert issued.secret.split("_", 2)[2] not in repr(stored)
    with session_scope(engine) as session:
        principal, key = authenticate_api_key(session=session, raw_key=issued.secret)
    assert principal.id == robot.id
    assert key.id == issued.key.id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),
        lambda k: "wdn_000000000000_" + k.split("_", 2)[2],
        lambda k: "not-a-key",
        lambda k: "",
    ],
)
def test_wrong_keys_are_refused_alike(
    engine: Engine, make_principal: Callable[..., Issued], mangle: Callable[[str], str]
) -> None:
    key = make_principal().key
    with session_scope(engine) as session, pytest.raises(Unauthenticated):
        authenticate_api_key(session=session, raw_key=mangle(key))


def test_a_secret_under_another_keys_prefix_is_refused_with_the_same_message(
    engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    """An attacker holding one key learns nothing by pairing its secret with other prefixes."""
    own, other = make_principal().key, make_principal().key
    own_prefix, own_secret = own.split("_", 2)[1:]
    other_prefix = other.split("_", 2)[1]
    revoked = make_principal()
    with session_scope(engine) as session:
        (key,) = list_api_keys(session=session, principal_id=revoked.principal.id)
        revoke_api_key(
            session=session, actor=SYSTEM, principal_id=revoked.principal.id, key_id=key.id
        )
    attempts = {
        "secret under another key's prefix": f"wdn_{other_prefix}_{own_secret}",
        "unknown prefix": f"wdn_{'f' * 12}_{own_secret}",
        "right prefix, wrong secret": f"wdn_{own_prefix}_{own_secret[:-2]}xx",
        "revoked": revoked.key,
    }
    messages = set()
    with session_scope(engine) as session:
        for what, raw in attempts.items():
            with pytest.raises(Unauthenticated) as refused:
                authenticate_api_key(session=session, raw_key=raw)
            messages.add(str(refused.value))
            assert raw not in str(refused.value), what
        principal, _key = authenticate_api_key(session=session, raw_key=own)
    assert len(messages) == 1  # one answer for every way of being wrong: no oracle
    assert principal.name != revoked.principal.name


def test_revoked_and_expired_keys_are_refused(engine: Engine) -> None:
    with session_scope(engine) as session:
        alice = create_person(session=session, actor=SYSTEM, name="alice")
        revoked = issue_api_key(session=session, actor=SYSTEM, principal_id=alice.id)
        expiring = issue_api_key(
            session=session,
            actor=SYSTEM,
            principal_id=alice.id,
            expires_at=utcnow() + timedelta(days=1),
        )
        revoke_api_key(session=session, actor=SYSTEM, principal_id=alice.id, key_id=revoked.key.id)
    with session_scope(engine) as session:
        with pytest.raises(Unauthenticated, match="unknown, expired or revoked"):
            authenticate_api_key(session=session, raw_key=revoked.secret)
        authenticate_api_key(session=session, raw_key=expiring.secret)
        with pytest.raises(Unauthenticated, match="unknown, expired or revoked"):
            authenticate_api_key(
                session=session, raw_key=expiring.secret, now=utcnow() + timedelta(days=2)
            )
        with pytest.raises(InvalidInput, match="in the past"):
            issue_api_key(
                session=session,
                actor=SYSTEM,
                principal_id=alice.id,
                expires_at=utcnow() - timedelta(seconds=1),
            )


def test_a_disabled_principals_keys_stop_working(
    engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    principal, key = make_principal()
    with session_scope(engine) as session:
        stored = session.get(Principal, principal.id)
        assert stored is not None
        stored.disabled_at = utcnow()
        session.add(stored)
    with session_scope(engine) as session, pytest.raises(Unauthenticated):
        authenticate_api_key(session=session, raw_key=key)


def test_bootstrap_makes_one_admin_and_then_refuses(engine: Engine) -> None:
    with session_scope(engine) as session:
        issued = bootstrap_admin(session=session, name="root")
    with session_scope(engine) as session:
        principal, _ = authenticate_api_key(session=session, raw_key=issued.secret)
        assert principal.is_admin
        assert actor_for(principal).kind == PrincipalKind.PERSON
        with pytest.raises(Conflict, match="bootstrap runs once"):
            bootstrap_admin(session=session, name="second")


def test_failures_past_the_limit_are_throttled_until_the_window_passes(engine: Engine) -> None:
    throttle = AuthThrottle(max_failures=3, window=timedelta(seconds=60))
    start = utcnow()
    with session_scope(engine) as session:
        for seconds in (0, 10, 20):
            record_auth_failure(
                session=session,
                source="10.0.0.1",
                throttle=throttle,
                now=start + timedelta(seconds=seconds),
            )
    with session_scope(engine) as session:
        with pytest.raises(RateLimited, match="too many failed") as limited:
            check_throttle(
                session=session,
                source="10.0.0.1",
                throttle=throttle,
                now=start + timedelta(seconds=21),
            )
        assert limited.value.retry_after_seconds == 39
        check_throttle(session=session, source="10.0.0.2", throttle=throttle, now=start)
        check_throttle(
            session=session,
            source="10.0.0.1",
            throttle=throttle,
            now=start + timedelta(seconds=61),
        )
