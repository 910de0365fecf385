"""What the benchmarks seed into a store before they time anything.

One home for the two set-ups several benchmarks share: a service account holding a role in a
project with an API key (the caller a benchmark's HTTP client uses), and an inference batch
written as the inference log stores one (its row, then its Parquet partition), so a window
reads back exactly as a logged one does. Imports are inside the functions: a benchmark's
``--help`` stays light.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from sqlmodel import Session

    from governance.actors import Actor
    from governance.roles import Role

__all__ = ["service_key", "store_inference_batch"]


def service_key(
    *, session: Session, actor: Actor, project_id: uuid.UUID, name: str, role: Role
) -> str:
    """Create service account ``name`` with ``role`` in the project; return its API key's secret."""
    from governance.identity import create_service_account, issue_api_key
    from governance.roles import grant_role

    account = create_service_account(session=session, actor=actor, name=name)
    grant_role(
        session=session, actor=actor, project_id=project_id, principal_id=account.id, role=role
    )
    return issue_api_key(session=session, actor=actor, principal_id=account.id).secret


def store_inference_batch(
    *,
    session: Session,
    data_dir: Path,
    project_id: uuid.UUID,
    deployment_id: uuid.UUID,
    frame: pd.DataFrame,
    at: datetime,
) -> Path:
    """Store ``frame`` (request ids, times, features, outputs) as one inference batch at ``at``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from monitors.inferences import InferenceBatch
    from monitors.inferences.partitions import partition_key

    batch = InferenceBatch(
        project_id=project_id,
        deployment_id=deployment_id,
        kind="inferences",
        rows=len(frame),
        first_at=at,
        last_at=at,
    )
    session.add(batch)
    session.flush()
    path = data_dir / partition_key(
        project_id=project_id, deployment_id=deployment_id, kind="inferences", batch_id=batch.id
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path
