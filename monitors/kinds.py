"""Monitor kinds as plug-ins: spec → runner → typed findings, and the contract a kind keeps.

Contract for a kind (fairness and explanations plug in through exactly this):

* A kind is a function ``run(spec: MonitorSpec, context: MonitorContext) -> KindResult``,
  registered under its ``Kind`` value with ``@register_kind(Kind.X)`` in the module listed for it
  in ``BUILTIN_KINDS``. That module is imported lazily the first time the kind runs, so heavy
  libraries (scipy, shap, evidently) load only in the process that runs monitors.
* It reads the window with ``context.frame(columns)`` (a pandas DataFrame; a window may be a
  Parquet file, which ``frame`` loads column-wise) and the reference with ``context.baseline``
  (``Baseline``: per-column summaries plus ``extras``, a dict of named JSON-ready sections such as
  ``"performance"``, ``"fairness"`` or ``"explanations"`` that each kind owns and documents).
* A kind over LLM traces (``llm_operations``, ``text_descriptors``, ``embedding_drift``,
  ``llm_judge``) reads
  the window as a table of model and tool calls (:mod:`monitors.llm.calls`) and the reference
  *window* of the same deployment as ``context.reference`` (same columns; ``None`` when the
  monitor has none); it needs no stored baseline. A kind that calls an LLM (``llm_judge``)
  sends through ``context.chat`` (the worker binds it to the project's outbound guard), never
  its own client.
* A kind that counts mergeable summaries hands a :class:`monitors.engine.Fold` to
  ``context.summarise(fold)``, which runs it on the context's engine (here, or Spark's tasks):
  quality, performance and fairness do; their findings are then the same on either engine.
* It may use ``context.model`` (anything with ``predict``; ``predict_proba`` when it exists) and
  ``context.feature_names``; it calls ``context.report_progress(fraction, message)`` on long work.
* It returns ``KindResult(findings, report, charts)``:
  ``findings`` are ``monitors.findings.Finding`` with ``monitor`` set to the kind name;
  ``report`` is a JSON-ready dict (every metric, threshold and verdict of the run);
  ``charts`` are ``Chart`` values (data, not pictures; ``monitors.report`` draws them).
* It raises ``lineage.errors.InvalidInput(detail, field=...)`` for a spec that cannot apply
  (unknown column, missing label column, unknown threshold key); it never commits, never writes
  files, and never decides what a finding means (governance does).
* The runner, not the kind, handles too-small windows: ``run_monitor`` returns one
  ``insufficient`` finding when the window has fewer than ``spec.min_rows`` rows, without calling
  the kind. A kind marks smaller scopes (a column, a group) ``insufficient`` itself.

Charts (``Chart.kind`` and the keys of ``Chart.data``):

* ``"distribution"`` — reference vs current shares: ``labels`` (category names or bin labels),
  ``reference`` and ``current`` (lists of shares, same length).
* ``"bars"`` — one value per label: ``labels``, ``values``; optional ``threshold`` (one line)
  or ``thresholds`` (one mark per label) and ``flags`` (booleans: highlight these bars).
* ``"intervals"`` — a value with a confidence interval per label: ``labels``, ``values``,
  ``lower``, ``upper``, optional ``reference`` (a mark to compare against), and optional
  ``value_label`` and ``reference_label`` (the legend's words; the defaults say a 95 % interval
  and the reference).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from lineage.errors import InvalidInput
from monitors.engine import EngineName, Fold, fold_locally
from monitors.findings import Finding, FindingSink, Status, worst_status
from monitors.spec import Kind, MonitorSpec

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from monitors.baseline.summary import Baseline
    from monitors.inferences.windows import WindowView

__all__ = [
    "BUILTIN_KINDS",
    "Chart",
    "ChartKind",
    "KindFunction",
    "KindResult",
    "Model",
    "MonitorContext",
    "MonitorResult",
    "Progress",
    "get_kind",
    "register_kind",
    "registered_kinds",
    "run_monitor",
]

ChartKind = Literal["distribution", "bars", "intervals"]
Progress = Callable[[float, str], None]
S = TypeVar("S")

BUILTIN_KINDS: dict[str, str] = {
    Kind.DRIFT: "monitors.drift.monitor",
    Kind.PREDICTION_DRIFT: "monitors.drift.monitor",
    Kind.QUALITY: "monitors.quality",
    Kind.PERFORMANCE: "monitors.performance",
    Kind.PERFORMANCE_ESTIMATE: "monitors.estimation.monitor",
    Kind.FAIRNESS: "monitors.fairness.monitor",
    Kind.EXPLANATIONS: "monitors.explanations.monitor",
    Kind.LLM_OPERATIONS: "monitors.llm.operations",
    Kind.TEXT_DESCRIPTORS: "monitors.llm.descriptors",
    Kind.EMBEDDING_DRIFT: "monitors.llm.embedding_monitor",
    Kind.LLM_JUDGE: "monitors.llm.judge_monitor",
}
"""Which module registers each shipped kind (imported on first use)."""


class Model(Protocol):
    """What a monitor needs of a model: ``predict`` (``predict_proba`` is used when present)."""

    def predict(self, features: pd.DataFrame) -> Any:
        """Return one prediction per row."""


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart as data, drawn by ``monitors.report`` (see the module docstring for kinds).

    Attributes:
        title: The caption shown above the chart.
        kind: ``distribution``, ``bars`` or ``intervals``.
        data: The series the kind needs, JSON-ready.
    """

    title: str
    kind: ChartKind
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"title": self.title, "kind": self.kind, "data": self.data}


@dataclass(slots=True)
class KindResult:
    """What one kind returns: typed findings, a JSON-ready report section and charts."""

    findings: list[Finding]
    report: dict[str, Any] = field(default_factory=dict)
    charts: list[Chart] = field(default_factory=list)


@dataclass(slots=True)
class MonitorContext:
    """Everything a kind may read: the window, the reference baseline, and optionally a model.

    Attributes:
        window: The current data, as a DataFrame, an Arrow table (a logged window's columns
            read columnar), the path of a Parquet file (streamed), or a logged window's
            objects read in place by Spark (only with ``engine`` ``spark``, for kinds that
            read it through :meth:`summarise` or drift's summaries).
        baseline: The stored reference summary.
        model: The model under watch, for kinds that need predictions or explanations.
        feature_names: The model's input columns, in order.
        progress: Called with a fraction in [0, 1] and a message during long work.
        reference: The reference window of a kind over LLM traces (its calls), if any.
        chat: Sends one chat completion through the project's outbound guard (the signature of
            :func:`monitors.scoring.openai_chat.chat`); ``None`` outside a worker.
        engine: Which engine summarises the window (:mod:`monitors.engine`): a kind that
            counts through :meth:`summarise` (drift through its own summaries) runs on it;
            the other kinds summarise locally whatever it says.
        spark_master: The Spark master URL when ``engine`` is ``spark``.
    """

    window: pd.DataFrame | pa.Table | Path | WindowView
    baseline: Baseline
    model: Model | None = None
    feature_names: list[str] | None = None
    progress: Progress | None = None
    reference: pd.DataFrame | None = None
    chat: Callable[..., Any] | None = None
    engine: EngineName = "local"
    spark_master: str = "local[2]"

    def row_count(self) -> int:
        """Return the window's number of rows (Parquet metadata only, for a file)."""
        import pandas as pd
        import pyarrow as pa

        if isinstance(self.window, pd.DataFrame | pa.Table):
            return len(self.window)
        if not isinstance(self.window, Path):
            return self.window.rows
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(self.window).metadata.num_rows)

    def window_columns(self) -> list[str]:
        """Return the window's column names (schema only, for a file)."""
        import pandas as pd
        import pyarrow as pa

        if isinstance(self.window, pd.DataFrame):
            return [str(column) for column in self.window.columns]
        if isinstance(self.window, pa.Table):
            return [str(name) for name in self.window.column_names]
        if not isinstance(self.window, Path):
            return list(self.window.columns)
        import pyarrow.parquet as pq

        return [str(name) for name in pq.ParquetFile(self.window).schema_arrow.names]

    def frame(self, columns: list[str] | None = None) -> pd.DataFrame:
        """Return the window (or the given columns of it) as a DataFrame."""
        import pandas as pd
        import pyarrow as pa

        if isinstance(self.window, pd.DataFrame):
            return self.window if columns is None else self.window[columns]
        if isinstance(self.window, pa.Table):
            table = self.window if columns is None else self.window.select(columns)
            converted: pd.DataFrame = table.to_pandas()
            return converted
        if not isinstance(self.window, Path):
            raise TypeError("a window read in place by Spark is never loaded as a frame")
        import pyarrow.parquet as pq

        frame: pd.DataFrame = pq.read_table(self.window, columns=columns).to_pandas()
        return frame

    def summarise(self, fold: Fold[S]) -> S:
        """Fold the window on this context's engine (Spark's tasks, or here)."""
        if self.engine == "spark":
            from monitors.spark_engine import spark_fold, spark_session

            return spark_fold(fold, self.window, session=spark_session(self.spark_master))
        import pandas as pd
        import pyarrow as pa

        if isinstance(self.window, pa.Table):
            return fold_locally(fold, self.frame())
        if not isinstance(self.window, pd.DataFrame | Path):
            raise TypeError("a window read in place is summarised by Spark, never here")
        return fold_locally(fold, self.window)

    def report_progress(self, fraction: float, message: str) -> None:
        """Tell the caller how far a long computation is (a no-op without a callback)."""
        if self.progress is not None:
            self.progress(min(max(fraction, 0.0), 1.0), message)


KindFunction = Callable[[MonitorSpec, MonitorContext], KindResult]

_KINDS: dict[str, KindFunction] = {}


def register_kind(kind: Kind | str) -> Callable[[KindFunction], KindFunction]:
    """Register the decorated function as the runner of ``kind`` (one function per kind)."""

    def decorate(function: KindFunction) -> KindFunction:
        existing = _KINDS.get(str(kind))
        if existing is not None and existing is not function:
            raise ValueError(f"monitor kind {kind!s} is registered twice")
        _KINDS[str(kind)] = function
        return function

    return decorate


def registered_kinds() -> list[str]:
    """Return the names of the kinds registered so far (shipped kinds register on first use)."""
    return sorted(_KINDS)


def get_kind(kind: Kind | str) -> KindFunction:
    """Return the runner of ``kind``, importing the module that registers it if needed."""
    name = str(kind)
    if name not in _KINDS and name in BUILTIN_KINDS:
        importlib.import_module(BUILTIN_KINDS[name])
    try:
        return _KINDS[name]
    except KeyError:
        raise InvalidInput(
            f"monitor kind {name!r} is not available; use one of {sorted(BUILTIN_KINDS)}",
            field="kind",
        ) from None


@dataclass(slots=True)
class MonitorResult:
    """The outcome of one monitor run: its findings, overall status, report section and charts.

    Attributes:
        kind: The kind that ran.
        status: The worst status among the findings.
        rows: The number of rows in the window.
        findings: The typed findings (handed to the sink, if one was given).
        report: The kind's JSON-ready report section.
        charts: The kind's charts.
        seconds: Wall-clock duration of the run.
    """

    kind: str
    status: Status
    rows: int
    findings: list[Finding]
    report: dict[str, Any]
    charts: list[Chart]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the whole result."""
        return {
            "kind": self.kind,
            "status": self.status.value,
            "rows": self.rows,
            "seconds": self.seconds,
            "findings": [finding.to_dict() for finding in self.findings],
            "report": self.report,
            "charts": [chart.to_dict() for chart in self.charts],
        }


def run_monitor(
    spec: MonitorSpec, context: MonitorContext, *, sink: FindingSink | None = None
) -> MonitorResult:
    """Run one monitor on a window and hand its findings to ``sink``.

    A window smaller than ``spec.min_rows`` yields a single ``insufficient`` finding and no
    kind is run: too little data is reported, never alerted on.
    """
    started = time.perf_counter()
    rows = context.row_count()
    if rows < spec.min_rows:
        finding = Finding(
            monitor=str(spec.kind),
            metric="row_count",
            scope="dataset",
            value=None,
            threshold=float(spec.min_rows),
            status=Status.INSUFFICIENT,
            detail={"rows": rows, "min_rows": spec.min_rows},
        )
        result = KindResult(
            findings=[finding],
            report={"insufficient": True, "rows": rows, "min_rows": spec.min_rows},
        )
    else:
        result = get_kind(spec.kind)(spec, context)
    outcome = MonitorResult(
        kind=str(spec.kind),
        status=worst_status([finding.status for finding in result.findings]),
        rows=rows,
        findings=result.findings,
        report=result.report,
        charts=result.charts,
        seconds=time.perf_counter() - started,
    )
    if sink is not None:
        sink(outcome.findings)
    return outcome
