"""The Ed25519 key that signs audit checkpoints, and the checks an offline auditor runs.

The private key lives in one PEM file (PKCS#8, unencrypted, mode 0600) that Warden generates on
first start; whoever holds only the public key can check every checkpoint without trusting the
database. A key is named by its *key id*: the first 16 hex digits of the SHA-256 of the raw
32-byte public key, so a checkpoint says which key signed it.
"""

from __future__ import annotations

import base64
import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lineage.errors import InvalidInput
from lineage.key_files import create_key_file

__all__ = [
    "Signer",
    "key_id_of",
    "load_or_create_signer",
    "load_public_key",
    "public_key_pem",
    "verify_signature",
]


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """Return the short, stable name of a public key (SHA-256 of its raw bytes, 16 hex digits)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    """Return the public key as a SubjectPublicKeyInfo PEM document, the form auditors receive."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 private key and its key id; the only object that can sign checkpoints."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        """Return the public half, which is safe to serve to anyone."""
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        """Return the key id that checkpoints record beside their signature."""
        return key_id_of(self.public_key)

    def public_pem(self) -> str:
        """Return the public key as PEM (served at ``GET /api/v1/audit/public-key``)."""
        return public_key_pem(self.public_key)

    def sign(self, message: bytes) -> str:
        """Sign ``message`` and return the signature in base64 (the form stored and exported)."""
        return base64.b64encode(self.private_key.sign(message)).decode("ascii")


def load_or_create_signer(path: Path) -> Signer:
    """Load the checkpoint signing key from ``path``, generating it there on first start.

    The file is created with mode 0600 atomically (:mod:`lineage.key_files`), so processes
    starting at once end up with the same key; an existing key readable by group or others is
    refused, because anyone who can read it can forge checkpoints.

    Raises:
        InvalidInput: The file is not a private Ed25519 PEM key, or it is readable by others.
    """
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if create_key_file(path, pem):
            return Signer(key)
        # another process won the race; load its key below
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InvalidInput(
            f"the audit signing key {path} has mode {mode:o}: anyone who can read it can forge "
            f"checkpoints; run `chmod 600 {path}`",
            field="audit_key_path",
        )
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as error:
        raise InvalidInput(
            f"{path} is not a PEM private key ({error}); point WARDEN_AUDIT_KEY_PATH at the "
            "Ed25519 key Warden generated, or at a path where it may create one",
            field="audit_key_path",
        ) from error
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InvalidInput(
            f"{path} holds a {type(loaded).__name__}, not an Ed25519 key; checkpoints are signed "
            "with Ed25519 only",
            field="audit_key_path",
        )
    return Signer(loaded)


def load_public_key(pem: bytes | str) -> Ed25519PublicKey:
    """Parse an auditor's copy of the public key (PEM, as served by the API).

    Raises:
        InvalidInput: The text is not an Ed25519 public key in PEM form.
    """
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise InvalidInput(
            f"the public key is not PEM ({error}); fetch it from GET /api/v1/audit/public-key",
            field="public_key",
        ) from error
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(
            f"the public key is a {type(key).__name__}, not Ed25519; fetch the right one from "
            "GET /api/v1/audit/public-key",
            field="public_key",
        )
    return key


def verify_signature(public_key: Ed25519PublicKey, message: bytes, signature_b64: str) -> bool:
    """Return whether ``signature_b64`` is a valid signature of ``message`` by ``public_key``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
