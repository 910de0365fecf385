"""Ingest of inference logs and labels: checked, stored as Parquet partitions, counted once."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lineage.errors import InvalidInput, PayloadTooLarge
from lineage.models import Deployment
from lineage.storage import PARTIAL_PREFIX, LocalStore
from lineage.store import session_scope
from monitors.inferences import (
    MAX_BATCH,
    InferenceRecord,
    LabelRecord,
    log_inference_table,
    log_inferences,
    log_labels,
    partition_key,
    read_window,
)
from monitors.inferences.columnar import json_table
from tests.adult import adult_test
from tests.monitors.serving import SCHEMA, adult_deployment, logged_ids, records


@pytest.fixture
def deployment(engine: Engine) -> Deployment:
    return adult_deployment(engine)


@pytest.fixture
def rows() -> pd.DataFrame:
    return adult_test().iloc[:50]


def _count(engine: Engine, table: str) -> int:
    with session_scope(engine) as session:
        return int(
            session.execute(sa.select(sa.func.count()).select_from(sa.table(table))).one()[0]
        )


def _files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "inferences").rglob("*.parquet")) if data_dir.exists() else []


def _log(
    engine: Engine, data_dir: Path, deployment: Deployment, batch: list[dict[str, Any]]
) -> Any:
    parsed = [InferenceRecord.model_validate(record) for record in batch]
    with session_scope(engine) as session:
        return log_inferences(
            session=session, store=LocalStore(data_dir), deployment=deployment, records=parsed
        )


def _window(engine: Engine, data_dir: Path, deployment: Deployment) -> pd.DataFrame:
    with session_scope(engine) as session:
        frame, _ = read_window(
            session=session, store=LocalStore(data_dir), deployment=deployment, start=None, end=None
        )
    return frame


def _stored(engine: Engine, data_dir: Path) -> tuple[int, int, int]:
    return (
        _count(engine, "monitors_inference_batch"),
        logged_ids(engine),
        len(_files(data_dir)),
    )


def test_a_batch_is_stored_as_one_parquet_partition_and_read_back(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    result = _log(
        engine, tmp_path, deployment, records(rows, predictions=[0] * 50, scores=[0.25] * 50)
    )
    assert (result.accepted, result.duplicates) == (50, 0)
    assert result.batch_id is not None
    path = tmp_path / partition_key(
        project_id=deployment.project_id,
        deployment_id=deployment.id,
        kind="inferences",
        batch_id=result.batch_id,
    )
    assert _files(tmp_path) == [path]
    assert path.relative_to(tmp_path).parts[1:3] == (
        str(deployment.project_id),
        str(deployment.id),
    )
    window = _window(engine, tmp_path, deployment)
    assert len(window) == 50
    assert window["age"].tolist() == rows["age"].astype(float).tolist()
    assert window["sex"].tolist() == rows["sex"].tolist()
    assert window["score"].tolist() == [0.25] * 50
    assert window["label"].isna().all()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["features"].pop("age"), "records[3].features.age"),
        (lambda r: r["features"].update({"zodiac": "leo"}), "records[3].features.zodiac"),
        (
            lambda r: r["features"].update({"hours_per_week": "forty"}),
            "records[3].features.hours_per_week",
        ),
        (
            lambda r: r["features"].update({"capital_gain": True}),
            "records[3].features.capital_gain",
        ),
    ],
    ids=["missing column", "unknown column", "text for a number", "boolean for a number"],
)
def test_a_record_of_the_wrong_structure_is_refused_and_nothing_is_stored(
    engine: Engine,
    tmp_path: Path,
    deployment: Deployment,
    rows: pd.DataFrame,
    change: Any,
    field: str,
) -> None:
    _log(engine, tmp_path, deployment, records(rows.iloc[:5], prefix="ok"))
    before = _stored(engine, tmp_path)
    batch = records(rows)
    change(batch[3])
    with pytest.raises(InvalidInput, match=field.split(".")[-1]) as error:
        _log(engine, tmp_path, deployment, batch)
    assert error.value.field == field
    assert _stored(engine, tmp_path) == before
    assert len(_window(engine, tmp_path, deployment)) == 5


def test_bad_values_in_well_formed_records_are_kept_for_the_quality_monitor(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    batch = records(rows.iloc[:4])
    batch[0]["features"]["age"] = None
    batch[1]["features"]["age"] = math.nan
    batch[2]["features"]["age"] = -400
    batch[3]["features"]["workclass"] = "Astronaut"
    batch[3]["features"]["sex"] = None
    result = _log(engine, tmp_path, deployment, batch)
    assert result.accepted == 4
    window = _window(engine, tmp_path, deployment).set_index("request_id")
    assert pd.isna(window.loc["r0", "age"])
    assert pd.isna(window.loc["r1", "age"])
    assert window.loc["r2", "age"] == -400.0
    assert window.loc["r3", "workclass"] == "Astronaut"
    assert window.loc["r3", "sex"] is None


def test_an_integer_beyond_int64_is_kept_as_the_float_it_approximates(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    huge = 2**80
    batch = records(rows.iloc[:2])
    batch[0]["prediction"] = huge
    batch[1]["prediction"] = 1
    assert _log(engine, tmp_path, deployment, batch).accepted == 2
    window = _window(engine, tmp_path, deployment).set_index("request_id")
    assert window.loc["r0", "prediction"] == float(huge)
    assert LabelRecord(request_id="r0", label=-huge).label == -float(huge)


def test_re_sent_request_ids_are_counted_once(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    first = _log(engine, tmp_path, deployment, records(rows.iloc[:10]))
    assert (first.accepted, first.duplicates) == (10, 0)
    again = records(rows.iloc[:20])
    again.append(dict(again[15]))
    second = _log(engine, tmp_path, deployment, again)
    assert (second.accepted, second.duplicates) == (10, 11)
    everything = _log(engine, tmp_path, deployment, records(rows.iloc[:20]))
    assert (everything.batch_id, everything.accepted, everything.duplicates) == (None, 0, 20)
    window = _window(engine, tmp_path, deployment)
    assert len(window) == 20
    assert window["request_id"].is_unique
    assert logged_ids(engine) == 20


def test_an_id_twice_in_a_fresh_batch_is_stored_once_as_first_sent(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    batch = records(rows.iloc[:5], predictions=[0] * 5)
    batch.insert(2, {**batch[3], "prediction": 1})  # r3 first with 1, then with 0
    result = _log(engine, tmp_path, deployment, batch)
    assert (result.accepted, result.duplicates) == (5, 1)
    window = _window(engine, tmp_path, deployment).set_index("request_id")
    assert sorted(window.index) == [f"r{i}" for i in range(5)]
    assert window.loc["r3", "prediction"] == 1
    assert _stored(engine, tmp_path) == (1, 5, 1)


def test_batches_are_bounded_and_never_empty(
    engine: Engine, tmp_path: Path, deployment: Deployment
) -> None:
    one = InferenceRecord.model_validate(records(adult_test().iloc[:1])[0])
    too_many = [one.model_copy(update={"request_id": f"x{i}"}) for i in range(MAX_BATCH + 1)]
    with session_scope(engine) as session, pytest.raises(PayloadTooLarge, match="at most 10,000"):
        log_inferences(
            session=session, store=LocalStore(tmp_path), deployment=deployment, records=too_many
        )
    with session_scope(engine) as session, pytest.raises(InvalidInput, match="empty"):
        log_inferences(
            session=session, store=LocalStore(tmp_path), deployment=deployment, records=[]
        )
    assert _stored(engine, tmp_path) == (0, 0, 0)


def test_labels_join_by_request_id_and_the_first_label_wins(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    _log(engine, tmp_path, deployment, records(rows.iloc[:6], predictions=[1] * 6))
    with session_scope(engine) as session:
        first = log_labels(
            session=session,
            store=LocalStore(tmp_path),
            deployment=deployment,
            labels=[LabelRecord(request_id=f"r{i}", label=i % 2) for i in range(4)],
        )
    assert (first.accepted, first.duplicates) == (4, 0)
    with session_scope(engine) as session:
        again = log_labels(
            session=session,
            store=LocalStore(tmp_path),
            deployment=deployment,
            labels=[LabelRecord(request_id="r0", label=1), LabelRecord(request_id="r5", label=1)],
        )
    assert (again.accepted, again.duplicates) == (1, 1)
    window = _window(engine, tmp_path, deployment).set_index("request_id")
    assert window.loc["r0", "label"] == 0
    assert window.loc["r1", "label"] == 1
    assert window.loc["r5", "label"] == 1
    assert pd.isna(window.loc["r4", "label"])


def _label(
    engine: Engine, data_dir: Path, deployment: Deployment, labels: dict[str, int] | list[Any]
) -> Any:
    pairs = labels.items() if isinstance(labels, dict) else labels
    with session_scope(engine) as session:
        return log_labels(
            session=session,
            store=LocalStore(data_dir),
            deployment=deployment,
            labels=[LabelRecord(request_id=i, label=v) for i, v in pairs],
        )


def test_a_label_sent_twice_in_one_batch_is_stored_once_as_first_sent(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    _log(engine, tmp_path, deployment, records(rows.iloc[:4]))
    result = _label(engine, tmp_path, deployment, [("r1", 1), ("r2", 0), ("r1", 0)])
    assert (result.accepted, result.duplicates) == (2, 1)
    repeat = _label(engine, tmp_path, deployment, {"r2": 1, "r1": 0})  # labelled before
    assert (repeat.batch_id, repeat.accepted, repeat.duplicates) == (None, 0, 2)
    window = _window(engine, tmp_path, deployment).set_index("request_id")
    assert (window.loc["r1", "label"], window.loc["r2", "label"]) == (1, 0)
    assert (logged_ids(engine, "labels"), logged_ids(engine)) == (2, 4)


def test_label_batches_rolled_back_leave_no_labelled_ids_behind(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    """The second batch sees the first's labels; after the rollback neither counts, no file."""
    _log(engine, tmp_path, deployment, records(rows.iloc[:5]))
    seen: list[tuple[int, int]] = []

    def label_both_then_fail() -> None:
        with session_scope(engine) as session:
            for ids in (["r0", "r1", "r2"], ["r1", "r2", "r3", "r4"]):
                stored = log_labels(
                    session=session,
                    store=LocalStore(tmp_path),
                    deployment=deployment,
                    labels=[LabelRecord(request_id=i, label=1) for i in ids],
                )
                seen.append((stored.accepted, stored.duplicates))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        label_both_then_fail()
    assert seen == [(3, 0), (2, 2)]
    assert logged_ids(engine, "labels") == 0
    assert not list((tmp_path / "inferences").rglob("labels/*.parquet"))
    again = _label(engine, tmp_path, deployment, {f"r{i}": 0 for i in range(5)})
    assert (again.accepted, again.duplicates) == (5, 0)


def test_a_label_for_an_unknown_request_id_is_refused_and_nothing_is_stored(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    _log(engine, tmp_path, deployment, records(rows.iloc[:3]))
    labels = [LabelRecord(request_id="r0", label=1), LabelRecord(request_id="nope", label=0)]
    with (
        session_scope(engine) as session,
        pytest.raises(InvalidInput, match="never logged") as error,
    ):
        log_labels(
            session=session, store=LocalStore(tmp_path), deployment=deployment, labels=labels
        )
    assert error.value.field == "labels[1].request_id"
    assert logged_ids(engine, "labels") == 0
    assert not list((tmp_path / "inferences").rglob("labels/*.parquet"))


def test_concurrent_batches_sharing_request_ids_store_each_id_once(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    batches = [records(rows.iloc[:30]), records(rows.iloc[:45])[::-1]]  # r0…r29 in both
    start = threading.Barrier(2)
    results: list[Any] = []

    def log(batch: list[dict[str, Any]]) -> None:
        start.wait()
        results.append(_log(engine, tmp_path, deployment, batch))

    workers = [threading.Thread(target=log, args=(batch,)) for batch in batches]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(r.accepted + r.duplicates for r in results) == [30, 45]
    assert sum(r.accepted for r in results) == 45
    window = _window(engine, tmp_path, deployment)
    assert len(window) == 45
    assert window["request_id"].is_unique
    stored = sum(1 for r in results if r.accepted)  # the 30 may all have come second
    assert _stored(engine, tmp_path) == (stored, 45, stored)


def test_concurrent_identical_column_batches_are_stored_once(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    """The columnar path (JSON parsed by Arrow, Parquet uploads): one of two uploads wins whole."""
    body = json.dumps({"records": records(rows.dropna())}).encode()
    table = json_table(body, schema=SCHEMA)
    start = threading.Barrier(2)
    results: list[Any] = []

    def upload() -> None:
        start.wait()
        with session_scope(engine) as session:
            results.append(
                log_inference_table(
                    session=session, store=LocalStore(tmp_path), deployment=deployment, table=table
                )
            )

    workers = [threading.Thread(target=upload) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rows_sent = table.num_rows
    assert sorted((r.accepted, r.duplicates) for r in results) == [(0, rows_sent), (rows_sent, 0)]
    assert _stored(engine, tmp_path) == (1, rows_sent, 1)
    assert len(_window(engine, tmp_path, deployment)) == rows_sent


@pytest.mark.parametrize("kept", [False, True], ids=["records", "an upload kept as it came"])
def test_a_batch_whose_transaction_rolls_back_leaves_no_row_and_no_file(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame, kept: bool
) -> None:
    from monitors.inferences.ingest import log_inference_upload
    from monitors.inferences.kept import kept_upload
    from monitors.table_files import TableLimits
    from tests.api.test_inferences_routes import _partition_file

    parsed = [InferenceRecord.model_validate(record) for record in records(rows.iloc[:5])]
    upload = kept_upload(
        _partition_file([f"r{i}" for i in range(5)]),
        schema=SCHEMA,
        context_schema={},
        limits=TableLimits(),
        shaped=lambda: pytest.fail("every id is new"),
    )
    assert upload is not None
    written: list[int] = []

    def log_then_fail() -> None:
        with session_scope(engine) as session:
            if kept:  # written on another thread while the ids are claimed
                log_inference_upload(
                    session=session,
                    store=LocalStore(tmp_path),
                    deployment=deployment,
                    upload=upload,
                )
            else:
                log_inferences(
                    session=session,
                    store=LocalStore(tmp_path),
                    deployment=deployment,
                    records=parsed,
                )
            written.append(len(_files(tmp_path)))
            raise RuntimeError("the audit entry failed after the write")

    with pytest.raises(RuntimeError, match="after the write"):
        log_then_fail()
    assert written == [1]
    assert _stored(engine, tmp_path) == (0, 0, 0)
    # Partial files are named .partial-<hex>-<name> (lineage.storage.PARTIAL_PREFIX).
    assert not [path for path in tmp_path.rglob("*") if path.name.startswith(PARTIAL_PREFIX)]
    assert _log(engine, tmp_path, deployment, records(rows.iloc[:5])).accepted == 5


def test_ids_whose_hashes_collide_are_told_apart_by_the_ids_themselves(
    engine: Engine,
    tmp_path: Path,
    deployment: Deployment,
    rows: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hash hit is checked on the stored ids: every id hashing alike loses no record."""
    import numpy as np

    import monitors.inferences.runs as runs

    monkeypatch.setattr(runs, "id_hashes", lambda ids: np.zeros(len(ids), dtype=np.uint64))
    first = _log(engine, tmp_path, deployment, records(rows.iloc[:10]))  # r0…r9
    resent = [*records(rows.iloc[:15])[5:], *records(rows.iloc[:2])]  # r5…r14, r0, r1
    again = _log(engine, tmp_path, deployment, resent)
    assert (first.accepted, again.accepted, again.duplicates) == (10, 5, 7)
    assert sorted(_window(engine, tmp_path, deployment)["request_id"]) == sorted(
        f"r{i}" for i in range(15)
    )


def test_ids_sent_twice_among_colliding_hashes_are_stored_once_as_first_sent(
    engine: Engine,
    tmp_path: Path,
    deployment: Deployment,
    rows: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Equal hashes in one batch are told apart by the ids; the first of each id is kept."""
    import numpy as np

    import monitors.inferences.runs as runs

    monkeypatch.setattr(runs, "id_hashes", lambda ids: np.zeros(len(ids), dtype=np.uint64))
    sent = records(rows.iloc[:4], predictions=[0, 0, 0, 0])  # r0…r3
    batch = [sent[2], sent[0], {**sent[2], "prediction": 1}, sent[1], {**sent[0], "prediction": 1}]
    result = _log(engine, tmp_path, deployment, batch)
    assert (result.accepted, result.duplicates) == (3, 2)
    window = _window(engine, tmp_path, deployment).set_index("request_id")
    assert sorted(window.index) == ["r0", "r1", "r2"]
    assert window["prediction"].tolist() == [0, 0, 0]


def test_two_batches_in_one_rolled_back_transaction_leave_no_ids_behind(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    """The second batch sees the first's ids; after the rollback neither counts as logged."""
    first = [InferenceRecord.model_validate(r) for r in records(rows.iloc[:5])]  # r0…r4
    second = [InferenceRecord.model_validate(r) for r in records(rows.iloc[:8])[3:]]  # r3…r7
    seen: list[tuple[int, int]] = []

    def log_both_then_fail() -> None:
        with session_scope(engine) as session:
            for batch in (first, second):
                stored = log_inferences(
                    session=session,
                    store=LocalStore(tmp_path),
                    deployment=deployment,
                    records=batch,
                )
                seen.append((stored.accepted, stored.duplicates))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        log_both_then_fail()
    assert seen == [(5, 0), (3, 2)]
    assert _stored(engine, tmp_path) == (0, 0, 0)
    assert _log(engine, tmp_path, deployment, records(rows.iloc[:8])[3:]).accepted == 5
    assert _log(engine, tmp_path, deployment, records(rows.iloc[:5])).accepted == 3


def test_a_process_keeps_12_bytes_per_stored_id_of_each_kind(
    engine: Engine, tmp_path: Path, deployment: Deployment, rows: pd.DataFrame
) -> None:
    """The memory docs/monitors.md states: an 8-byte hash and a 4-byte place of its run."""
    from monitors.inferences import runs
    from monitors.inferences.partitions import BatchKind

    kinds: tuple[BatchKind, ...] = ("inferences", "labels")
    _log(engine, tmp_path, deployment, records(rows.iloc[:10]))
    _log(engine, tmp_path, deployment, records(rows.iloc[:30])[5:])  # r5…r29
    _label(engine, tmp_path, deployment, {f"r{i}": 1 for i in range(7)})
    with session_scope(engine) as session:
        kept = {
            kind: sum(
                hashes.nbytes + places.nbytes
                for hashes, places in runs._refresh(session, kind, deployment.id).levels
            )
            for kind in kinds
        }
    assert kept == {"inferences": 12 * 30, "labels": 12 * 7}


def test_runs_past_the_memory_budget_are_dropped_and_read_back_exactly(
    engine: Engine,
    tmp_path: Path,
    deployment: Deployment,
    rows: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no budget only the runs last checked stay; dropped ones are re-read when needed."""
    from monitors.inferences import runs

    monkeypatch.setattr(runs, "_BUDGET", [0])

    def held() -> set[str]:
        return {kind for _, kind, owner in runs._CACHE if owner == deployment.id}

    assert _log(engine, tmp_path, deployment, records(rows.iloc[:10])).accepted == 10
    assert held() == {"inferences"}  # the runs last checked stay, whatever the budget
    _label(engine, tmp_path, deployment, {"r0": 1})
    assert held() == {"labels"}  # the inference runs were dropped
    again = _log(engine, tmp_path, deployment, records(rows.iloc[:15])[5:])  # r5…r14
    assert (again.accepted, again.duplicates) == (5, 5)
    assert held() == {"inferences"}
    assert _label(engine, tmp_path, deployment, {"r0": 0, "r1": 1}).accepted == 1
    assert logged_ids(engine) == 15


def test_runs_merged_after_a_commit_find_what_they_found_before() -> None:
    """Merging levels in the background changes how many searches a check takes, not its answer."""
    import numpy as np

    from monitors.inferences import runs

    rng = np.random.default_rng(7)
    memory = runs._Runs()
    batches = [np.sort(rng.integers(0, 2**63, size, dtype=np.uint64)) for size in (40, 30, 20, 5)]
    for seq, hashes in enumerate(batches, start=1):
        memory.add(hashes, seq, merge=False)
    probe = np.concatenate([batches[1][:3], batches[3][-2:], rng.integers(0, 2**63, 4, np.uint64)])
    before = {seq: found.tolist() for seq, found in memory.hits(probe).items()}
    assert before == {2: [0, 1, 2], 4: [3, 4]}
    memory.compact()
    assert len(memory.levels) == 1
    assert {seq: found.tolist() for seq, found in memory.hits(probe).items()} == before


def test_a_run_is_stored_sorted_and_compact_however_its_ids_come() -> None:
    """Ids already in hash order are stored as they are; a slice or any other order is taken."""
    import pyarrow as pa

    from monitors.inferences.runs import id_hashes, run_columns, run_ids

    ids = pa.array(["b", "a", "c", "dd", "eee"])
    ordered = ids.take(pa.array(id_hashes(ids).argsort(kind="stable")))
    stored = run_columns(ordered)
    assert run_columns(ids) == stored
    assert run_ids(**stored).to_pylist() == ordered.to_pylist()
    part = run_columns(ordered.slice(1, 3))
    assert run_ids(**part).to_pylist() == ordered.to_pylist()[1:4]
    assert len(part["ids"]) == sum(len(text) for text in ordered.to_pylist()[1:4])
    assert part["offsets"][:4] == b"\0\0\0\0"


@pytest.mark.parametrize(
    "ids",
    [["a", "bb", "ccc", "é"], ["0f8e-4a", "9c1d-7b", "ffff-ff"]],
    ids=["lengths differ", "one length"],
)
def test_id_hashes_are_64_bit_fnv_1a_of_the_utf8_bytes(ids: list[str]) -> None:
    """The stored hashes: the same whichever way the ids' lengths make them computed."""
    import pyarrow as pa

    from monitors.inferences.runs import id_hashes

    def fnv_1a(text: str) -> int:
        value = 0xCBF29CE484222325
        for byte in text.encode():
            value = ((value ^ byte) * 0x100000001B3) % 2**64
        return value

    column = pa.array(["pad", *ids])
    assert id_hashes(column.slice(1)).tolist() == [fnv_1a(text) for text in ids]
