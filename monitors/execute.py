"""Run one persisted monitor run end to end: window in, findings and a stored report out.

:func:`execute_monitor_run` is what the worker's ``monitor_run`` handler and ``warden monitor run``
call:

1. read the run, its monitor and the monitor's deployment; load the deployment's newest stored
   baseline (:mod:`monitors.baseline.storage`);
2. read the window the run was given (``window_start`` → ``window_end``, fixed by the monitor's
   window rule when the run was queued) from the Parquet inference log, labels joined
   (:func:`monitors.inferences.read_window`); a kind over LLM traces reads the window's model
   and tool calls and its reference window instead, and needs no baseline
   (:mod:`monitors.llm.windows`). The engine is chosen first, from the rows the window's batches
   hold (:func:`monitors.inferences.windows.window_objects`, nothing read); when it is Spark,
   drift, prediction drift, quality, performance and fairness runs without slices read no row
   here: Spark's tasks read the objects in place (:mod:`monitors.in_place`);
3. load the model only when the computation needs it: an explanations run whose records logged
   no attributions, of a version that is not ``external``; through the :class:`ModelLoader` the
   composition root passes in (the real one loads only versions registered in Warden after
   their artifact hash matched lineage; monitors never import it). Drift, prediction drift,
   quality, performance and fairness read the logged features, context values, predictions,
   scores and labels and never load a model;
4. run the computation library (:func:`monitors.kinds.run_monitor`) with progress reported;
5. store the JSON and HTML report in the artifact store under keys made of ids
   (:func:`report_keys`); a drift run
   also keeps a sample of the window for Evidently's detailed drift page, linked from the
   report (:mod:`monitors.drift_page_jobs`);
6. in one transaction: write the run's ``summary`` (a :class:`monitors.findings.RunSummary`),
   record a lineage run whose inputs are the reference dataset version, the baseline and the
   inference window, hand the findings to ``on_findings`` (the worker wires
   ``retrain.loop.handle_run_findings`` there: alert rules, then policies), and queue the
   drift page as a background job: findings and policies never wait for Evidently.

Window conventions (which columns a kind judges, under which names) live in
:mod:`monitors.window_conventions`.

A monitor with nothing to read — no deployment, no baseline yet (for the kinds that need one:
fairness and performance judge absolute thresholds without it), an empty window — yields a run
that *succeeds* with status ``insufficient`` and a ``reason``: too little data is reported,
never alerted on, and never retried. A spec that cannot apply (unknown column) fails the run.

Reference sections a kind needs but the stored baseline lacks are computed at run time from the
baseline's reference sample (:mod:`monitors.reference_completion`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage.errors import InvalidInput, NotFound
from lineage.models import Dataset, DatasetVersion, Deployment, ModelVersion
from lineage.openlineage_events import DatasetRef, emit, run_event
from lineage.storage import ObjectStore
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.baseline import Baseline
from monitors.baseline.storage import StoredBaseline, latest_baseline, load_baseline
from monitors.drift_page_jobs import queue_drift_page, save_page_sample
from monitors.engine import EngineName, SummaryEngine
from monitors.findings import Finding, RunSummary, Status, worst_status
from monitors.in_place import can_judge_in_place, judge_in_place
from monitors.inferences import read_window, slot_deployments
from monitors.inferences.windows import WindowObjects, WindowParts, window_objects, window_parts
from monitors.kinds import MonitorContext, MonitorResult, Progress, run_monitor
from monitors.llm.assessments import record_assessments
from monitors.llm.windows import CallWindows, read_call_windows
from monitors.models import Monitor, MonitorRun
from monitors.reference_completion import complete_reference
from monitors.report import report_keys
from monitors.spec import SLICED_KINDS, TRACE_KINDS, Kind, MonitorSpec
from monitors.window_conventions import (
    DriftColumns,
    drift_columns,
    fill_conventions,
    has_data,
    judged_frame,
    model_features,
    with_context,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ChatFactory",
    "FindingsCallback",
    "ModelLoader",
    "execute_monitor_run",
    "report_keys",
    "summarise",
]

_NO_BASELINE_KINDS = frozenset({Kind.EXPLANATIONS, Kind.FAIRNESS, Kind.PERFORMANCE})
"""Kinds that judge a window without any baseline: absolute thresholds (fairness,
performance), or the window's importance alone (explanations)."""
_NO_ROWS = "no inferences were logged in the window"


class ModelLoader(Protocol):
    """Load a registered model version (the worker passes ``retrain.VerifiedModelLoader``).

    An implementation must load only versions registered in Warden, and only after their
    artifact hash matches ``model_version.artifact_sha256``; it raises otherwise.
    """

    def load(self, model_version: ModelVersion) -> Any:
        """Return the loaded model (anything with ``predict``)."""


class ChatFactory(Protocol):
    """Return a project's chat sender, bound to its outbound guard (the worker passes one)."""

    def __call__(self, *, session: Session, project_id: uuid.UUID) -> Callable[..., Any]:
        """Return a function with :func:`monitors.scoring.openai_chat.chat`'s signature."""


class FindingsCallback(Protocol):
    """Receive a run's findings inside the transaction that records the run (never commits)."""

    def __call__(
        self, *, session: Session, monitor: Monitor, run: MonitorRun, findings: list[Finding]
    ) -> None:
        """Act on the findings (route alerts, evaluate policies)."""


@dataclass(slots=True)
class _Inputs:
    """What a run reads, gathered in one short transaction."""

    run: MonitorRun
    monitor: Monitor
    spec: MonitorSpec
    deployment: Deployment | None = None
    model_version: ModelVersion | None = None
    stored: StoredBaseline | None = None
    reference: tuple[Dataset, DatasetVersion] | None = None
    window: pd.DataFrame | pa.Table | None = None
    columns: DriftColumns | None = None
    parts: WindowParts | None = None
    objects: WindowObjects | None = None
    schemas: tuple[pa.Schema, pa.Schema | None] | None = None
    engine: EngineName = "local"
    batches: list[uuid.UUID] | None = None
    calls: CallWindows | None = None
    chat: Callable[..., Any] | None = None
    reason: str | None = None


def _live_version(session: Session, deployment: Deployment, at: datetime | None) -> ModelVersion:
    """Return the version serving the deployment's slot at ``at`` (else the deployment's own)."""
    chosen = deployment
    if at is not None:
        for row in slot_deployments(session=session, deployment=deployment):
            if row.live_from < at and (row.live_until is None or row.live_until >= at):
                chosen = row
    model_version = session.get(ModelVersion, chosen.model_version_id)
    if model_version is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound(f"deployment {chosen.id} serves no known model version")
    return model_version


def _gather(
    session: Session,
    store: ObjectStore,
    run_id: uuid.UUID,
    chat_for: ChatFactory | None = None,
    rule: SummaryEngine | None = None,
) -> _Inputs:
    run = session.get(MonitorRun, run_id)
    if run is None:
        raise LookupError(f"monitor run {run_id} does not exist")
    monitor = session.get(Monitor, run.monitor_id)
    if monitor is None:
        raise LookupError(f"monitor {run.monitor_id} of run {run_id} does not exist")
    inputs = _Inputs(run=run, monitor=monitor, spec=MonitorSpec.model_validate(monitor.spec))
    if monitor.deployment_id is None:
        inputs.reason = "the monitor watches no deployment, so there is no inference log to read"
        return inputs
    deployment = session.get(Deployment, monitor.deployment_id)
    if deployment is None:  # pragma: no cover - a foreign key guarantees it
        raise LookupError(f"deployment {monitor.deployment_id} does not exist")
    inputs.deployment = deployment
    inputs.model_version = _live_version(session, deployment, run.window_end)
    if inputs.spec.kind in TRACE_KINDS:
        inputs.calls = read_call_windows(
            session=session,
            spec=inputs.spec,
            deployment=deployment,
            start=run.window_start,
            end=run.window_end,
        )
        inputs.window = inputs.calls.current
        if chat_for is not None and inputs.spec.kind == Kind.LLM_JUDGE:
            inputs.chat = chat_for(session=session, project_id=run.project_id)
        if not len(inputs.window):
            inputs.reason = "no LLM calls were traced in the window"
        return inputs
    try:
        inputs.stored = latest_baseline(session=session, deployment=deployment)
    except NotFound as error:
        if inputs.spec.kind not in _NO_BASELINE_KINDS:
            inputs.reason = error.detail
            return inputs
    if inputs.stored is not None and inputs.stored.dataset_version_id is not None:
        version = session.get(DatasetVersion, inputs.stored.dataset_version_id)
        dataset = None if version is None else session.get(Dataset, version.dataset_id)
        if version is not None and dataset is not None:
            inputs.reference = (dataset, version)
    objects = window_objects(
        session=session,
        store=store,
        deployment=deployment,
        start=run.window_start,
        end=run.window_end,
    )
    inputs.engine = (rule or SummaryEngine()).choose(rows=objects.rows, deployment=deployment.name)
    if inputs.engine == "spark" and can_judge_in_place(inputs.spec):
        schema, label_schema = objects.schemas()
        if schema is not None and (label_schema is not None or not objects.labels.keys):
            inputs.objects, inputs.schemas = objects, (schema, label_schema)
            inputs.batches = list(objects.batches)
            return inputs
    if inputs.engine == "local" and inputs.spec.kind == Kind.DRIFT and not inputs.spec.slices:
        parts = window_parts(
            session=session,
            store=store,
            deployment=deployment,
            start=run.window_start,
            end=run.window_end,
        )
        columns = drift_columns(inputs.spec, inputs.model_version, list(parts.names))
        if columns is not None:  # only the judged columns, read after: no ids, no labels joined
            inputs.columns, inputs.parts, inputs.batches = columns, parts, list(parts.batches)
            if not parts.rows:
                inputs.reason = _NO_ROWS
            return inputs
    inputs.window, inputs.batches = read_window(
        session=session,
        store=store,
        deployment=deployment,
        start=run.window_start,
        end=run.window_end,
    )
    if not len(inputs.window):
        inputs.reason = _NO_ROWS
    return inputs


def _with_slices(
    spec: MonitorSpec, result: MonitorResult, frame: pd.DataFrame, baseline: Baseline
) -> MonitorResult:
    """Add per-slice drift, accuracy and fairness findings (:mod:`monitors.drift.slices`)."""
    from monitors.drift.slices import SliceConfig, slice_findings

    missing = [name for name in spec.slices if name not in frame.columns]
    if missing:
        raise InvalidInput(
            f"the window has no column {missing[0]!r} to slice by; its columns are "
            f"{sorted(str(c) for c in frame.columns)}",
            field="slices",
        )
    config = SliceConfig(
        columns=tuple(spec.slices),
        top_k=int(spec.options.get("top_slices", 5)),
        min_rows=int(spec.options.get("min_slice_rows", spec.min_rows)),
        fdr=spec.fdr or 0.05,
    )
    drifting = spec.kind == Kind.DRIFT
    fair = spec.kind == Kind.FAIRNESS
    missing_groups = [n for n in spec.sensitive_features if fair and n not in frame.columns]
    if missing_groups:
        raise InvalidInput(
            f"the window has no sensitive column {missing_groups[0]!r}",
            field="sensitive_features",
        )
    findings, section = slice_findings(
        frame,
        config=config,
        monitor=str(spec.kind),
        reference=baseline.sample if drifting else None,
        columns=list(spec.columns or []) if drifting else None,
        label_column=None if drifting else spec.label_column,
        prediction_column=None if drifting else spec.prediction_column,
        sensitive_features=list(spec.sensitive_features) if fair else None,
        positive_label=spec.positive_label,
        min_group_size=int(spec.options.get("min_group_size", 30)),
    )
    everything = [*result.findings, *findings]
    return replace(
        result,
        findings=everything,
        status=worst_status([f.status for f in everything]),
        report={**result.report, "slices": section},
    )


def _needs_model(spec: MonitorSpec, frame: pd.DataFrame, model_version: ModelVersion) -> bool:
    """Say whether the run must load the model: explanations without logged attributions only."""
    if spec.kind != Kind.EXPLANATIONS or model_version.external:
        return False
    return not has_data(frame, "attributions")


def _judge_in_place(
    inputs: _Inputs, store: ObjectStore, rule: SummaryEngine, tell: Progress
) -> tuple[MonitorResult, bool]:
    """Judge the window in place (:mod:`monitors.in_place`); an empty one leaves it insufficient."""
    assert inputs.objects is not None
    assert inputs.schemas is not None
    assert inputs.model_version is not None
    judged = judge_in_place(
        spec=inputs.spec,
        objects=inputs.objects,
        schemas=inputs.schemas,
        model_version=inputs.model_version,
        stored_baseline=inputs.stored,
        store=store,
        project_id=inputs.run.project_id,
        run_id=inputs.run.id,
        master=rule.master,
        tell=tell,
    )
    if judged is None:
        inputs.reason = _NO_ROWS
        return _insufficient(inputs.spec, _NO_ROWS), False
    return judged


def _judge_columns(
    inputs: _Inputs, store: ObjectStore, rule: SummaryEngine, tell: Progress
) -> tuple[MonitorResult, bool]:
    """Judge a drift run on its judged columns as read (:func:`drift_columns`).

    The same spec, baseline, findings and page sample as :func:`_judge_read` gives reading
    the whole window.
    """
    import pyarrow as pa

    from monitors.baseline.column_summary import CategoricalSummary

    assert inputs.parts is not None
    assert inputs.columns is not None
    assert inputs.stored is not None
    columns = inputs.columns
    baseline = load_baseline(store=store, stored=inputs.stored)
    counted = [  # categories are counted from codes, never decoded
        source
        for name, source in columns.sources.items()
        if isinstance(baseline.columns.get(name), CategoricalSummary)
    ]
    window = inputs.parts.read(store, list(columns.sources.values()), codes=counted)
    named = {source: name for name, source in columns.sources.items()}
    inputs.window = (
        window.rename_columns([named[str(c)] for c in window.column_names])
        if isinstance(window, pa.Table)
        else window.rename(columns=named)
    )
    spec = fill_conventions(inputs.spec, set(), columns.features, columns.context, baseline)
    baseline = complete_reference(spec, baseline, None, columns.features)
    context = MonitorContext(
        window=inputs.window,
        baseline=baseline,
        feature_names=columns.features,
        progress=lambda fraction, message: tell(0.2 + 0.7 * fraction, message),
        engine=inputs.engine,
        spark_master=rule.master,
    )
    result = run_monitor(spec, context)
    return result, save_page_sample(
        store=store,
        project_id=inputs.run.project_id,
        run_id=inputs.run.id,
        baseline=baseline,
        frame=inputs.window,
        columns=list(spec.columns or []),
    )


def _judge_read(
    inputs: _Inputs,
    store: ObjectStore,
    loader: ModelLoader | None,
    rule: SummaryEngine,
    tell: Progress,
) -> tuple[MonitorResult, bool]:
    """Judge the window read into this process; return the result and whether a page is kept."""
    assert inputs.window is not None
    assert inputs.model_version is not None
    window, context_columns = with_context(inputs.window)
    features = model_features(
        inputs.model_version, [str(c) for c in window.columns], context_columns
    )
    baseline = (
        Baseline(rows=0, columns={})
        if inputs.stored is None
        else load_baseline(store=store, stored=inputs.stored)
    )
    filled = {name for name in ("label", "prediction", "score") if has_data(window, name)}
    spec, frame = judged_frame(
        fill_conventions(inputs.spec, filled, features, context_columns, baseline), window
    )
    model = None
    if _needs_model(spec, frame, inputs.model_version) and loader is not None:
        tell(0.15, f"loading model {inputs.model_version.name} v{inputs.model_version.version}")
        model = loader.load(inputs.model_version)
    baseline = complete_reference(spec, baseline, model, features)

    def scaled(fraction: float, message: str) -> None:
        tell(0.2 + 0.7 * fraction, message)

    context = MonitorContext(
        window=frame,
        baseline=baseline,
        model=model,
        feature_names=features,
        progress=scaled,
        engine=inputs.engine,
        spark_master=rule.master,
    )
    result = run_monitor(spec, context)
    if spec.slices and spec.kind in SLICED_KINDS and result.status != Status.INSUFFICIENT:
        tell(0.85, f"judging slices by {', '.join(spec.slices)}")
        result = _with_slices(spec, result, frame, baseline)
    if spec.kind == Kind.DRIFT and inputs.stored is not None:
        return result, save_page_sample(
            store=store,
            project_id=inputs.run.project_id,
            run_id=inputs.run.id,
            baseline=baseline,
            frame=frame,
            columns=list(spec.columns or []),
        )
    return result, False


def summarise(result: MonitorResult, *, reason: str | None = None) -> RunSummary:
    """Return the run summary ``/metrics``, the dashboard, the reports and the API read.

    ``reason`` says why nothing was judged (``computed`` is then false).
    """
    return RunSummary.of(
        kind=result.kind,
        status=result.status,
        rows=result.rows,
        findings=result.findings,
        reason=reason,
    )


def _insufficient(spec: MonitorSpec, reason: str) -> MonitorResult:
    finding = Finding(
        monitor=str(spec.kind),
        metric="row_count",
        scope="dataset",
        value=None,
        threshold=float(spec.min_rows),
        status=Status.INSUFFICIENT,
        detail={"reason": reason},
    )
    return MonitorResult(
        kind=str(spec.kind),
        status=Status.INSUFFICIENT,
        rows=0,
        findings=[finding],
        report={"insufficient": True, "reason": reason},
        charts=[],
        seconds=0.0,
    )


def _window_name(deployment: Deployment, kind: str) -> str:
    source = "traces" if kind in TRACE_KINDS else "inferences"
    return f"{source}/{deployment.name}/{deployment.environment}"


def _lineage_event(inputs: _Inputs, summary: RunSummary, at: datetime) -> dict[str, Any]:
    """Return the OpenLineage COMPLETE event of the run: reference, baseline and window in."""
    run, deployment, stored = inputs.run, inputs.deployment, inputs.stored
    assert deployment is not None
    window = f"{_iso(run.window_start)}..{_iso(run.window_end)}"
    datasets: list[DatasetRef] = []
    if inputs.reference is not None:
        dataset, version = inputs.reference
        datasets.append(DatasetRef(dataset.namespace, dataset.name, version=version.version))
    if stored is not None:
        datasets.append(
            DatasetRef("warden", f"baselines/{deployment.name}", version=str(stored.id))
        )
    name = _window_name(deployment, inputs.spec.kind)
    calls = inputs.calls
    if calls is not None and calls.reference_start is not None:
        span = f"{_iso(calls.reference_start)}..{_iso(calls.reference_end)}"
        datasets.append(DatasetRef("warden", name, version=span))
    datasets.append(DatasetRef("warden", name, version=window))
    monitor_facet = {
        "monitorId": str(inputs.monitor.id),
        "monitorRunId": str(run.id),
        "kind": inputs.monitor.kind,
        "baselineId": None if stored is None else str(stored.id),
        "modelVersionId": str(inputs.model_version.id) if inputs.model_version else None,
        "windowStart": _iso(run.window_start),
        "windowEnd": _iso(run.window_end),
        "inferenceBatches": [str(b) for b in inputs.batches or []],
        "rows": summary.rows,
        "status": None if summary.status is None else summary.status.value,
    }
    return run_event(
        event_type="COMPLETE",
        event_time=at,
        run_id=run.id,
        job_namespace="warden",
        job_name=f"monitor/{inputs.monitor.name}",
        inputs=datasets,
        run_facets={"monitor": monitor_facet},
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def execute_monitor_run(
    *,
    engine: Engine,
    store: ObjectStore,
    run_id: uuid.UUID,
    loader: ModelLoader | None = None,
    on_findings: FindingsCallback | None = None,
    progress: Progress | None = None,
    chat_for: ChatFactory | None = None,
    summary_engine: SummaryEngine | None = None,
) -> dict[str, Any]:
    """Execute one monitor run and record its outcome; return the run's stored summary.

    The summary is returned in its stored JSON form (:meth:`RunSummary.to_json`), which is also
    the job's output; read it back with :meth:`RunSummary.from_json`.

    Opens its own short transactions (reading, then recording), so no lock is held while the
    computation runs. Idempotent per run: a retried run overwrites its report, replays its
    lineage run, and its findings are handled once (alerting and policies key on the run id).

    Args:
        engine: The store.
        store: The artifact store (inference logs, baselines, reports).
        run_id: The :class:`~monitors.models.MonitorRun` to execute.
        loader: Loads the model for kinds that need it; without one, explanations cannot run.
        on_findings: Called with the findings in the transaction that records the run.
        progress: Called with a fraction and a message while the run works.
        chat_for: Gives a judge run its project's guarded chat sender; without one, an
            ``llm_judge`` run fails saying it needs a worker.
        summary_engine: Which engine summarises the window (default: local; drift and
            prediction drift can summarise on Spark, :mod:`monitors.engine`).

    Raises:
        LookupError: The run or its monitor does not exist.
        InvalidInput: The spec cannot apply to this window or baseline (an unknown column).
    """
    from monitors.report import build_report

    def tell(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    rule = summary_engine or SummaryEngine()
    with session_scope(engine) as session:
        inputs = _gather(session, store, run_id, chat_for, rule)
    paged = False
    rows = 0 if inputs.window is None else len(inputs.window)
    if inputs.parts is not None:
        rows = inputs.parts.rows
    if inputs.reason is not None:
        tell(0.1, inputs.reason)
        result = _insufficient(inputs.spec, inputs.reason)
    elif inputs.calls is not None:
        tell(0.1, f"read {rows} rows of the window")
        result = run_monitor(
            inputs.spec,
            MonitorContext(
                window=inputs.calls.current,
                baseline=Baseline(rows=0, columns={}),
                reference=inputs.calls.reference,
                progress=lambda fraction, message: tell(0.2 + 0.7 * fraction, message),
                chat=inputs.chat,
            ),
        )
    elif inputs.objects is not None:
        tell(0.1, f"judging the window's {len(inputs.objects.batches)} batches in place on Spark")
        result, paged = _judge_in_place(inputs, store, rule, tell)
    elif inputs.columns is not None:
        tell(0.1, f"reading {len(inputs.columns.sources)} judged columns of {rows} rows")
        result, paged = _judge_columns(inputs, store, rule, tell)
    else:
        tell(0.1, f"read {rows} rows of the window")
        result, paged = _judge_read(inputs, store, loader, rule, tell)
    summary = summarise(result, reason=inputs.reason)
    tell(0.92, "writing the report")
    at = utcnow()
    run = inputs.run
    title = f"{inputs.monitor.name} ({inputs.monitor.kind})"
    if inputs.deployment is not None:
        title += f" on {inputs.deployment.name}/{inputs.deployment.environment}"
    meta = {
        "monitor_id": str(inputs.monitor.id),
        "run_id": str(run.id),
        "window_start": _iso(run.window_start),
        "window_end": _iso(run.window_end),
        "baseline_id": None if inputs.stored is None else str(inputs.stored.id),
        "model_version_id": None if inputs.model_version is None else str(inputs.model_version.id),
        "reason": inputs.reason,
    }
    if inputs.calls is not None:
        meta["reference_start"] = _iso(inputs.calls.reference_start)
        meta["reference_end"] = _iso(inputs.calls.reference_end)
    links = {"Evidently drift page (sampled)": "drift.html"} if paged else {}
    report = build_report([result], title=title, meta=meta, generated_at=at, links=links)
    json_key, html_key = report_keys(project_id=run.project_id, run_id=run.id)
    for key, text in ((json_key, report.to_json()), (html_key, report.html)):
        store.put(key, text.encode())  # each whole or not at all
    with session_scope(engine) as session:
        stored_run = session.get(MonitorRun, run.id)
        monitor = session.get(Monitor, inputs.monitor.id)
        if stored_run is None or monitor is None:
            raise LookupError(f"monitor run {run.id} was deleted while it ran")
        if inputs.reason is None:
            emit(
                session=session,
                project_id=run.project_id,
                event=_lineage_event(inputs, summary, at),
            )
            summary = replace(summary, lineage_run_id=str(run.id))
        stored_run.summary = summary.to_json()
        session.add(stored_run)
        session.flush()
        if result.kind == Kind.LLM_JUDGE and "assessments" in result.report:
            record_assessments(
                session=session,
                project_id=run.project_id,
                run_id=run.id,
                assessments=result.report["assessments"],
            )
        if on_findings is not None:
            on_findings(session=session, monitor=monitor, run=stored_run, findings=result.findings)
        if paged and inputs.stored is not None:
            queue_drift_page(
                session=session,
                project_id=run.project_id,
                run_id=run.id,
                baseline_id=inputs.stored.id,
            )
    tell(1.0, f"{result.kind}: {result.status.value}")
    return summary.to_json()
