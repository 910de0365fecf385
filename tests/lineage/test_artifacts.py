from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from lineage import (
    Conflict,
    InvalidInput,
    ModelVersionCreate,
    NotFound,
    artifact_sha256,
    register_model_version,
    session_scope,
    verify_artifact,
)


def _model_dir(root: Path) -> Path:
    model = root / "model"
    (model / "data").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "data" / "model.skops").write_bytes(b"\x00weights")
    return model


def test_a_file_digest_is_its_sha256(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"bytes")
    assert artifact_sha256(path) == hashlib.sha256(b"bytes").hexdigest()


def test_a_directory_digest_changes_with_content_names_and_members(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    original = artifact_sha256(model)
    assert artifact_sha256(model) == original
    (model / "data" / "model.skops").write_bytes(b"\x00tampered")
    changed = artifact_sha256(model)
    (model / "data" / "model.skops").rename(model / "data" / "other.skops")
    renamed = artifact_sha256(model)
    (model / "extra.py").write_text("import os\n")
    added = artifact_sha256(model)
    assert len({original, changed, renamed, added}) == 4


def test_symbolic_links_and_missing_paths_are_refused(tmp_path: Path) -> None:
    model = _model_dir(tmp_path)
    (model / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidInput, match="symbolic link"):
        artifact_sha256(model)
    with pytest.raises(InvalidInput, match="neither"):
        artifact_sha256(tmp_path / "nope")


def test_verify_passes_the_registered_artifact_and_stops_a_changed_one(
    engine: Engine, project_id: uuid.UUID, tmp_path: Path
) -> None:
    model = _model_dir(tmp_path)
    spec = ModelVersionCreate(artifact_uri=model.as_uri(), artifact_sha256=artifact_sha256(model))
    with session_scope(engine) as session:
        version = register_model_version(
            session=session, project_id=project_id, name="m", spec=spec
        )
    with session_scope(engine) as session:
        checked = verify_artifact(
            session=session, project_id=project_id, model_version_id=version.id, path=model
        )
    assert checked.id == version.id
    (model / "MLmodel").write_text("flavors: {python_function: {}}\n")
    with pytest.raises(Conflict, match="must not be loaded"), session_scope(engine) as session:
        verify_artifact(
            session=session, project_id=project_id, model_version_id=version.id, path=model
        )
    with pytest.raises(NotFound), session_scope(engine) as session:
        verify_artifact(
            session=session, project_id=uuid.uuid4(), model_version_id=version.id, path=model
        )
