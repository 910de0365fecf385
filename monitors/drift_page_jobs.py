"""Evidently's detailed drift page, rendered by a background job after the run is recorded.

The page only illustrates a drift run: Warden's own computation judges the whole window, and
findings and policies act on that. Evidently takes seconds to render even a sampled page, so a
drift run does not wait for it: :func:`save_page_sample` keeps the window's sample (at most
:data:`DRIFT_PAGE_ROWS` rows of the judged columns) beside the run's report, and
:func:`queue_drift_page` queues a :data:`DRIFT_PAGE` job in the transaction that records the run.
The worker registers that kind as ``background`` (:mod:`lineage.runtime.handlers`): it is
claimed only when no monitor run or other work is waiting. :class:`DriftPageHandler` renders the
baseline's reference sample against the saved sample into :func:`drift_page_key` and removes
the sample; :func:`drift_page_job` tells a reader whether the page is still coming or why it
failed. When pages fall behind, a run's page is skipped if a newer run of the same monitor has
one coming (:func:`superseding_run`): the queue of pages stays at most one per monitor deep.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lineage.errors import NotFound
from lineage.runtime.handlers import JobContext, Permanent
from lineage.runtime.queue import JobState, RuntimeJob, enqueue
from lineage.storage import ObjectStore, read_parquet, write_parquet
from lineage.store import session_scope
from monitors.baseline.storage import StoredBaseline, load_baseline
from monitors.engine import FIRST_SEEN
from monitors.report import run_folder

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from monitors.baseline import Baseline

__all__ = [
    "DRIFT_PAGE",
    "DRIFT_PAGE_ROWS",
    "DriftPageHandler",
    "drift_page_job",
    "drift_page_key",
    "queue_drift_page",
    "save_page_sample",
    "superseding_run",
]

DRIFT_PAGE = "drift_page"
"""The job kind rendering a drift run's Evidently page."""
DRIFT_PAGE_ROWS = 2000
"""Rows per side Evidently's drift page is rendered on: the page is detail, not the verdict
(Warden's own computation judges the whole window), and Evidently is slow on large frames."""
_PAGE = "drift.html"
_NEWER_RUNS_CHECKED = 20
_SAMPLE = "drift-sample.parquet"
_log = logging.getLogger("warden.monitors")


def drift_page_key(*, project_id: uuid.UUID, run_id: uuid.UUID) -> str:
    """Return the key of a drift run's Evidently page: beside its report, ids only."""
    return f"{run_folder(project_id=project_id, run_id=run_id)}/{_PAGE}"


def _sample_key(*, project_id: uuid.UUID, run_id: uuid.UUID) -> str:
    return f"{run_folder(project_id=project_id, run_id=run_id)}/{_SAMPLE}"


def save_page_sample(
    *,
    store: ObjectStore,
    project_id: uuid.UUID,
    run_id: uuid.UUID,
    baseline: Baseline,
    frame: pd.DataFrame | pa.Table,
    columns: list[str],
) -> bool:
    """Keep the window's sample for the page beside the run's report; say whether there is one.

    There is none when the baseline kept no reference sample or shares no judged column with it.
    An earlier attempt's page is removed, so a reader never sees a page of another attempt.
    A window read as an Arrow table gives the same sample its frame would, converting only it.
    """
    import numpy as np
    import pyarrow as pa

    store.delete(drift_page_key(project_id=project_id, run_id=run_id))
    sample_key = _sample_key(project_id=project_id, run_id=run_id)
    reference = baseline.sample
    present = frame.column_names if isinstance(frame, pa.Table) else frame.columns
    names = [c for c in columns if reference is not None and c in reference.columns]
    names = [c for c in names if c in present]
    if reference is None or reference.empty or not names:
        store.delete(sample_key)
        return False
    if isinstance(frame, pa.Table):
        table, rows = frame.select(names), len(frame)
        if rows > DRIFT_PAGE_ROWS:  # the rows a frame's ``sample(random_state=0)`` draws
            drawn = np.random.RandomState(0).choice(rows, size=DRIFT_PAGE_ROWS, replace=False)
            table = table.take(pa.array(drawn))
        for index, field in enumerate(table.schema):  # text read as codes is text again
            if field.metadata == FIRST_SEEN:
                plain = pa.field(field.name, field.type.value_type)
                table = table.set_column(index, plain, table.column(index).cast(plain.type))
        current = table.to_pandas()
    else:
        current = (
            frame.sample(n=DRIFT_PAGE_ROWS, random_state=0)
            if len(frame) > DRIFT_PAGE_ROWS
            else frame
        )
        current = current[names]
    table = pa.Table.from_pandas(current.reset_index(drop=True), preserve_index=False)
    write_parquet(store, sample_key, table)
    return True


def _jobs(project_id: uuid.UUID, run_id: uuid.UUID) -> Any:
    payload = RuntimeJob.__table__.c.payload  # type: ignore[attr-defined]
    return (
        select(RuntimeJob)
        .where(
            RuntimeJob.project_id == project_id,
            RuntimeJob.kind == DRIFT_PAGE,
            payload["monitor_run_id"].as_string() == str(run_id),
        )
        .order_by(sa.desc(col(RuntimeJob.created_at)))
    )


def drift_page_job(
    *, session: Session, project_id: uuid.UUID, run_id: uuid.UUID
) -> RuntimeJob | None:
    """Return the newest page job of a run (its state says whether the page is coming)."""
    job = session.exec(_jobs(project_id, run_id)).first()
    assert job is None or isinstance(job, RuntimeJob)
    return job


def superseding_run(
    *, session: Session, project_id: uuid.UUID, run_id: uuid.UUID
) -> uuid.UUID | None:
    """Return a newer run of the same monitor whose page is queued or rendered, if any.

    Pages are claimed only when nothing else waits, so a worker that falls behind (a monitor
    every minute, Evidently taking seconds a page) would queue them without end: when a run's
    page is reached after a newer run of its monitor has one coming, only the newer is rendered.
    """
    from monitors.models import MonitorRun

    run = session.get(MonitorRun, run_id)
    if run is None or run.project_id != project_id:
        return None
    newer = session.exec(
        select(MonitorRun.id)
        .where(
            MonitorRun.monitor_id == run.monitor_id,
            col(MonitorRun.scheduled_for) > run.scheduled_for,
        )
        .order_by(sa.desc(col(MonitorRun.scheduled_for)))
        .limit(_NEWER_RUNS_CHECKED)
    ).all()
    if not newer:
        return None
    payload = RuntimeJob.__table__.c.payload  # type: ignore[attr-defined]
    found = session.exec(
        select(payload["monitor_run_id"].as_string()).where(
            RuntimeJob.project_id == project_id,
            RuntimeJob.kind == DRIFT_PAGE,
            col(RuntimeJob.state) != JobState.FAILED,
            payload["monitor_run_id"].as_string().in_([str(n) for n in newer]),
        )
    ).first()
    return None if found is None else uuid.UUID(str(found))


def queue_drift_page(
    *, session: Session, project_id: uuid.UUID, run_id: uuid.UUID, baseline_id: uuid.UUID
) -> RuntimeJob:
    """Queue the page of a recorded drift run (never commits); one waiting job per run."""
    waiting = drift_page_job(session=session, project_id=project_id, run_id=run_id)
    if waiting is not None and waiting.state == JobState.QUEUED:
        return waiting
    return enqueue(
        session=session,
        project_id=project_id,
        kind=DRIFT_PAGE,
        payload={"monitor_run_id": str(run_id), "baseline_id": str(baseline_id)},
        max_attempts=2,
    )


@dataclass(frozen=True, slots=True)
class DriftPageHandler:
    """Render ``drift_page`` jobs: Evidently's page of one recorded drift run.

    Attributes:
        store: The artifact store (baselines, reports).
    """

    store: ObjectStore

    def __call__(self, context: JobContext) -> dict[str, Any]:
        """Render the page from the saved sample, then remove the sample.

        Raises:
            Permanent: The sample or the baseline is gone, or Evidently cannot render this
                window (rendering it again would fail the same way).
        """
        from monitors.evidently_report import render_drift_html

        run_id = uuid.UUID(str(context.payload["monitor_run_id"]))
        page = drift_page_key(project_id=context.project_id, run_id=run_id)
        sample_key = _sample_key(project_id=context.project_id, run_id=run_id)
        try:
            sample = read_parquet(self.store, sample_key).to_pandas()
        except NotFound:
            if self.store.exists(page):  # an earlier attempt rendered it and died before recording
                return {"page": _PAGE}
            raise Permanent(
                f"the window sample of run {run_id} is gone; run the monitor again"
            ) from None
        with session_scope(context.engine) as session:
            newer = superseding_run(session=session, project_id=context.project_id, run_id=run_id)
            stored = session.get(StoredBaseline, uuid.UUID(str(context.payload["baseline_id"])))
        if newer is not None:
            self.store.delete(sample_key)
            return {"page": None, "superseded_by": str(newer)}
        if stored is None:
            raise Permanent(f"the baseline of run {run_id} was deleted")
        baseline = load_baseline(store=self.store, stored=stored)
        context.progress(0.1, f"rendering Evidently's drift page on {len(sample)} rows per side")
        try:
            html = render_drift_html(
                baseline, sample, columns=list(sample.columns), sample_rows=DRIFT_PAGE_ROWS
            )
        except Exception as error:  # the page illustrates; the run's findings stand without it
            _log.warning("Evidently's drift page failed for run %s: %s", run_id, error)
            self.store.delete(sample_key)
            raise Permanent(f"Evidently could not render the page: {error}") from error
        self.store.put(page, html.encode())
        self.store.delete(sample_key)
        return {"page": _PAGE}
