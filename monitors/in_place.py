"""Judge a window where its objects lie: Spark reads them, the worker reads no row.

A scheduled run over a large window on Spark would otherwise pull every row into the worker
only to hand them back to Spark. For the kinds whose summaries are folds or drift summaries
(:data:`IN_PLACE_KINDS`), the run's executor (:mod:`monitors.execute`) hands this module the
window's objects instead, and it applies the window conventions
(:mod:`monitors.window_conventions`) to a :class:`~monitors.inferences.windows.WindowView`
rather than to a read frame.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from lineage.models import ModelVersion
from lineage.storage import ObjectStore
from monitors.baseline import Baseline
from monitors.baseline.storage import StoredBaseline, load_baseline
from monitors.drift_page_jobs import DRIFT_PAGE_ROWS, save_page_sample
from monitors.inferences.windows import WindowObjects, WindowView
from monitors.kinds import MonitorContext, MonitorResult, Progress, run_monitor
from monitors.reference_completion import complete_reference
from monitors.spec import SLICED_KINDS, Kind, MonitorSpec
from monitors.window_conventions import (
    HIDDEN_COLUMNS,
    context_names,
    fill_conventions,
    model_features,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["IN_PLACE_KINDS", "can_judge_in_place", "judge_in_place"]

IN_PLACE_KINDS = frozenset(
    {Kind.DRIFT, Kind.PREDICTION_DRIFT, Kind.QUALITY, Kind.PERFORMANCE, Kind.FAIRNESS}
)
"""Kinds Spark judges where the window lies (their summaries are folds or drift summaries)."""


def can_judge_in_place(spec: MonitorSpec) -> bool:
    """Say whether Spark can judge this run's window where it lies, unread by the worker.

    Per-slice findings are judged over rows read into the worker, so a sliced run reads its
    window (:mod:`monitors.execute`).
    """
    return spec.kind in IN_PLACE_KINDS and not (spec.slices and spec.kind in SLICED_KINDS)


def _view_for(
    spec: MonitorSpec, view: WindowView, filled: dict[str, int]
) -> tuple[MonitorSpec, WindowView]:
    """Return the spec and the rows a kind judges, as :func:`judged_frame` selects them, unread.

    ``filled`` counts the values of the view's columns that matter (the label's, at least).
    """
    label = spec.label_column
    if label is None or label not in view.columns:
        return spec, view
    without = {name: source for name, source in view.columns.items() if name != label}
    if spec.kind == Kind.FAIRNESS and filled.get(label, 0) < spec.min_rows:
        return spec.model_copy(update={"label_column": None}), replace(view, columns=without)
    if spec.kind in (Kind.PERFORMANCE, Kind.FAIRNESS):
        judged = replace(
            view, labelled=label, label_as=spec.prediction_column, rows=filled.get(label, 0)
        )
        return spec, judged
    return spec, replace(view, columns=without)


def judge_in_place(
    *,
    spec: MonitorSpec,
    objects: WindowObjects,
    schemas: tuple[pa.Schema, pa.Schema | None],
    model_version: ModelVersion,
    stored_baseline: StoredBaseline | None,
    store: ObjectStore,
    project_id: uuid.UUID,
    run_id: uuid.UUID,
    master: str,
    tell: Progress,
) -> tuple[MonitorResult, bool] | None:
    """Judge the window where its objects lie; return ``None`` when it holds no row.

    One Spark job counts the rows and the values of the output columns (what the conventions
    and the labelled rows' selection need), then the kind's own summaries run on Spark. A drift
    run's page keeps a sample of at most ``DRIFT_PAGE_ROWS`` rows, drawn by Spark. Returns the
    result and whether a drift page sample was kept.
    """
    from monitors.spark_engine import spark_census, spark_sample, spark_session

    schema, label_schema = schemas
    stored = [str(name) for name in schema.names]
    context = context_names(stored)
    judged = {context.get(name, name): name for name in stored}
    features = model_features(model_version, list(judged), list(context.values()))
    columns = {
        name: source
        for name, source in judged.items()
        if name not in (*HIDDEN_COLUMNS, "attributions")
    }
    columns["label"] = "label"  # joined from the label objects; the local window always has one
    view = WindowView(objects=objects, schema=schema, label_schema=label_schema, columns=columns)
    counted = ["prediction", "score"]
    if spec.kind in (Kind.PERFORMANCE, Kind.FAIRNESS):
        counted += ["label", *([spec.label_column] if spec.label_column else [])]
    counted = [name for name in dict.fromkeys(counted) if name in columns]
    session = spark_session(master)
    rows, filled = spark_census(view, counted, session=session)
    if not rows:
        return None
    view = replace(view, rows=rows)
    baseline = (
        Baseline(rows=0, columns={})
        if stored_baseline is None
        else load_baseline(store=store, stored=stored_baseline)
    )
    with_data = {name for name, count in filled.items() if count}
    conventions = fill_conventions(spec, with_data, features, list(context.values()), baseline)
    spec, view = _view_for(conventions, view, filled)
    baseline = complete_reference(spec, baseline, None, features)
    result = run_monitor(
        spec,
        MonitorContext(
            window=view,
            baseline=baseline,
            feature_names=features,
            progress=lambda fraction, message: tell(0.2 + 0.7 * fraction, message),
            engine="spark",
            spark_master=master,
        ),
    )
    if spec.kind != Kind.DRIFT or stored_baseline is None:
        return result, False
    import pandas as pd

    reference = baseline.sample
    shown = [
        name
        for name in spec.columns or []
        if reference is not None and name in reference.columns and name in view.columns
    ]
    sample = (
        spark_sample(view, shown, DRIFT_PAGE_ROWS, session=session) if shown else pd.DataFrame()
    )
    paged = save_page_sample(
        store=store,
        project_id=project_id,
        run_id=run_id,
        baseline=baseline,
        frame=sample,
        columns=list(spec.columns or []),
    )
    return result, paged
