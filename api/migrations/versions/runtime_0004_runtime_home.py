"""Runtime: queue and lease move to ``lineage_runtime_*``; a run's state is its job's.

``retrain_job`` becomes ``lineage_runtime_job`` and ``retrain_leader_lease`` becomes
``lineage_runtime_lease`` (new tables, rows copied, so every constraint carries its new name).
``monitors_monitor_run`` stops copying its job's state: a run recorded without a job (``warden
monitor run`` before this revision) first gets one carrying its state, under the run's own id;
then ``state``, ``progress``, ``message``, ``attempts``, ``started_at``, ``finished_at`` and
``error`` are dropped and ``job_id`` becomes a foreign key. The pipeline run's ``job_id`` follows
the queue to its new table. Downgrading copies the job state back onto the runs.

Revision ID: runtime_0004
Revises: runtime_0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lineage.tables import AwareDateTime

revision: str = "runtime_0004"
down_revision: str | Sequence[str] | None = "runtime_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("retrain_0002",)

_RUN_STATE = ("state", "progress", "message", "attempts", "started_at", "finished_at", "error")


def _job_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", AwareDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", AwareDateTime(), nullable=True),
        sa.Column("heartbeat_at", AwareDateTime(), nullable=True),
        sa.Column("started_at", AwareDateTime(), nullable=True),
        sa.Column("finished_at", AwareDateTime(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("logs", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    ]


def _lease_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", AwareDateTime(), nullable=False),
        sa.Column("heartbeat_at", AwareDateTime(), nullable=False),
        sa.Column("expires_at", AwareDateTime(), nullable=False),
    ]


def _create_job_table(name: str) -> None:
    op.create_table(
        name,
        *_job_columns(),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["lineage_project.id"],
            name=op.f(f"fk_{name}_project_id_lineage_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    with op.batch_alter_table(name) as batch:
        batch.create_index(batch.f(f"ix_{name}_project_id"), ["project_id"])
        batch.create_index(f"ix_{name}_state_available_at", ["state", "available_at"])


def _drop_job_table(name: str) -> None:
    with op.batch_alter_table(name) as batch:
        batch.drop_index(f"ix_{name}_state_available_at")
        batch.drop_index(batch.f(f"ix_{name}_project_id"))
    op.drop_table(name)


def _create_lease_table(name: str) -> None:
    op.create_table(
        name,
        *_lease_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("name", name=op.f(f"uq_{name}_name")),
    )


def _copy(source: str, target: str, columns: list[sa.Column[object]]) -> None:
    names = ", ".join(column.name for column in columns)
    op.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {source}")  # noqa: S608


def _point_pipeline_runs(old: str, new: str) -> None:
    with op.batch_alter_table("retrain_pipeline_run") as batch:
        batch.drop_constraint(batch.f(f"fk_retrain_pipeline_run_job_id_{old}"), type_="foreignkey")
        batch.create_foreign_key(
            batch.f(f"fk_retrain_pipeline_run_job_id_{new}"), new, ["job_id"], ["id"]
        )


def _give_jobless_runs_a_job() -> None:
    """Record a job for each run that has none (the state it carries moves onto the job)."""
    runs = sa.table(
        "monitors_monitor_run",
        sa.column("id", sa.Uuid()),
        sa.column("created_at", AwareDateTime()),
        sa.column("project_id", sa.Uuid()),
        sa.column("monitor_id", sa.Uuid()),
        sa.column("job_id", sa.Uuid()),
        *(sa.column(name) for name in ("state", "progress", "message", "attempts", "error")),
        sa.column("started_at", AwareDateTime()),
        sa.column("finished_at", AwareDateTime()),
    )
    jobs = sa.table("lineage_runtime_job", *(sa.column(c.name, c.type) for c in _job_columns()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(runs).where(runs.c.job_id.is_(None))).mappings().all()
    for row in rows:
        connection.execute(
            jobs.insert().values(
                id=row["id"],
                created_at=row["created_at"],
                project_id=row["project_id"],
                kind="monitor_run",
                payload={"monitor_run_id": str(row["id"]), "monitor_id": str(row["monitor_id"])},
                state=row["state"],
                attempts=row["attempts"],
                max_attempts=max(1, row["attempts"]),
                available_at=row["created_at"],
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                progress=row["progress"],
                message=row["message"],
                logs="",
                error=row["error"],
            )
        )
        connection.execute(runs.update().where(runs.c.id == row["id"]).values(job_id=row["id"]))


def upgrade() -> None:
    _create_job_table("lineage_runtime_job")
    _copy("retrain_job", "lineage_runtime_job", _job_columns())
    _point_pipeline_runs("retrain_job", "lineage_runtime_job")
    _drop_job_table("retrain_job")

    _create_lease_table("lineage_runtime_lease")
    _copy("retrain_leader_lease", "lineage_runtime_lease", _lease_columns())
    op.drop_table("retrain_leader_lease")

    _give_jobless_runs_a_job()
    with op.batch_alter_table("monitors_monitor_run") as batch:
        for name in _RUN_STATE:
            batch.drop_column(name)
        batch.create_foreign_key(
            batch.f("fk_monitors_monitor_run_job_id_lineage_runtime_job"),
            "lineage_runtime_job",
            ["job_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("monitors_monitor_run") as batch:
        batch.drop_constraint(
            batch.f("fk_monitors_monitor_run_job_id_lineage_runtime_job"), type_="foreignkey"
        )
        batch.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="queued")
        )
        batch.add_column(sa.Column("progress", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("message", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("started_at", AwareDateTime(), nullable=True))
        batch.add_column(sa.Column("finished_at", AwareDateTime(), nullable=True))
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
    for name in _RUN_STATE:
        op.execute(
            f"UPDATE monitors_monitor_run SET {name} = (SELECT lineage_runtime_job.{name} "  # noqa: S608
            "FROM lineage_runtime_job WHERE lineage_runtime_job.id = monitors_monitor_run.job_id) "
            "WHERE job_id IS NOT NULL"
        )

    _create_lease_table("retrain_leader_lease")
    _copy("lineage_runtime_lease", "retrain_leader_lease", _lease_columns())
    op.drop_table("lineage_runtime_lease")

    _create_job_table("retrain_job")
    _copy("lineage_runtime_job", "retrain_job", _job_columns())
    _point_pipeline_runs("lineage_runtime_job", "retrain_job")
    _drop_job_table("lineage_runtime_job")
