"""Keyset pages: every row once across pages, stable while rows are added, bad cursors refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from lineage import (
    InvalidInput,
    ModelVersion,
    ModelVersionCreate,
    SortKey,
    create_project,
    keyset_page,
    page_model_versions,
    register_model_version,
    session_scope,
)
from lineage.pages import KeyValue, decode_cursor, encode_cursor

SPEC = ModelVersionCreate(artifact_uri="s3://m", external=True)


def _register(session: Session, project_id: uuid.UUID, names: list[str]) -> None:
    for name in names:
        register_model_version(session=session, project_id=project_id, name=name, spec=SPEC)


def test_pages_hold_every_row_once_and_stay_stable_while_rows_are_added(engine: Engine) -> None:
    with session_scope(engine) as session:
        project_id = create_project(session=session, name="acme").id
        _register(session, project_id, ["c", "b", "d", "b", "c", "b", "d"])
        seen: list[tuple[str, str]] = []
        page = page_model_versions(session=session, project_id=project_id, limit=3)
        seen += [(v.name, v.version) for v in page.items]
        _register(session, project_id, ["a", "b"])  # a1 sorts before the cursor, b4 after it
        while page.next_cursor is not None:
            page = page_model_versions(
                session=session, project_id=project_id, limit=3, cursor=page.next_cursor
            )
            seen += [(v.name, v.version) for v in page.items]
    assert seen == [("b", "1"), ("b", "2"), ("b", "3"), ("b", "4"), ("c", "1"), ("c", "2"),
                    ("d", "1"), ("d", "2")]  # fmt: skip


def test_a_descending_key_pages_newest_first(engine: Engine) -> None:
    with session_scope(engine) as session:
        project_id = create_project(session=session, name="acme").id
        _register(session, project_id, ["m"] * 5)
        keys = [SortKey(col(ModelVersion.created_at), "desc"), SortKey(col(ModelVersion.id))]
        query = select(ModelVersion).where(ModelVersion.project_id == project_id)
        versions: list[str] = []
        cursor = None
        for _ in range(3):
            page = keyset_page(
                session=session, query=query, keys=keys, limit=2, cursor=cursor,
                key_of=lambda v: (v.created_at, v.id),
            )  # fmt: skip
            versions += [v.version for v in page.items]
            cursor = page.next_cursor
    assert versions == ["5", "4", "3", "2", "1"]
    assert cursor is None


def test_a_cursor_round_trips_its_typed_values() -> None:
    values: list[KeyValue] = [
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        uuid.uuid4(),
        "x",
        2**40,
    ]
    assert decode_cursor(encode_cursor(values), types=[datetime, uuid.UUID, str, int]) == values


@pytest.mark.parametrize(
    "cursor",
    ["not base64!", "bm90IGpzb24", encode_cursor(["a"]), encode_cursor(["a", "b", "c"]),
     "W1sidCIsIjIwMjYtMDEtMDFUMDA6MDA6MDAiXSxbInMiLCJ4Il1d",  # a datetime without offset
     "W1sidSIsIm5vIl0sWyJzIiwieCJdXQ"],  # not a UUID
)  # fmt: skip
def test_a_cursor_this_api_did_not_return_is_refused_naming_the_field(
    engine: Engine, cursor: str
) -> None:
    with session_scope(engine) as session, pytest.raises(InvalidInput, match="cursor") as raised:
        page_model_versions(session=session, project_id=uuid.uuid4(), cursor=cursor)
    assert raised.value.field == "cursor"


def test_a_limit_out_of_bounds_is_refused(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(InvalidInput, match="limit"):
        page_model_versions(session=session, project_id=uuid.uuid4(), limit=1001)
