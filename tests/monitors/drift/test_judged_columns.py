"""A drift run reads only the columns it judges, columnar, and finds what the whole window gives.

The window mixes floats and integers with missing values, text categories with nulls, booleans,
integer categories with nulls, free text and context columns, over three logged batches, one of
which straddles the window's start. The run's findings and its page sample are compared with
those computed on the whole window read into pandas (:func:`monitors.inferences.read_window`), as
every drift run computed them before it read columns.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy.engine import Engine

from lineage.deployments import DeploymentCreate, record_deployment
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import Deployment, ModelVersion
from lineage.projects import create_project
from lineage.storage import LocalStore, read_parquet, write_parquet
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.baseline import build_baseline
from monitors.baseline.storage import (
    BaselineCreate,
    create_baseline,
    latest_baseline,
    load_baseline,
)
from monitors.drift.window import summarise_window, window_to_dict
from monitors.drift_page_jobs import DRIFT_PAGE_ROWS, save_page_sample
from monitors.execute import execute_monitor_run, summarise
from monitors.inferences import InferenceRecord, log_inferences, read_window
from monitors.inferences.windows import window_parts
from monitors.kinds import MonitorContext, MonitorResult, run_monitor
from monitors.models import MonitorCreate, MonitorRun, RunTrigger, Schedule
from monitors.report import build_report, report_keys, run_folder
from monitors.run_jobs import queue_monitor_run
from monitors.schedules import create_monitor
from monitors.spec import MonitorSpec
from monitors.window_conventions import (
    drift_columns,
    fill_conventions,
    judged_frame,
    model_features,
    with_context,
)
from tests.monitors.serving import dataset_version

SCHEMA = {
    "amount": "float",
    "visits": "integer",
    "city": "category",
    "member": "boolean",
    "tier": "category",
    "comment": "string",
}
CONTEXT = {"region": {"type": "category", "role": "slice"}, "note": {"role": "slice"}}


def _rows(size: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.normal(100 + shift, 15, size)
    amount[rng.random(size) < 0.05] = np.nan
    visits = pd.array(rng.poisson(3 + shift / 20, size), dtype="Int64")
    visits[rng.random(size) < 0.05] = pd.NA
    tier = pd.array(rng.integers(1, 4 + int(shift > 0), size), dtype="Int64")
    tier[rng.random(size) < 0.1] = pd.NA
    city = rng.choice(["Lyon", "Oslo", "Porto", "Riga"], size, p=[0.4, 0.3, 0.2, 0.1])
    if shift:
        city = rng.choice(["Lyon", "Oslo", "Porto", "Riga"], size, p=[0.1, 0.2, 0.3, 0.4])
    cities = pd.Series(city, dtype=object)
    cities[rng.random(size) < 0.05] = None
    return pd.DataFrame(
        {
            "amount": amount,
            "visits": visits,
            "city": cities,
            "member": rng.random(size) < (0.3 + shift / 200),
            "tier": tier,
            "comment": [f"note {value}" for value in rng.integers(0, 50, size)],
            "region": rng.choice(["north", "south"], size),
            "note": [f"free text {value}" for value in rng.integers(0, 10_000, size)],
        }
    )


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


class Window:
    """A deployment with a baseline and a window logged in three batches."""

    def __init__(self, engine: Engine, store: LocalStore) -> None:
        self.engine, self.store = engine, store
        with session_scope(engine) as session:
            project_id = create_project(session=session, name="shop").id
            register_model_version(
                session=session,
                project_id=project_id,
                name="basket",
                spec=ModelVersionCreate.model_validate(
                    {
                        "artifact_uri": "models:/basket/1",
                        "feature_schema": SCHEMA,
                        "context_schema": CONTEXT,
                        "external": True,
                    }
                ),
            )
            self.deployment: Deployment = record_deployment(
                session=session,
                project_id=project_id,
                spec=DeploymentCreate(
                    name="basket-api", environment="production", model_name="basket",
                    model_version="1",
                ),
            )  # fmt: skip
        reference = _rows(2000, seed=1, shift=0.0)
        write_parquet(store, "datasets/ref.parquet", pa.Table.from_pandas(reference))
        version_id = dataset_version(engine, project_id, "datasets/ref.parquet")
        with session_scope(engine) as session:
            create_baseline(
                session=session,
                store=store,
                project_id=project_id,
                spec=BaselineCreate(
                    deployment_id=self.deployment.id, dataset_version_id=version_id,
                    label_column=None, prediction_column=None, score_column=None,
                    categorical=["tier", "member"],
                ),
            )  # fmt: skip
        now = utcnow()
        for batch in range(3):
            rows = _rows(1000, seed=10 + batch, shift=10.0)
            times = [now - timedelta(minutes=5)] * len(rows)
            if batch == 0:  # straddles the window's start: its first half is two days old
                times[:500] = [now - timedelta(days=2)] * 500
            records = [
                InferenceRecord.model_validate(
                    {
                        "request_id": f"b{batch}-{i}",
                        "time": times[i].isoformat(),
                        "features": {name: _cell(row[name]) for name in SCHEMA},
                        "context": {"region": row["region"], "note": row["note"]},
                        "prediction": int(i % 2),
                        "score": 0.5,
                    }
                )
                for i, (_, row) in enumerate(rows.iterrows())
            ]
            with session_scope(engine) as session:
                log_inferences(
                    session=session, store=store, deployment=self.deployment, records=records
                )

    def run(self, spec: dict[str, Any]) -> tuple[MonitorRun, dict[str, Any]]:
        with session_scope(self.engine) as session:
            monitor = create_monitor(
                session=session,
                project_id=self.deployment.project_id,
                spec=MonitorCreate(
                    name=f"m-{uuid.uuid4().hex[:8]}", deployment_id=self.deployment.id,
                    spec=MonitorSpec.model_validate(spec),
                    schedule=Schedule(interval_seconds=3600), window="last:24h", paused=True,
                ),
            )  # fmt: skip
            run = queue_monitor_run(
                session=session, monitor=monitor, scheduled_for=utcnow(), trigger=RunTrigger.MANUAL
            )
            assert run is not None
        return run, execute_monitor_run(engine=self.engine, store=self.store, run_id=run.id)

    def whole(self, run: MonitorRun, spec: dict[str, Any]) -> tuple[MonitorResult, pd.DataFrame]:
        """Judge the whole window read into pandas, as every drift run did before."""
        with session_scope(self.engine) as session:
            stored = latest_baseline(session=session, deployment=self.deployment)
            model_version = session.get(ModelVersion, self.deployment.model_version_id)
            assert model_version is not None
            window, _ = read_window(
                session=session, store=self.store, deployment=self.deployment,
                start=run.window_start, end=run.window_end,
            )  # fmt: skip
        baseline = load_baseline(store=self.store, stored=stored)
        window, context = with_context(window)
        features = model_features(model_version, [str(c) for c in window.columns], context)
        filled = {n for n in ("label", "prediction", "score") if window[n].notna().any()}
        judged, frame = judged_frame(
            fill_conventions(MonitorSpec.model_validate(spec), filled, features, context, baseline),
            window,
        )
        return run_monitor(judged, MonitorContext(window=frame, baseline=baseline)), frame


@pytest.fixture
def window(engine: Engine, tmp_path: Any) -> Window:
    return Window(engine, LocalStore(tmp_path / "data"))


def _findings(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {key: value for key, value in finding.items() if key != "lineage_run_id"}
        for finding in summary["findings"]
    ]


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "drift", "thresholds": {"drift_share": 0.3}},
        {"kind": "drift", "columns": ["amount", "city", "tier", "visits"], "fdr": None},
    ],
)
def test_a_drift_run_finds_what_the_whole_window_gives(
    window: Window, spec: dict[str, Any]
) -> None:
    run, summary = window.run(spec)
    result, frame = window.whole(run, spec)
    expected = summarise(result)
    assert summary["rows"] == expected.rows == 2500  # half of the straddling batch is out
    assert _findings(summary) == _findings(expected.to_json())
    assert any(f["status"] == "warn" for f in summary["findings"])  # it judged, and drifted
    # The report too: every statistic, and the charts' categories and shares.
    stored = json.loads(window.store.get(report_keys(project_id=run.project_id, run_id=run.id)[0]))
    built = json.loads(build_report([result], title="whole window").to_json())
    for key in ("report", "charts", "findings"):
        assert stored["results"][0][key] == built["results"][0][key]
    # The page's sample is the rows the whole frame's sample drew.
    with session_scope(window.engine) as session:
        stored = latest_baseline(session=session, deployment=window.deployment)
    baseline = load_baseline(store=window.store, stored=stored)
    columns = spec.get("columns", list(SCHEMA))
    key = f"{run_folder(project_id=run.project_id, run_id=run.id)}/drift-sample.parquet"
    kept = read_parquet(window.store, key)
    assert len(frame) > DRIFT_PAGE_ROWS
    save_page_sample(
        store=window.store, project_id=run.project_id, run_id=run.id, baseline=baseline,
        frame=frame, columns=columns,
    )  # fmt: skip
    again = read_parquet(window.store, key)
    assert kept.equals(again)


def test_a_drift_run_reads_only_the_columns_it_judges(window: Window) -> None:
    with session_scope(window.engine) as session:
        model_version = session.get(ModelVersion, window.deployment.model_version_id)
        assert model_version is not None
        parts = window_parts(
            session=session, store=window.store, deployment=window.deployment,
            start=utcnow() - timedelta(hours=24), end=utcnow(),
        )  # fmt: skip
    assert parts.rows == 2500
    assert {"request_id", "time", "prediction", "score", "context.note"} <= set(parts.names)
    spec = MonitorSpec.model_validate({"kind": "drift", "columns": ["amount", "region"]})
    chosen = drift_columns(spec, model_version, list(parts.names))
    assert chosen is not None
    assert chosen.sources == {"amount": "amount", "region": "context.region"}
    everything = drift_columns(MonitorSpec(kind="drift"), model_version, list(parts.names))
    assert everything is not None
    assert list(everything.sources) == list(SCHEMA)  # the features: no ids, times or outputs
    read = parts.read(window.store, list(chosen.sources.values()))
    assert isinstance(read, pa.Table)
    assert (read.column_names, read.num_rows) == (["amount", "context.region"], 2500)
    # A run judging the label joined by request id reads the whole window instead.
    labelled = MonitorSpec.model_validate({"kind": "drift", "columns": ["label"]})
    assert drift_columns(labelled, model_version, list(parts.names)) is None


def test_an_arrow_window_is_summarised_as_its_pandas_conversion() -> None:
    """Stored types the JSON log never writes (kept uploads): the same summaries either way."""
    rng = np.random.default_rng(3)
    size = 30_000
    reference = pd.DataFrame(
        {
            "price": rng.normal(10, 2, size),
            "units": rng.integers(0, 40, size).astype(float),
            "tier": rng.integers(1, 4, size),
            "flag": rng.random(size) < 0.5,
            "city": rng.choice(["a", "b", "c"], size),
            "shop": rng.choice(["x", "y"], size),
            "big": rng.integers(0, 5, size).astype(float),
        }
    )
    baseline = build_baseline(reference, categorical=["tier", "flag", "city", "shop"])

    def chunk(seed: int) -> pa.Table:
        rng = np.random.default_rng(seed)
        nulls = rng.random(size) < 0.1
        price = rng.normal(11, 2, size)
        price[rng.random(size) < 0.01] = np.nan  # NaN and nulls both missing
        return pa.table(
            {
                "price": pa.array(price, mask=nulls),
                "units": pa.array(rng.integers(0, 45, size), mask=nulls),
                "tier": pa.array(rng.integers(1, 5, size), mask=nulls),
                "flag": pa.array(rng.random(size) < 0.6, mask=nulls),
                "city": pa.array(rng.choice(["a", "b", "c", "d"], size), mask=nulls),
                "shop": pa.array(rng.choice(["x", "y"], size)).dictionary_encode(),
                "big": pa.array(rng.choice([1, 2**53 + 1], size), mask=nulls),
            }
        )

    table = pa.concat_tables([chunk(4), chunk(5)])
    columns = list(reference.columns)
    arrow = summarise_window(baseline, table, columns)
    frame = summarise_window(baseline, table.to_pandas(), columns)
    for name in columns:
        assert repr(window_to_dict(arrow[name])) == repr(window_to_dict(frame[name])), (
            name
        )  # types too
