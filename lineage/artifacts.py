"""Artifact digests: the hash a model version is registered with, and the check before loading.

Model files are code (pickle, skops): Warden loads only artifacts whose digest matches the one
recorded when the version was registered. A digest covers a single file or a whole directory
(an MLflow model is a directory), computed the same way on both sides:

* a file: the SHA-256 of its bytes;
* a directory: the SHA-256 of one line per regular file, sorted by relative POSIX path,
  ``<path> NUL <file sha256> LF`` — so renaming, adding or removing a file changes it too.
  Symbolic links are refused, since they could point anywhere after registration.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from sqlmodel import Session

from lineage.errors import Conflict, InvalidInput
from lineage.model_versions import get_model_version_by_id
from lineage.models import ModelVersion

__all__ = ["artifact_sha256", "verify_artifact"]

_CHUNK = 1 << 20


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_sha256(path: Path) -> str:
    """Return the digest of a model artifact, a file or a directory (see the module docstring).

    Raises:
        InvalidInput: The path does not exist, or holds a symbolic link.
    """
    if path.is_symlink():
        raise InvalidInput(f"{path} is a symbolic link; hash the real artifact", field="path")
    if path.is_file():
        return _file_sha256(path)
    if not path.is_dir():
        raise InvalidInput(f"{path} is neither a file nor a directory", field="path")
    digest = hashlib.sha256()
    for member in sorted(path.rglob("*"), key=lambda p: p.relative_to(path).as_posix()):
        if member.is_symlink():
            raise InvalidInput(
                f"{member} is a symbolic link; artifacts must hold regular files only",
                field="path",
            )
        if member.is_file():
            relative = member.relative_to(path).as_posix()
            digest.update(f"{relative}\0{_file_sha256(member)}\n".encode())
    return digest.hexdigest()


def verify_artifact(
    *, session: Session, project_id: uuid.UUID, model_version_id: uuid.UUID, path: Path
) -> ModelVersion:
    """Check that the artifact at ``path`` is the one the model version was registered with.

    Call it right before loading a model; load only when it returns.

    Raises:
        NotFound: No such model version in the project.
        Conflict: The digest differs: the artifact changed since registration; do not load it.
    """
    model_version = get_model_version_by_id(
        session=session, project_id=project_id, model_version_id=model_version_id
    )
    actual = artifact_sha256(path)
    if model_version.external or actual != model_version.artifact_sha256:
        raise Conflict(
            f"the artifact of model {model_version.name!r} version {model_version.version!r} "
            f"has digest {actual}, not the registered {model_version.artifact_sha256}; it "
            "changed since registration and must not be loaded"
        )
    return model_version
