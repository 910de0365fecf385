from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from governance.signing import load_or_create_signer, load_public_key, verify_signature
from lineage import InvalidInput


def test_the_key_is_generated_once_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.pem"
    first = load_or_create_signer(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_signer(path)
    assert again.key_id == first.key_id
    assert len(first.key_id) == 16
    signature = first.sign(b"head")
    public = load_public_key(first.public_pem())
    assert verify_signature(public, b"head", signature)
    assert not verify_signature(public, b"tail", signature)
    assert not verify_signature(public, b"head", "not base64!")


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.pem"
    load_or_create_signer(path)
    path.chmod(0o644)
    with pytest.raises(InvalidInput, match="chmod 600") as raised:
        load_or_create_signer(path)
    assert raised.value.field == "audit_key_path"


def test_only_ed25519_pem_keys_are_accepted(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    with pytest.raises(InvalidInput, match="not an Ed25519 key"):
        load_or_create_signer(path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    garbage.chmod(0o600)
    with pytest.raises(InvalidInput, match="not a PEM private key"):
        load_or_create_signer(garbage)
    rsa_public = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidInput, match="not Ed25519"):
        load_public_key(rsa_public)
