"""Session cookies: signed, expiring, bound to the password, and their CSRF tokens."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from api.web_session import SESSION_SECONDS, SessionCodec
from governance.actors import PrincipalKind
from governance.identity import Principal
from lineage.errors import Unauthenticated


def _person() -> Principal:
    return Principal(name="vic", kind=PrincipalKind.PERSON, password_hash="$argon2id$stand-in")


def test_the_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "dashboard-session.key"
    first = SessionCodec.load_or_create(path)
    value, _ = first.issue(_person(), now=1000)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = SessionCodec.load_or_create(path)
    assert again.verify(value, now=1000) is not None


def test_a_cookie_verifies_until_it_expires(tmp_path: Path) -> None:
    codec = SessionCodec(b"k" * 32)
    person = _person()
    value, issued = codec.issue(person, now=1000)
    found = codec.verify(value, now=1000 + SESSION_SECONDS - 1)
    assert found == issued
    assert found.principal_id == person.id
    assert codec.verify(value, now=1000 + SESSION_SECONDS + 1) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),
        lambda v: v.replace(".", ".9", 1),
        lambda v: "garbage",
        lambda v: "",
    ],
)
def test_a_changed_or_foreign_cookie_is_refused(mangle: object) -> None:
    codec = SessionCodec(b"k" * 32)
    value, _ = codec.issue(_person(), now=1000)
    assert callable(mangle)
    with pytest.raises(Unauthenticated, match="session cookie is not valid"):
        codec.verify(mangle(value), now=1000)
    with pytest.raises(Unauthenticated, match="session cookie is not valid"):
        SessionCodec(b"x" * 32).verify(value, now=1000)


def test_csrf_tokens_differ_per_session_and_key() -> None:
    codec = SessionCodec(b"k" * 32)
    _, one = codec.issue(_person(), now=1000)
    _, two = codec.issue(_person(), now=1000)
    assert codec.csrf_token(one.nonce) != codec.csrf_token(two.nonce)
    assert codec.csrf_token(one.nonce) == codec.csrf_token(one.nonce)
    assert SessionCodec(b"x" * 32).csrf_token(one.nonce) != codec.csrf_token(one.nonce)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SessionCodec(b"short")
