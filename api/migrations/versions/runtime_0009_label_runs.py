"""Runtime: label request ids as runs too — ``monitors_request_run`` gets a ``kind``.

One home for "which request ids has this deployment stored, in which batch"
(:mod:`monitors.inferences.runs`): label batches get runs like inference batches. The runs
stored so far are inference runs (the column's server default, so neither dialect rewrites the
table); the index leads with ``(deployment_id, kind)``. The label ids keyed so far in
``monitors_label_key`` become one label run per batch (hashed here, as ``runtime_0008`` did for
inference keys) and their key rows go; the downgrade writes them back from the label runs.

Revision ID: runtime_0009
Revises: runtime_0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "runtime_0009"
down_revision: str | Sequence[str] | None = "runtime_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUNS = "monitors_request_run"
_KEYS = "monitors_label_key"
_OLD_INDEX = "ix_monitors_request_run_deployment_seq"
_INDEX = "ix_monitors_request_run_deployment_kind_seq"


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
        sa.column("kind", sa.String()),
        sa.column("batch_id", sa.Uuid()),
        sa.column("hashes", sa.LargeBinary()),
        sa.column("offsets", sa.LargeBinary()),
        sa.column("ids", sa.LargeBinary()),
    )
    return keys, runs


def upgrade() -> None:
    import pyarrow as pa

    from monitors.inferences.runs import run_columns

    op.add_column(
        _RUNS,
        sa.Column("kind", sa.String(length=16), server_default="inferences", nullable=False),
    )
    op.drop_index(_OLD_INDEX, table_name=_RUNS)
    op.create_index(_INDEX, _RUNS, ["deployment_id", "kind", "seq"], unique=False)
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
                kind="labels",
                batch_id=batch_id,
                **run_columns(pa.array(request_ids, pa.string())),
            )
        )
    bind.execute(sa.delete(keys))


def downgrade() -> None:
    from monitors.inferences.runs import run_ids

    bind = op.get_bind()
    keys, runs = _tables()
    labels = runs.c.kind == "labels"
    found = bind.execute(
        sa.select(runs.c.deployment_id, runs.c.batch_id, runs.c.hashes, runs.c.offsets, runs.c.ids)
        .where(labels)
        .order_by(runs.c.seq)
    )
    for deployment_id, batch_id, hashes, offsets, ids in found.all():
        text = run_ids(hashes=hashes, offsets=offsets, ids=ids)
        rows = [
            {"deployment_id": deployment_id, "request_id": value, "batch_id": batch_id}
            for value in text.to_pylist()
        ]
        if rows:
            bind.execute(sa.insert(keys), rows)
    bind.execute(sa.delete(runs).where(labels))
    op.drop_index(_INDEX, table_name=_RUNS)
    op.create_index(_OLD_INDEX, _RUNS, ["deployment_id", "seq"], unique=False)
    with op.batch_alter_table(_RUNS) as batch:
        batch.drop_column("kind")
