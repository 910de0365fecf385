"""Runtime: inference request ids as one run of sorted id hashes per batch, not a key row each.

``monitors_request_run`` (:mod:`monitors.inferences.runs`): de-duplication by binary search
over the runs instead of one B-tree insert per logged inference. The ids keyed so far in
``monitors_inference_key`` become one run per batch (hashed here), and their key rows go; the
downgrade writes them back from the runs. Label keys stay as they are.

Revision ID: runtime_0008
Revises: runtime_0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "runtime_0008"
down_revision: str | Sequence[str] | None = "runtime_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUNS = "monitors_request_run"
_KEYS = "monitors_inference_key"


def _tables() -> tuple[sa.TableClause, sa.TableClause]:
    keys = sa.table(
        _KEYS,
        sa.column("deployment_id", sa.Uuid()),
        sa.column("request_id", sa.String()),
        sa.column("batch_id", sa.Uuid()),
    )
    runs = sa.table(
        _RUNS,
        sa.column("seq", sa.BigInteger()),
        sa.column("deployment_id", sa.Uuid()),
        sa.column("batch_id", sa.Uuid()),
        sa.column("hashes", sa.LargeBinary()),
        sa.column("offsets", sa.LargeBinary()),
        sa.column("ids", sa.LargeBinary()),
    )
    return keys, runs


def upgrade() -> None:
    import pyarrow as pa

    from monitors.inferences.runs import run_columns

    op.create_table(
        _RUNS,
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.Column("offsets", sa.LargeBinary(), nullable=False),
        sa.Column("ids", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["lineage_deployment.id"],
            name=op.f("fk_monitors_request_run_deployment_id_lineage_deployment"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_monitors_request_run")),
    )
    op.create_index(
        "ix_monitors_request_run_deployment_seq", _RUNS, ["deployment_id", "seq"], unique=False
    )
    bind = op.get_bind()
    keys, runs = _tables()
    groups: dict[tuple[uuid.UUID, uuid.UUID], list[str]] = {}
    found = bind.execute(sa.select(keys.c.deployment_id, keys.c.batch_id, keys.c.request_id))
    for deployment_id, batch_id, request_id in found:
        groups.setdefault((deployment_id, batch_id), []).append(request_id)
    for (deployment_id, batch_id), request_ids in groups.items():
        bind.execute(
            sa.insert(runs).values(
                deployment_id=deployment_id,
                batch_id=batch_id,
                **run_columns(pa.array(request_ids, pa.string())),
            )
        )
    bind.execute(sa.delete(keys))


def downgrade() -> None:
    from monitors.inferences.runs import run_ids

    bind = op.get_bind()
    keys, runs = _tables()
    found = bind.execute(
        sa.select(
            runs.c.deployment_id, runs.c.batch_id, runs.c.hashes, runs.c.offsets, runs.c.ids
        ).order_by(runs.c.seq)
    )
    for deployment_id, batch_id, hashes, offsets, ids in found.all():
        text = run_ids(hashes=hashes, offsets=offsets, ids=ids)
        rows = [
            {"deployment_id": deployment_id, "request_id": value, "batch_id": batch_id}
            for value in text.to_pylist()
        ]
        if rows:
            bind.execute(sa.insert(keys), rows)
    op.drop_index("ix_monitors_request_run_deployment_seq", table_name=_RUNS)
    op.drop_table(_RUNS)
