from __future__ import annotations

import json

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
from retrain.pipelines import EvaluationSpec, PipelineSpec, Step, create_pipeline


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
