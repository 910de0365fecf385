"""Count the rows of every lineage table, to prove a failed request changed nothing."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

TABLES = (
    "lineage_dataset",
    "lineage_dataset_version",
    "lineage_deployment",
    "lineage_edge",
    "lineage_event",
    "lineage_job",
    "lineage_model_version",
    "lineage_run",
)


def row_counts(engine: Engine) -> dict[str, int]:
    """Return ``{table: row count}`` for every lineage table."""
    with engine.connect() as connection:
        return {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
            for table in TABLES
        }
