"""Inference logging, labels, uploads and baselines over HTTP: gates, audit, bad input."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.settings import Settings
from governance.roles import Role
from lineage.models import Deployment
from lineage.projects import Project
from lineage.store import session_scope
from tests.adult import FEATURES, TARGET, adult_test
from tests.conftest import Issued
from tests.lineage.openlineage_spec import assert_spec_event
from tests.monitors.serving import adult_deployment, dataset_version, logged_ids, records
from tests.monitors.test_table_files import parquet_bomb

Make = Callable[..., Issued]
BASE = "/api/v1/projects/acme"


@pytest.fixture
def scientist(make_principal: Make) -> Issued:
    return make_principal(role=Role.DATA_SCIENTIST, project="acme")


@pytest.fixture
def deployment(
    engine: Engine, scientist: Issued, make_project: Callable[[str], Project]
) -> Deployment:
    return adult_deployment(engine, project_id=make_project("acme").id)


@pytest.fixture
def rows() -> pd.DataFrame:
    return adult_test().iloc[:30]


def _count(engine: Engine, table: str) -> int:
    with session_scope(engine) as session:
        query = sa.select(sa.func.count()).select_from(sa.table(table))
        return int(session.execute(query).scalar_one())


def _stored(engine: Engine, settings: Settings) -> tuple[int, int, int]:
    files = len(list((settings.data_dir / "inferences").rglob("*.parquet")))
    return (
        _count(engine, "monitors_inference_batch"),
        logged_ids(engine),
        files,
    )


def _audit(engine: Engine) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        found = session.execute(
            sa.text("SELECT action, detail FROM governance_audit_entry ORDER BY seq")
        )
        return [(row[0], str(row[1])) for row in found]


def _url(deployment: Deployment, what: str = "inferences") -> str:
    return f"{BASE}/deployments/{deployment.id}/{what}"


def test_a_batch_is_logged_and_audited_once_with_counts_not_data(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    rows: pd.DataFrame,
) -> None:
    batch = records(rows, predictions=[0] * 30, scores=[0.1] * 30)
    answer = client.post(_url(deployment), json={"records": batch}, headers=scientist.headers)
    assert answer.status_code == 201, answer.text
    assert answer.json()["accepted"] == 30
    assert answer.json()["max_batch"] == 10_000
    again = client.post(_url(deployment), json={"records": batch[:10]}, headers=scientist.headers)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 10)
    entries = [entry for entry in _audit(engine) if entry[0] == "inference.log"]
    assert len(entries) == 2
    assert '"accepted":30' in entries[0][1]
    assert "Private" not in entries[0][1]
    assert logged_ids(engine) == 30
    (stored,) = (settings.data_dir / "inferences").rglob("*.parquet")
    digests = [json.loads(detail)["after"]["sha256"] for _, detail in entries]
    assert digests == [hashlib.sha256(stored.read_bytes()).hexdigest(), None]


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        (lambda b: b[3]["features"].pop("age"), "records[3].features.age", 422),
        (lambda b: b[3]["features"].update(zodiac="leo"), "records[3].features.zodiac", 422),
        (lambda b: b[3]["features"].update(age="old"), "records[3].features.age", 422),
        (lambda b: b[3].update(colour="red"), "records.3.colour", 422),
        (lambda b: b[3].pop("request_id"), "records.3.request_id", 422),
        (lambda b: b[3].update(request_id="r\x003"), "records.3.request_id", 422),
        (
            lambda b: b.extend([{**b[0], "request_id": f"x{i}"} for i in range(10_000)]),
            "records",
            413,
        ),
    ],
    ids=[
        "missing column",
        "unknown column",
        "wrong type",
        "unknown field",
        "no id",
        "NUL in id",  # PostgreSQL refuses NUL in text: it was a 500 there
        "too many",
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    rows: pd.DataFrame,
    change: Callable[[list[dict[str, Any]]], Any],
    field: str,
    status: int,
) -> None:
    client.post(
        _url(deployment), json={"records": records(rows, prefix="ok")}, headers=scientist.headers
    )
    before = (_stored(engine, settings), len(_audit(engine)))
    batch = records(rows.dropna())  # no null feature: Arrow's parse of the bytes is tried first
    change(batch)
    answer = client.post(_url(deployment), json={"records": batch}, headers=scientist.headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    assert (_stored(engine, settings), len(_audit(engine))) == before


def test_logging_needs_inference_write_and_a_deployment_of_the_project(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    make_principal: Make,
    deployment: Deployment,
    rows: pd.DataFrame,
) -> None:
    viewer = make_principal(role=Role.VIEWER, project="acme")
    body = {"records": records(rows)}
    assert client.post(_url(deployment), json=body, headers=viewer.headers).status_code == 403
    other = make_principal(role=Role.DATA_SCIENTIST, project="other")
    answer = client.post(
        f"/api/v1/projects/other/deployments/{deployment.id}/inferences",
        json=body,
        headers=other.headers,
    )
    assert answer.status_code == 404
    assert _stored(engine, settings) == (0, 0, 0)


def test_labels_are_logged_by_request_id_and_unknown_ids_refused(
    client: TestClient,
    engine: Engine,
    scientist: Issued,
    deployment: Deployment,
    rows: pd.DataFrame,
) -> None:
    client.post(_url(deployment), json={"records": records(rows)}, headers=scientist.headers)
    labels = [{"request_id": f"r{i}", "label": int(v)} for i, v in enumerate(rows[TARGET])]
    answer = client.post(
        _url(deployment, "labels"), json={"labels": labels}, headers=scientist.headers
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["accepted"] == 30
    bad = [{"request_id": "r1", "label": 1}, {"request_id": "ghost", "label": 0}]
    refused = client.post(
        _url(deployment, "labels"), json={"labels": bad}, headers=scientist.headers
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "labels[1].request_id"
    nul = client.post(
        _url(deployment, "labels"),
        json={"labels": [{"request_id": "r\x001", "label": 1}]},
        headers=scientist.headers,
    )
    assert nul.status_code == 422
    assert nul.json()["field"] == "labels.0.request_id"
    assert logged_ids(engine, "labels") == 30
    assert [a for a, _ in _audit(engine)].count("inference.label") == 1


@pytest.mark.parametrize("kind", ["csv", "parquet", "pq", "csv.gz"])
def test_batch_scoring_output_is_uploaded_as_csv_or_parquet(
    client: TestClient,
    engine: Engine,
    scientist: Issued,
    deployment: Deployment,
    rows: pd.DataFrame,
    kind: str,
) -> None:
    table = rows[FEATURES].assign(request_id=[f"u{i}" for i in range(len(rows))], prediction=0)
    buffer = io.BytesIO()
    if kind == "csv":
        table.to_csv(buffer, index=False)
    elif kind == "csv.gz":
        buffer.write(gzip.compress(table.to_csv(index=False).encode()))
    else:
        table.to_parquet(buffer, index=False)
    answer = client.post(
        _url(deployment, "inferences/upload"),
        files={"file": (f"scores.{kind}", buffer.getvalue(), "application/octet-stream")},
        headers=scientist.headers,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["accepted"] == len(rows)
    assert logged_ids(engine) == len(rows)
    wrong = client.post(
        _url(deployment, "inferences/upload"),
        files={"file": ("scores.txt", b"hello", "text/plain")},
        headers=scientist.headers,
    )
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "file"


def test_baselines_are_built_only_from_files_inside_the_data_directory(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    tmp_path: Path,
) -> None:
    train = adult_test().iloc[:3000][[*FEATURES, TARGET]]
    outside = tmp_path / "outside.csv"
    train.to_csv(outside, index=False)
    (settings.data_dir / "datasets").mkdir()
    train.to_csv(settings.data_dir / "datasets" / "train.csv", index=False)
    for uri in (str(outside), "../outside.csv", "s3://bucket/train.csv"):
        version = dataset_version(engine, deployment.project_id, uri)
        body = {"deployment_id": str(deployment.id), "dataset_version_id": str(version)}
        refused = client.post(f"{BASE}/baselines", json=body, headers=scientist.headers)
        assert refused.status_code == 422, uri
        assert refused.json()["field"] == "dataset_version_id"
        with session_scope(engine) as session:
            session.execute(sa.text("DELETE FROM lineage_dataset_version"))
            session.execute(sa.text("DELETE FROM lineage_dataset"))
    assert _count(engine, "monitors_baseline") == 0

    version = dataset_version(engine, deployment.project_id, "datasets/train.csv")
    body = {
        "deployment_id": str(deployment.id),
        "dataset_version_id": str(version),
        "label_column": TARGET,
    }
    created = client.post(f"{BASE}/baselines", json=body, headers=scientist.headers)
    assert created.status_code == 201, created.text
    baseline = created.json()
    assert baseline["rows"] == 3000
    assert set(baseline["columns"]) == {*FEATURES, "label"}
    listed = client.get(
        f"{BASE}/baselines", params={"deployment_id": str(deployment.id)}, headers=scientist.headers
    )
    assert [b["id"] for b in listed.json()] == [baseline["id"]]
    assert "baseline.create" in [a for a, _ in _audit(engine)]
    by_name = client.post(
        f"{BASE}/baselines",
        params={"environment": deployment.environment},
        json={**body, "deployment_id": deployment.name},
        headers=scientist.headers,
    )
    assert by_name.status_code == 201, by_name.text
    assert by_name.json()["deployment_id"] == str(deployment.id)
    listed = client.get(
        f"{BASE}/baselines",
        params={"deployment_id": deployment.name, "environment": deployment.environment},
        headers=scientist.headers,
    )
    assert [b["id"] for b in listed.json()] == [by_name.json()["id"], baseline["id"]]
    unknown = client.post(
        f"{BASE}/baselines",
        json={**body, "deployment_id": "no-such-api"},
        headers=scientist.headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "deployment_id"
    assert _count(engine, "monitors_baseline") == 2
    missing = client.post(
        f"{BASE}/baselines", json={**body, "label_column": "salary"}, headers=scientist.headers
    )
    assert missing.status_code == 422
    assert missing.json()["field"] == "label_column"


def test_a_reference_can_be_uploaded_and_is_recorded_in_lineage(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
) -> None:
    train = adult_test().iloc[:2000][[*FEATURES, TARGET]]
    buffer = io.BytesIO()
    train.to_parquet(buffer, index=False)
    form = {"deployment_id": str(deployment.id), "label_column": TARGET}
    created = client.post(
        f"{BASE}/baselines/upload",
        data=form,
        files={"file": ("train.parquet", buffer.getvalue(), "application/octet-stream")},
        headers=scientist.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["rows"] == 2000
    stored = list((settings.data_dir / "references").rglob("*.parquet"))
    assert len(stored) == 1
    assert pd.read_parquet(stored[0]).equals(train.reset_index(drop=True))
    with session_scope(engine) as session:
        uri = session.execute(sa.text("SELECT uri FROM lineage_dataset_version")).scalar_one()
        [body] = session.execute(sa.text("SELECT body FROM lineage_event")).scalars().all()
    assert uri == stored[0].relative_to(settings.data_dir).as_posix()
    assert_spec_event(json.loads(body))
    empty = client.post(
        f"{BASE}/baselines/upload",
        data=form,
        files={"file": ("train.txt", b"x", "text/plain")},
        headers=scientist.headers,
    )
    assert empty.status_code == 422
    assert empty.json()["field"] == "file"


@pytest.mark.parametrize(
    ("where", "literal", "field"),
    [
        (("features", "age"), "NaN", "records.3.features.age"),
        (("features", "hours_per_week"), "Infinity", "records.3.features.hours_per_week"),
        (("score",), "-Infinity", "records.3.score"),
    ],
    ids=["NaN", "Infinity", "-Infinity"],
)
def test_json_nan_and_infinity_are_refused_at_the_door_naming_the_field(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    rows: pd.DataFrame,
    where: tuple[str, ...],
    literal: str,
    field: str,
) -> None:
    plain = rows.dropna()  # no null feature: Arrow's parse of the bytes is tried first
    batch = records(plain, scores=[0.5] * len(plain))
    target = batch[3]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = "__LITERAL__"
    body = json.dumps({"records": batch}).replace('"__LITERAL__"', literal)
    answer = client.post(
        _url(deployment),
        content=body,
        headers={**scientist.headers, "content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    assert _stored(engine, settings) == (0, 0, 0)


def test_an_uploaded_infinity_is_refused_too(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    rows: pd.DataFrame,
) -> None:
    table = rows[FEATURES].assign(request_id=[f"u{i}" for i in range(len(rows))], prediction=0)
    table["age"] = table["age"].astype("float64")
    table.loc[table.index[2], "age"] = float("inf")
    answer = client.post(
        _url(deployment, "inferences/upload"),
        files={"file": ("scores.csv", table.to_csv(index=False).encode(), "text/csv")},
        headers=scientist.headers,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "records.2.features.age"
    assert _stored(engine, settings) == (0, 0, 0)


def _files(settings: Settings) -> set[Path]:
    return {path for path in settings.data_dir.rglob("*") if path.is_file()}


def _rows(engine: Engine) -> tuple[int, ...]:
    tables = ("monitors_baseline", "lineage_dataset_version", "monitors_inference_batch")
    return tuple(_count(engine, table) for table in tables)


def test_a_parquet_bomb_is_refused_by_its_footer_on_both_uploads(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
) -> None:
    bomb = parquet_bomb()
    files, rows = _files(settings), _rows(engine)
    tracemalloc.start()
    try:
        inferences = client.post(
            _url(deployment, "inferences/upload"),
            files={"file": ("scores.parquet", bomb, "application/octet-stream")},
            headers=scientist.headers,
        )
        as_body = client.post(
            _url(deployment, "inferences/upload"),
            content=bomb,
            headers={**scientist.headers, "content-type": "application/vnd.apache.parquet"},
        )
        baseline = client.post(
            f"{BASE}/baselines/upload",
            data={"deployment_id": str(deployment.id)},
            files={"file": ("train.parquet", bomb, "application/octet-stream")},
            headers=scientist.headers,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
    for answer, field in ((inferences, "file"), (as_body, "body"), (baseline, "file")):
        # all bounded by the table limits, not MAX_BATCH
        assert answer.status_code == 413, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == field
        assert "20,000,000 rows; at most 2,000,000 are accepted" in answer.json()["detail"]
    assert (_files(settings), _rows(engine)) == (files, rows)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _hostile(kind: str) -> tuple[str, bytes, dict[str, str]]:
    train = adult_test().iloc[:200][[*FEATURES, TARGET]]
    whole = _parquet_bytes(train)
    if kind == "malformed parquet":
        return "train.parquet", b"PAR1" + b"\x13\x37" * 500 + b"PAR1", {}
    if kind == "truncated parquet":
        return "train.parquet", whole[: len(whole) // 2], {}
    if kind == "binary csv":
        return "train.csv", bytes(range(256)) * 64, {}
    return "train.pq", whole, {"label_column": "salary"}


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("malformed parquet", "file"),
        ("truncated parquet", "file"),
        ("binary csv", "file"),
        ("readable but a column missing", "label_column"),
    ],
)
def test_a_hostile_baseline_upload_is_a_problem_that_leaves_nothing_behind(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    kind: str,
    field: str,
) -> None:
    name, content, form = _hostile(kind)
    files, rows = _files(settings), _rows(engine)
    answer = client.post(
        f"{BASE}/baselines/upload",
        data={"deployment_id": str(deployment.id), **form},
        files={"file": (name, content, "application/octet-stream")},
        headers=scientist.headers,
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    assert (_files(settings), _rows(engine)) == (files, rows)
    assert "baseline.create" not in [action for action, _ in _audit(engine)]


def test_a_parquet_bomb_in_the_data_directory_is_refused_as_a_reference(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
) -> None:
    (settings.data_dir / "datasets").mkdir()
    (settings.data_dir / "datasets" / "bomb.parquet").write_bytes(parquet_bomb())
    version = dataset_version(engine, deployment.project_id, "datasets/bomb.parquet")
    body = {"deployment_id": str(deployment.id), "dataset_version_id": str(version)}
    answer = client.post(f"{BASE}/baselines", json=body, headers=scientist.headers)
    assert answer.status_code == 413, answer.text
    assert answer.json()["field"] == "dataset_version_id"
    assert "20,000,000 rows; at most 2,000,000" in answer.json()["detail"]
    assert _count(engine, "monitors_baseline") == 0


@dataclass(frozen=True)
class _Refused:
    """A baseline request refused for a reference in a bucket, measured."""

    answer: Any
    peak: int
    objects: list[str]
    files_before: set[Path]


def _baseline_from_bucket(
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    *,
    name: str,
    content: bytes,
    max_bytes: int | None = None,
) -> _Refused:
    """Put ``content`` in a bucket (moto's server on 127.0.0.1) as a dataset version's
    reference, ask for a baseline from it twice (the first answer imports the route's modules),
    and measure the second request's peak Python allocation."""
    from api.app import create_app
    from tests.s3 import artifacts_in_bucket, moto_server

    limited = (
        settings
        if max_bytes is None
        else settings.model_copy(update={"table_max_bytes": max_bytes})
    )
    with moto_server() as endpoint:
        in_s3 = artifacts_in_bucket(monkeypatch, endpoint, limited, "warden-references")
        store = in_s3.artifact_store()
        store.put(f"datasets/{name}", content)
        uri = f"s3://warden-references/prod/datasets/{name}"
        version = dataset_version(engine, deployment.project_id, uri)
        body = {"deployment_id": str(deployment.id), "dataset_version_id": str(version)}
        with TestClient(create_app(in_s3, engine=engine)) as client:
            warm = client.post(f"{BASE}/baselines", json=body, headers=scientist.headers)
            assert warm.status_code == 413, warm.text
            files = _files(settings)  # the app's own keys, written when it started
            tracemalloc.start()
            try:
                answer = client.post(f"{BASE}/baselines", json=body, headers=scientist.headers)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        return _Refused(answer, peak, store.list(), files)


def test_an_oversized_reference_in_a_bucket_is_refused_by_its_footer_before_download(
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WARDEN_ARTIFACT_URL=s3://…: a Parquet reference of one row too many, 16 MB of
    incompressible values, is refused with the local answer (413) while the request's Python
    allocations stay far below the object's size: only its footer was fetched."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    values = np.random.default_rng(0).random(2_000_001)
    pq.write_table(pa.table({"age": values}), buffer, compression="none")
    reference = buffer.getvalue()
    refused = _baseline_from_bucket(
        engine,
        settings,
        scientist,
        deployment,
        monkeypatch,
        name="train.parquet",
        content=reference,
    )
    answer = refused.answer
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "dataset_version_id"
    assert "2,000,001 rows; at most 2,000,000" in answer.json()["detail"]
    assert refused.peak < len(reference) // 4, refused.peak
    assert refused.objects == ["datasets/train.parquet"]
    assert _count(engine, "monitors_baseline") == 0
    assert _files(settings) == refused.files_before


@pytest.mark.parametrize("name", ["train.csv", "train.csv.gz"])
def test_an_oversized_csv_reference_in_a_bucket_is_refused_by_its_size_before_download(
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    """A CSV reference in a bucket beyond the byte bound is refused by the size the bucket
    lists, before download: the request's Python allocations stay far below the object's size.
    Gzipped, its compressed size counts, less deflate's framing (inflating would have stopped
    at the bound and named a smaller size)."""
    import base64
    import os

    lines = [base64.b64encode(os.urandom(60)).decode() for _ in range(50_000)]
    text = ("age\n" + "\n".join(lines) + "\n").encode()
    content = gzip.compress(text) if name.endswith(".gz") else text
    refused = _baseline_from_bucket(
        engine, settings, scientist, deployment, monkeypatch,
        name=name, content=content, max_bytes=200_000,
    )  # fmt: skip
    answer = refused.answer
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "dataset_version_id"
    assert refused.peak < len(content) // 4, refused.peak
    assert f"holds {len(content):,} bytes" in answer.json()["detail"]
    assert "at most 200,000" in answer.json()["detail"]
    assert _count(engine, "monitors_baseline") == 0


def test_a_deployment_is_addressed_by_name_as_well_as_by_id(
    client: TestClient,
    engine: Engine,
    scientist: Issued,
    deployment: Deployment,
    rows: pd.DataFrame,
) -> None:
    by_name = f"{BASE}/deployments/{deployment.name}"
    env = {"environment": deployment.environment}
    logged = client.post(
        f"{by_name}/inferences",
        params=env,
        json={"records": records(rows)},
        headers=scientist.headers,
    )
    assert logged.status_code == 201, logged.text
    assert logged.json()["accepted"] == 30
    labels = [{"request_id": f"r{i}", "label": int(v)} for i, v in enumerate(rows[TARGET])]
    labelled = client.post(
        f"{by_name}/labels", params=env, json={"labels": labels}, headers=scientist.headers
    )
    assert labelled.status_code == 201, labelled.text
    again = client.post(  # the same rows by id: the same deployment, counted once
        _url(deployment), json={"records": records(rows)}, headers=scientist.headers
    )
    assert again.json()["duplicates"] == 30
    elsewhere = client.post(
        f"{by_name}/inferences",
        params={"environment": "nowhere"},
        json={"records": records(rows)},
        headers=scientist.headers,
    )
    assert elsewhere.status_code == 404
    assert "nothing is live under deployment" in elsewhere.json()["detail"]


def test_a_multiclass_reference_is_calibrated_for_estimation_or_refused_naming_the_field(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
) -> None:
    rng = np.random.default_rng(0)
    reference = adult_test().iloc[:3000][FEATURES].reset_index(drop=True)
    probabilities = rng.dirichlet([0.5, 0.5, 0.5], len(reference))
    classes = np.array(["low", "mid", "high"])
    reference = reference.assign(
        tier=[classes[rng.choice(3, p=p)] for p in probabilities],
        predicted=classes[probabilities.argmax(axis=1)],
        p_low=probabilities[:, 0], p_mid=probabilities[:, 1], p_high=probabilities[:, 2],
    )  # fmt: skip
    (settings.data_dir / "datasets").mkdir()
    reference.to_csv(settings.data_dir / "datasets" / "tiers.csv", index=False)
    version = dataset_version(engine, deployment.project_id, "datasets/tiers.csv")
    body = {
        "deployment_id": str(deployment.id), "dataset_version_id": str(version),
        "label_column": "tier", "prediction_column": "predicted",
    }  # fmt: skip
    wrong = {**body, "probability_columns": {"low": "p_low", "mid": "p_mid", "high": "p_top"}}
    refused = client.post(f"{BASE}/baselines", json=wrong, headers=scientist.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "probability_columns"
    assert "p_top" in refused.json()["detail"]
    assert _count(engine, "monitors_baseline") == 0
    assert not (settings.data_dir / "baselines").exists()
    right = {**body, "probability_columns": {"low": "p_low", "mid": "p_mid", "high": "p_high"}}
    created = client.post(f"{BASE}/baselines", json=right, headers=scientist.headers)
    assert created.status_code == 201, created.text
    assert "performance_estimate" in created.json()["extras"]
    stored = json.loads(
        next((settings.data_dir / "baselines").rglob("*.json")).read_text(encoding="utf-8")
    )
    section = stored["extras"]["performance_estimate"]
    assert section["classes"] == ["high", "low", "mid"]
    assert section["positive"] is None


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"records": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not valid JSON"),
        (b'{"records": [1, 2', "not valid JSON"),
        (b"", "is required"),
    ],
    ids=["nested too deeply", "cut short", "empty"],
)
def test_a_body_that_is_not_a_batch_is_a_problem_naming_the_body(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    body: bytes,
    detail: str,
) -> None:
    answer = client.post(
        _url(deployment),
        content=body,
        headers={**scientist.headers, "content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "body"
    assert detail in answer.json()["detail"]
    assert _stored(engine, settings) == (0, 0, 0)


def test_a_plain_parquet_upload_is_bounded_by_the_table_limits_not_the_batch_size(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
) -> None:
    rows = 10_050
    table = adult_test().iloc[:rows][FEATURES].reset_index(drop=True)
    table.insert(0, "request_id", [f"u{i}" for i in range(rows)])
    table.insert(1, "time", pd.Timestamp("2026-12-06T10:00:00Z"))
    plain = _parquet_bytes(table.assign(prediction=0))
    url = _url(deployment, "inferences/upload")
    sent = {"file": ("scores.parquet", plain, "application/octet-stream")}
    answer = client.post(url, files=sent, headers=scientist.headers)
    assert answer.status_code == 201, answer.text
    assert (answer.json()["accepted"], answer.json()["duplicates"]) == (rows, 0)
    again = client.post(url, files=sent, headers=scientist.headers)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, rows)
    before = (_stored(engine, settings), len(_audit(engine)))
    naive = _parquet_bytes(table.assign(time=table["time"].dt.tz_localize(None)))
    refused = client.post(
        url, files={"file": ("scores.parquet", naive, "text/plain")}, headers=scientist.headers
    )
    assert refused.status_code == 413, refused.text
    assert "judged record by record (times are not timestamps" in refused.json()["detail"]
    assert (_stored(engine, settings), len(_audit(engine))) == before
    assert [a for a, _ in _audit(engine)].count("inference.upload") == 2


def test_a_parquet_file_is_taken_as_the_body_itself(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
) -> None:
    """``Content-Type: application/vnd.apache.parquet``: no multipart, the same checks."""
    table = adult_test().iloc[:40][FEATURES].reset_index(drop=True)
    table.insert(0, "request_id", [f"b{i}" for i in range(len(table))])
    table.insert(1, "time", pd.Timestamp("2026-12-06T10:00:00Z"))
    plain = _parquet_bytes(table.assign(prediction=0))
    url = _url(deployment, "inferences/upload")
    as_body = {**scientist.headers, "content-type": "application/vnd.apache.parquet"}
    answer = client.post(url, content=plain, headers=as_body)
    assert answer.status_code == 201, answer.text
    assert (answer.json()["accepted"], answer.json()["duplicates"]) == (40, 0)
    sent = {"file": ("scores.parquet", plain, "application/octet-stream")}
    again = client.post(url, files=sent, headers=scientist.headers)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 40)
    before = (_stored(engine, settings), len(_audit(engine)))
    broken = client.post(url, content=b"PAR1 not a table PAR1", headers=as_body)
    assert broken.status_code == 422, broken.text
    assert broken.json()["field"] == "body"
    nothing = client.post(url, headers=scientist.headers)
    assert nothing.status_code == 422, nothing.text
    assert nothing.json()["field"] == "file"
    assert (_stored(engine, settings), len(_audit(engine))) == before
    assert _stored(engine, settings) == (1, 40, 1)


def _partition_file(ids: list[str]) -> bytes:
    """Return an upload that already is a partition: float features, UTC ns times, outputs."""
    from tests.adult import NUMERIC

    table = adult_test().iloc[: len(ids)][FEATURES].reset_index(drop=True)
    table[NUMERIC] = table[NUMERIC].astype("float64")
    table.insert(0, "request_id", ids)
    table.insert(1, "time", pd.Timestamp("2026-12-06T10:00:00Z").as_unit("ns"))
    return _parquet_bytes(table.assign(prediction=1, score=0.25))


def _forged_statistics(content: bytes, *, old: bytes, new: bytes) -> bytes:
    """Return a Parquet file whose footer states ``new`` where its statistics said ``old``."""
    import struct

    length = struct.unpack("<I", content[-8:-4])[0]
    footer = content[-8 - length : -8]
    assert footer.count(old) == 1
    return content[: -8 - length] + footer.replace(old, new) + content[-8:]


def test_a_kept_upload_with_lying_statistics_still_reads_back_its_records(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
) -> None:
    """A kept file's row-group statistics are its sender's: no read may trust them to skip."""
    from monitors.inferences import read_inference

    ids = [f"k{i:02d}" for i in range(20)]
    forged = _forged_statistics(
        _forged_statistics(_partition_file(ids), old=b"k00", new=b"k50"), old=b"k19", new=b"k59"
    )
    as_body = {**scientist.headers, "content-type": "application/vnd.apache.parquet"}
    answer = client.post(_url(deployment, "inferences/upload"), content=forged, headers=as_body)
    assert (answer.json()["accepted"], answer.json()["duplicates"]) == (20, 0), answer.text
    (stored,) = (settings.data_dir / "inferences").rglob("*.parquet")
    assert stored.read_bytes() == forged  # kept, statistics and all
    with session_scope(engine) as session:
        one = read_inference(
            session=session,
            store=settings.artifact_store(),
            deployment=session.get(Deployment, deployment.id),  # type: ignore[arg-type]
            request_id="k03",
        )
    assert one["request_id"].tolist() == ["k03"]
    assert one["age"].tolist() == [float(adult_test().iloc[3]["age"])]


def test_an_upload_that_already_is_a_partition_is_stored_as_it_came_and_deduplicated(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    scientist: Issued,
    deployment: Deployment,
    rows: pd.DataFrame,
) -> None:
    from lineage.storage import read_parquet
    from monitors.inferences import read_window

    url = _url(deployment, "inferences/upload")
    as_body = {**scientist.headers, "content-type": "application/vnd.apache.parquet"}
    first = _partition_file([f"k{i}" for i in range(20)])
    answer = client.post(url, content=first, headers=as_body)
    assert (answer.json()["accepted"], answer.json()["duplicates"]) == (20, 0), answer.text
    (stored,) = (settings.data_dir / "inferences").rglob("*.parquet")
    assert stored.read_bytes() == first  # not decoded and written again
    (_, detail), *_ = [e for e in _audit(engine) if e[0] == "inference.upload"]
    assert json.loads(detail)["after"]["sha256"] == hashlib.sha256(first).hexdigest()
    # Ids logged before — by that file and by a JSON batch — count once; the rest is stored.
    batch = records(rows.iloc[:5], predictions=[0] * 5, prefix="k")  # k0..k4: logged already
    logged = client.post(_url(deployment), json={"records": batch}, headers=scientist.headers)
    assert (logged.json()["accepted"], logged.json()["duplicates"]) == (0, 5), logged.text
    json_batch = records(rows.iloc[:3], predictions=[0] * 3, prefix="j")
    client.post(_url(deployment), json={"records": json_batch}, headers=scientist.headers)
    overlapping = _partition_file([*(f"k{i}" for i in range(15, 25)), "j0", "j1"])
    again = client.post(url, content=overlapping, headers=as_body)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (5, 7), again.text
    assert _stored(engine, settings) == (3, 28, 3)
    # Written while its ids were claimed, a file of ids all logged before leaves nothing.
    repeated = client.post(url, content=first, headers=as_body)
    assert (repeated.json()["accepted"], repeated.json()["duplicates"]) == (0, 20)
    assert _stored(engine, settings) == (3, 28, 3)
    with session_scope(engine) as session:
        window, _ = read_window(
            session=session,
            store=settings.artifact_store(),
            deployment=session.get(Deployment, deployment.id),  # type: ignore[arg-type]
            start=None,
            end=None,
        )
    assert sorted(window["request_id"]) == sorted([*(f"k{i}" for i in range(25)), "j0", "j1", "j2"])
    assert window["probabilities"].isna().all()
    kept = read_parquet(settings.artifact_store(), str(stored.relative_to(settings.data_dir)))
    assert kept.column("score").to_pylist() == [0.25] * 20
    # The same shape with an infinite score is refused as before, naming the cell.
    infinite = pd.read_parquet(io.BytesIO(_partition_file(["i0", "i1"])))
    infinite.loc[1, "score"] = float("inf")
    refused = client.post(url, content=_parquet_bytes(infinite), headers=as_body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "records.1.score"
    assert _stored(engine, settings) == (3, 28, 3)


def test_the_memory_for_request_ids_is_bounded_and_uploads_are_kept_in_memory(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Startup bounds the id runs in memory and spools an uploaded file in memory, not on disk."""
    from starlette.formparsers import MultiPartParser

    from api.app import create_app
    from monitors.inferences import runs

    monkeypatch.setattr(runs, "_BUDGET", [0])
    monkeypatch.setattr(MultiPartParser, "spool_max_size", 1024 * 1024)
    bounded = settings.model_copy(
        update={"id_runs_memory_bytes": 12 * 1000, "max_body_bytes": 32 * 2**20}
    )
    with TestClient(create_app(bounded, engine=engine)):
        assert runs._BUDGET == [12 * 1000]
        assert MultiPartParser.spool_max_size == 32 * 2**20
