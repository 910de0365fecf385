"""A plain JSON batch stored column by column is the same log as the record-by-record path's.

Both paths store the same Adult records (one deployment each); the windows read back must be
equal, column for column and type for type. Anything but the plain shape must step aside to the
record-by-record path (which names the field of a refusal), never be accepted here.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy.engine import Engine

from lineage.models import Deployment
from lineage.storage import LocalStore
from lineage.store import session_scope
from monitors.inferences import (
    InferenceRecord,
    Irregular,
    inference_table,
    log_inference_table,
    log_inferences,
    read_window,
    records_from_frame,
)
from monitors.inferences.columnar import check_ids, json_table, upload_table
from tests.adult import adult_test
from tests.monitors.serving import SCHEMA, adult_deployment, records


def _batch() -> list[dict[str, Any]]:
    rows = adult_test().iloc[:40].reset_index(drop=True)
    batch = records(
        rows,
        predictions=[i % 2 for i in range(len(rows))],
        scores=[i / 40 for i in range(len(rows))],
        time=datetime(2026, 12, 6, 10, 0, tzinfo=UTC),
    )
    batch[3]["features"]["age"] = None  # a gap is a value, kept for the quality monitor
    batch[5]["time"] = "2026-12-06T09:59:58.25Z"
    batch[6]["context"] = {"region": "north"}
    batch.append(dict(batch[0]))  # a re-sent request id counts once
    return batch


def _window(engine: Engine, data_dir: Path, deployment: Deployment) -> pd.DataFrame:
    with session_scope(engine) as session:
        window, _ = read_window(
            session=session, store=LocalStore(data_dir), deployment=deployment, start=None, end=None
        )
    return window


@pytest.mark.parametrize("booleans", [True, False], ids=["column by column", "in one pass"])
def test_the_plain_path_stores_what_the_record_path_stores(
    engine: Engine, tmp_path: Path, booleans: bool
) -> None:
    batch = _batch()
    slow = adult_deployment(engine, project="slow")
    fast = adult_deployment(engine, project="fast")
    with session_scope(engine) as session:
        by_record = log_inferences(
            session=session,
            store=LocalStore(tmp_path),
            deployment=slow,
            records=[InferenceRecord.model_validate(record) for record in batch],
        )
        table = inference_table(
            orjson.loads(json.dumps({"records": batch})),
            schema=SCHEMA,
            context_schema={},
            booleans=booleans,
        )
        by_column = log_inference_table(
            session=session, store=LocalStore(tmp_path), deployment=fast, table=table
        )
    assert (by_column.accepted, by_column.duplicates) == (by_record.accepted, 1)
    expected = _window(engine, tmp_path, slow)
    stored = _window(engine, tmp_path, fast)
    assert list(stored.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(stored, expected)
    assert stored.loc[5, "time"] == pd.Timestamp("2026-12-06T09:59:58.25Z")
    assert stored["context.region"].tolist()[6] == "north"


def test_a_declared_context_is_typed_as_the_version_declares() -> None:
    batch = _batch()
    for record in batch:
        record["context"] = {"band": 3}
    table = inference_table(
        {"records": batch}, schema=SCHEMA, context_schema={"band": {"type": "float"}}
    )
    assert str(table.schema.field("context.band").type) == "double"
    assert table.column("context.band").to_pylist() == [3.0] * len(batch)


def _set(path: tuple[Any, ...], value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def change(batch: list[dict[str, Any]]) -> None:
        node: Any = batch
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


_IRREGULAR: list[Callable[[list[dict[str, Any]]], Any]] = [
    _set((3, "features", "age"), True),  # a bool where a number belongs
    _set((3, "features", "age"), "41"),
    _set((3, "features", "workclass"), 7),  # the record path keeps it as text "7"
    _set((3, "features", "zodiac"), "leo"),
    lambda batch: batch[3]["features"].pop("age"),
    _set((3, "colour"), "red"),
    lambda batch: batch[3].pop("request_id"),
    _set((3, "request_id"), ""),
    _set((3, "request_id"), 12),
    _set((3, "time"), "2026-12-06T10:00:00"),  # no offset
    _set((3, "time"), "2026-12-06 10:00:00+00:00"),
    _set((3, "time"), "2026-02-30T10:00:00+00:00"),
    _set((3, "time"), "3026-01-01T10:00:00+00:00"),
    _set((3, "probabilities"), {"a": 1.0}),
    _set((3, "context"), None),
    _set((3, "prediction"), "yes"),  # text among numbers
    _set((3, "prediction"), [1]),
    _set((3, "score"), True),  # after floats, Arrow alone would read it as 1.0
]


@pytest.mark.parametrize("change", _IRREGULAR)
def test_anything_but_the_plain_shape_steps_aside(
    change: Callable[[list[dict[str, Any]]], None],
) -> None:
    batch = copy.deepcopy(_batch())
    change(batch)
    with pytest.raises(Irregular):
        inference_table({"records": batch}, schema=SCHEMA, context_schema={})
    if b"true" not in orjson.dumps(batch):  # the one-pass conversion must step aside alike
        with pytest.raises(Irregular):
            inference_table({"records": batch}, schema=SCHEMA, context_schema={}, booleans=False)


def test_a_version_without_a_schema_or_an_odd_body_steps_aside() -> None:
    batch = _batch()
    with pytest.raises(Irregular):
        inference_table({"records": batch}, schema={}, context_schema={})
    with pytest.raises(Irregular):
        inference_table({"records": batch, "more": 1}, schema=SCHEMA, context_schema={})
    with pytest.raises(Irregular):
        inference_table({"records": []}, schema=SCHEMA, context_schema={})
    with pytest.raises(Irregular):
        inference_table([batch], schema=SCHEMA, context_schema={})


def _plain_body(batch: list[dict[str, Any]]) -> bytes:
    return json.dumps({"records": batch}).encode()


def _plain() -> list[dict[str, Any]]:
    """A batch Arrow's reader takes: no context, no null feature."""
    batch = _batch()
    del batch[6]["context"]
    for record in batch:
        for name, value in record["features"].items():
            if value is None:
                record["features"][name] = "unknown" if SCHEMA[name] == "category" else 0
    return batch


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "pretty"])
def test_arrow_reads_a_plain_body_into_the_columns_the_parsed_objects_give(
    indent: int | None,
) -> None:
    raw = json.dumps({"records": _plain()}, indent=indent).encode()
    by_arrow = json_table(raw, schema=SCHEMA)
    by_objects = inference_table(orjson.loads(raw), schema=SCHEMA, context_schema={})
    assert by_arrow.schema == by_objects.schema
    assert by_arrow.equals(by_objects)


@pytest.mark.parametrize(
    "change",
    [
        *_IRREGULAR,
        _set((3, "features", "age"), None),  # null or absent: Arrow cannot tell
        _set((3, "context"), {"region": "north"}),
        _set((3,), None),
        _set((3, "features"), None),
    ],
)
def test_arrow_steps_aside_from_anything_but_the_plain_shape(
    change: Callable[[list[dict[str, Any]]], None],
) -> None:
    batch = _plain()
    change(batch)
    with pytest.raises(Irregular):
        json_table(_plain_body(batch), schema=SCHEMA)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"records": [{"request_id": "a", "features": {"age": NaN}}]}',
        b"",
        b'{"records": []}',
        b'{"records": null}',
        b'[{"records": []}]',
        b'{"records": [{"request_id": "a", "request_id": "b"}]}',
        b'{"records": [{"request_id": "\xff"}]}',
    ],
    ids=["NaN", "empty", "no records", "null", "array", "a name twice", "not UTF-8"],
)
def test_arrow_steps_aside_from_bodies_that_are_not_one_plain_object(raw: bytes) -> None:
    with pytest.raises(Irregular):
        json_table(raw, schema=SCHEMA)


def test_arrow_steps_aside_from_non_finite_numbers_and_a_second_object() -> None:
    body = _plain_body(_plain())
    for bad in (b"NaN", b"Infinity", b"-Infinity"):
        with pytest.raises(Irregular):
            json_table(body.replace(b'"score": 0.075', b'"score": ' + bad, 1), schema=SCHEMA)
    with pytest.raises(Irregular):
        json_table(body + b"\n" + body, schema=SCHEMA)
    with pytest.raises(Irregular):
        json_table(body[:-1] + b', "more": 1}', schema=SCHEMA)


def _upload_frame() -> pd.DataFrame:
    rows = adult_test().iloc[:40].reset_index(drop=True)
    frame = rows[list(SCHEMA)].copy()
    frame.insert(0, "request_id", [f"u{i}" for i in range(len(rows))])
    frame.insert(
        1, "time", pd.Timestamp("2026-12-06T10:00:00Z") + pd.to_timedelta(frame.index, "s")
    )
    frame["prediction"] = [i % 2 for i in range(len(rows))]
    frame["score"] = [i / 40 for i in range(len(rows))]
    frame["context.region"] = ["north", "south"] * 20
    frame.loc[3, "age"] = None  # a gap is a value, kept for the quality monitor
    return pd.concat([frame, frame.iloc[[0]]], ignore_index=True)  # a re-sent id counts once


def test_an_uploaded_table_is_stored_as_the_record_path_stores_it(
    engine: Engine, tmp_path: Path
) -> None:
    frame = _upload_frame()
    slow = adult_deployment(engine, project="slow")
    fast = adult_deployment(engine, project="fast")
    with session_scope(engine) as session:
        log_inferences(
            session=session,
            store=LocalStore(tmp_path),
            deployment=slow,
            records=records_from_frame(frame),
        )
        table = upload_table(
            pa.Table.from_pandas(frame, preserve_index=False), schema=SCHEMA, context_schema={}
        )
        by_column = log_inference_table(
            session=session, store=LocalStore(tmp_path), deployment=fast, table=table
        )
    assert (by_column.accepted, by_column.duplicates) == (40, 1)
    pd.testing.assert_frame_equal(_window(engine, tmp_path, fast), _window(engine, tmp_path, slow))


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(time=f["time"].dt.tz_localize(None)),  # no time zone
        lambda f: f.assign(request_id=range(len(f))),  # the record path keeps "7" as text
        lambda f: f.drop(columns="age"),
        lambda f: f.assign(zodiac="leo"),
        lambda f: f.assign(age="41"),
        lambda f: f.assign(workclass=7),
        lambda f: f.assign(score=[math.inf] * len(f)),
        lambda f: f.assign(prediction=[[1]] * len(f)),
        lambda f: f.assign(request_id=[""] * len(f)),
    ],
    ids=[
        "naive time", "numeric ids", "missing feature", "unknown feature", "text for a number",
        "number for a text", "infinite score", "list prediction", "empty id",
    ],
)  # fmt: skip
def test_an_upload_but_the_plain_shape_steps_aside(change: Callable[[pd.DataFrame], Any]) -> None:
    table = pa.Table.from_pandas(change(_upload_frame()), preserve_index=False)
    with pytest.raises(Irregular):
        upload_table(table, schema=SCHEMA, context_schema={})


def test_request_ids_holding_a_control_character_step_aside_and_no_others() -> None:
    """The byte scan refuses what ``[\\x00-\\x1f\\x7f]`` matches: never a byte of a longer one."""
    check_ids(pa.array(["a", "é-ü", "\u0085x", "日本", "~"]))
    check_ids(pa.array(["x\x07", "fine"]).slice(1))  # only the ids of the slice count
    for bad in ("a\x00", "\x1fb", "c\x7f", "tab\t", "line\n"):
        with pytest.raises(Irregular):
            check_ids(pa.array(["ok", bad, "ok"]))
        frame = _upload_frame()
        frame.loc[0, "request_id"] = bad
        with pytest.raises(Irregular):
            upload_table(
                pa.Table.from_pandas(frame, preserve_index=False), schema=SCHEMA, context_schema={}
            )
