from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import governance  # noqa: F401  (registers tables)
import lineage
import monitors  # noqa: F401
import reports  # noqa: F401
import retrain  # noqa: F401
from api.migrate import downgrade, upgrade
from governance.actors import Actor
from lineage.projects import create_project
from lineage.storage import LocalStore
from monitors.traces import ingest_spans
from retrain.pipelines import EvaluationSpec, PipelineSpec, Step, create_pipeline
from tests.monitors.traces.conftest import make_llm_deployment, otlp_span, store_spans


def _tables(url: str) -> set[str]:
    engine = lineage.create_store_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trips(database_url: str) -> None:
    migrated = _tables(database_url)
    assert "lineage_project" in migrated
    downgrade(database_url, "base")
    assert _tables(database_url) == set()
    upgrade(database_url)
    assert _tables(database_url) == migrated


def test_migrations_match_the_models(database_url: str) -> None:
    engine = lineage.create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree; write a revision for: {diff}"


def test_stored_pipelines_follow_the_demo_step_to_its_new_module(database_url: str) -> None:
    """A pipeline stored as ``retrain.adult:…`` runs ``api.demo.adult:…`` after the upgrade."""
    engine = lineage.create_store_engine(database_url)
    try:
        with lineage.session_scope(engine) as session:
            project = create_project(session=session, name="acme")
            spec = PipelineSpec(
                name="income-train",
                model_name="income",
                steps=[
                    Step(name="train", entrypoint="api.demo.adult:train"),
                    Step(name="other", entrypoint="mypkg.adult:train"),
                ],
                evaluation=EvaluationSpec(
                    holdout_uri="adult.test.gz", reader="api.demo.adult:read_adult", target="income"
                ),
            )
            create_pipeline(session=session, project_id=project.id, spec=spec, actor=Actor.system())

        def stored() -> tuple[list[str], str]:
            with engine.connect() as connection:
                raw = connection.execute(sa.text("SELECT spec FROM retrain_pipeline")).scalar_one()
            document = json.loads(raw) if isinstance(raw, str) else raw
            steps = [step["entrypoint"] for step in document["steps"]]
            return steps, document["evaluation"]["reader"]

        assert stored() == (
            ["api.demo.adult:train", "mypkg.adult:train"],
            "api.demo.adult:read_adult",
        )
        downgrade(database_url, "reports_0002")
        assert stored() == (
            ["retrain.adult:train", "mypkg.adult:train"],
            "retrain.adult:read_adult",
        )
        upgrade(database_url)
        assert stored() == (
            ["api.demo.adult:train", "mypkg.adult:train"],
            "api.demo.adult:read_adult",
        )
    finally:
        engine.dispose()


def test_traces_of_evaluation_runs_survive_the_traces_0002_round_trip(database_url: str) -> None:
    """Content rows outlive SQLite's rebuild of the span table; old evaluation spans get a run."""
    engine = lineage.create_store_engine(database_url)
    run_id = uuid.uuid4()
    try:
        with lineage.session_scope(engine) as session:
            project = create_project(session=session, name="acme")
        deployment = make_llm_deployment(engine, project)
        marked = {"warden.evaluation.run_id": str(run_id), "gen_ai.prompt": "hi"}
        store_spans(engine, deployment, [otlp_span("a", "1", None, 0, 5, **marked)])
        with lineage.session_scope(engine) as session:
            ingest_spans(
                session=session,
                project_id=project.id,
                deployment_id=None,
                evaluation_run_id=uuid.uuid4(),
                spans=[otlp_span("b", "1", None, 0, 5, **{"gen_ai.prompt": "hi"})],
            )

        def rows() -> list[tuple[str, Any, Any, int]]:
            with engine.connect() as connection:
                found = connection.execute(
                    sa.text(
                        "SELECT s.trace_id, s.deployment_id, t.evaluation_run_id,"
                        " (SELECT COUNT(*) FROM monitors_trace_content c"
                        "  WHERE c.span_row_id = s.id)"
                        " FROM monitors_trace_span s JOIN monitors_trace t"
                        " ON t.trace_id = s.trace_id ORDER BY s.trace_id"
                    )
                ).all()
            return [(str(a), b, c, int(d)) for a, b, c, d in found]

        assert [(t, d is None, n) for t, d, _, n in rows()] == [
            ("a" * 32, False, 1),
            ("b" * 32, True, 1),
        ]
        downgrade(database_url, "traces_0001")
        with engine.connect() as connection:
            kept = (
                connection.execute(sa.text("SELECT trace_id FROM monitors_trace_span"))
                .scalars()
                .all()
            )
            assert [str(t) for t in kept] == ["a" * 32]  # the deployment's span, with its content
            assert (
                connection.execute(
                    sa.text("SELECT COUNT(*) FROM monitors_trace_content")
                ).scalar_one()
                == 1
            )
        upgrade(database_url)
        ((trace_id, deployment_id, evaluation_run_id, contents),) = rows()
        assert (trace_id, contents) == ("a" * 32, 1)
        assert deployment_id is not None
        assert uuid.UUID(str(evaluation_run_id)) == run_id
    finally:
        engine.dispose()


def test_request_id_keys_survive_the_runtime_0006_round_trip(
    database_url: str, tmp_path: Path
) -> None:
    """Keys lose their own id and time on the way up, get them back on the way down, never rows.

    Since ``runtime_0008`` (inferences) and ``runtime_0009`` (labels) the keys are runs: the ids
    stored before still de-duplicate after the round trip.
    """
    from monitors.inferences import InferenceRecord, LabelRecord, log_inferences, log_labels
    from tests.adult import adult_test
    from tests.monitors.serving import adult_deployment, records

    engine = lineage.create_store_engine(database_url)
    try:
        deployment = adult_deployment(engine)
        with lineage.session_scope(engine) as session:
            parsed = [InferenceRecord.model_validate(r) for r in records(adult_test().iloc[:3])]
            log_inferences(
                session=session, store=LocalStore(tmp_path), deployment=deployment, records=parsed
            )
            log_labels(
                session=session,
                store=LocalStore(tmp_path),
                deployment=deployment,
                labels=[LabelRecord(request_id="r1", label=1)],
            )

        def keys(table: str) -> list[tuple[str, str]]:
            with engine.connect() as connection:
                found = connection.execute(
                    sa.text(f"SELECT request_id, batch_id FROM {table} ORDER BY request_id")  # noqa: S608
                )
                return [(row[0], str(row[1])) for row in found]

        downgrade(database_url, "runtime_0007")  # the runs written back as key rows
        before = (keys("monitors_inference_key"), keys("monitors_label_key"))
        assert [len(found) for found in before] == [3, 1]
        downgrade(database_url, "runtime_0005")
        assert (keys("monitors_inference_key"), keys("monitors_label_key")) == before
        upgrade(database_url, "runtime_0007")
        assert (keys("monitors_inference_key"), keys("monitors_label_key")) == before
        upgrade(database_url)  # key rows become runs, and still de-duplicate
        assert (keys("monitors_inference_key"), keys("monitors_label_key")) == ([], [])
        from lineage.storage import LocalStore as Store
        from monitors.inferences.runs import batch_of

        with lineage.session_scope(engine) as session:
            found = [
                batch_of(
                    session=session,
                    kind="inferences",
                    deployment_id=deployment.id,
                    request_id=f"r{i}",
                )
                for i in range(3)
            ]
            assert [(f"r{i}", b) for i, b in enumerate(found)] == [
                (request_id, uuid.UUID(batch)) for request_id, batch in before[0]
            ]
            labelled = batch_of(
                session=session, kind="labels", deployment_id=deployment.id, request_id="r1"
            )
            assert [("r1", labelled)] == [(r, uuid.UUID(b)) for r, b in before[1]]
            again = log_inferences(
                session=session, store=Store(tmp_path), deployment=deployment, records=parsed
            )
            assert (again.accepted, again.duplicates) == (0, 3)
            relabelled = log_labels(
                session=session,
                store=Store(tmp_path),
                deployment=deployment,
                labels=[LabelRecord(request_id=r, label=0) for r in ("r1", "r2")],
            )
            assert (relabelled.accepted, relabelled.duplicates) == (1, 1)
    finally:
        engine.dispose()


def test_audit_0005_records_how_far_an_older_log_is_out_of_time_order(database_url: str) -> None:
    """No row for a log in time order; else the latest time followed by an earlier one."""
    from datetime import UTC, datetime, timedelta

    from governance.audit import AuditEntry
    from lineage.tables import AwareDateTime

    start = datetime(2026, 3, 1, tzinfo=UTC)

    def add(connection: sa.Connection, seq: int, seconds: int) -> None:
        connection.execute(
            sa.insert(AuditEntry.__table__),  # type: ignore[attr-defined]
            {
                "id": uuid.uuid4(),
                "created_at": start + timedelta(seconds=seconds),
                "seq": seq,
                "actor_name": "robot",
                "actor_kind": "service",
                "action": "a.b",
                "target": "t:1",
                "outcome": "success",
                "reason": "",
                "detail": "{}",
                "prev_hash": "0" * 64,
                "hash": "0" * 64,
            },
        )

    def recorded() -> list[datetime]:
        with engine.connect() as connection:
            query = sa.text("SELECT unordered_until FROM governance_audit_time_order").columns(
                sa.column("unordered_until", AwareDateTime())
            )
            return [row[0] for row in connection.execute(query)]

    engine = lineage.create_store_engine(database_url)
    try:
        downgrade(database_url, "audit_0004")
        with engine.begin() as connection:
            for seq, seconds in enumerate([0, 1, 1, 5], start=1):
                add(connection, seq, seconds)
        upgrade(database_url)
        assert recorded() == []
        downgrade(database_url, "audit_0004")
        with engine.begin() as connection:
            for seq, seconds in enumerate([2, 9], start=5):  # 2 < 5, and 5 was the latest before
                add(connection, seq, seconds)
        upgrade(database_url)
        assert recorded() == [start + timedelta(seconds=5)]
    finally:
        engine.dispose()
