"""Fixtures for the lineage store: a project to write into and OpenLineage event builders."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import Engine

from lineage import create_project, session_scope


@pytest.fixture
def project_id(engine: Engine) -> uuid.UUID:
    """Return the id of a fresh project called ``demo``."""
    with session_scope(engine) as session:
        return create_project(session=session, name="demo").id
