"""A monitor run's verdict, findings and charts as the pages show them."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

from sqlmodel import Session

from api.charts import Point
from api.settings import Settings
from lineage.errors import NotFound
from monitors.findings import RunSummary, Status, run_status, worst_status
from monitors.models import Monitor, MonitorRunPublic, MonitorRunState
from monitors.report import report_keys
from monitors.run_jobs import latest_runs

# --- monitor run summaries ------------------------------------------------------------------


def _results(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return the sections of a stored report document (one per kind that ran)."""
    results = (document or {}).get("results")
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def _summary_sections(summary: RunSummary | None) -> list[dict[str, Any]]:
    """Return a run summary as the one section a report document would hold."""
    if summary is None or not summary.findings:
        return []
    findings = [finding.to_dict() for finding in summary.findings]
    return [{"kind": summary.kind, "findings": findings, "charts": []}]


def _urgency(status: object) -> int:
    """Sort key putting the most urgent findings first (unknown statuses last)."""
    return -Status(status).rank if isinstance(status, str) and status in set(Status) else 1


def run_label(run: MonitorRunPublic | None) -> str:
    """Return a run's verdict (``ok``/``warn``/``alert``/``insufficient``) or its state."""
    if run is None:
        return "no runs"
    if run.state != MonitorRunState.SUCCEEDED:
        return str(run.state)
    verdict = run_status(RunSummary.from_json(run.summary))
    return "not computed" if verdict is None else verdict.value


def _latest_runs(session: Session, monitors: list[Monitor]) -> dict[uuid.UUID, MonitorRunPublic]:
    return latest_runs(session=session, monitor_ids=[m.id for m in monitors])


def _worst(statuses: list[str]) -> str:
    judged = [Status(s) for s in statuses if s in set(Status)]
    if judged:
        return worst_status(judged).value
    return statuses[0] if statuses else "no monitors"


_ESTIMATED = "Estimated and realised performance"


def _series(runs: list[MonitorRunPublic]) -> list[tuple[str, dict[str, list[Point]], float | None]]:
    """Turn the findings of successive runs (oldest first) into the monitor page's charts.

    Per-column drift keeps the eight columns that drifted most; a threshold line is drawn
    when every plotted finding of a chart was judged against the same threshold.
    """
    charts: dict[str, dict[str, list[Point]]] = defaultdict(lambda: defaultdict(list))
    thresholds: dict[str, set[float | None]] = defaultdict(set)
    for run in runs:
        if run.state != MonitorRunState.SUCCEEDED:
            continue
        when = run.window_end or run.scheduled_for
        summary = RunSummary.from_json(run.summary)
        for finding in () if summary is None else summary.findings:
            value, metric = finding.value, finding.metric
            scope, monitor = finding.scope, finding.monitor
            if value is None:
                continue
            if metric == "drift_share":
                title, label = "Drift share", "drift share"
            elif monitor in ("drift", "prediction_drift") and scope.startswith("column:"):
                title, label = "Per-column drift", scope.removeprefix("column:")
            elif monitor == "performance" and scope == "dataset" and metric != "labelled_rows":
                title, label = "Performance", metric
            elif monitor == "fairness" and metric.endswith(("difference", "ratio")):
                title, label = "Fairness gaps", f"{metric} · {scope}"
            elif monitor == "performance_estimate" and finding.detail.get("estimated"):
                # Estimate and realised value of the same window side by side, run after run:
                # a realised line leaving the estimated one is concept drift made visible.
                title, label = _ESTIMATED, f"{metric} (estimated)"
                realised = finding.detail.get("realised")
                if isinstance(realised, int | float):
                    charts[title][f"{metric} (realised)"].append((when, float(realised)))
            else:
                continue
            charts[title][label].append((when, float(value)))
            thresholds[title].add(finding.threshold)
    order = ["Drift share", "Per-column drift", "Performance", _ESTIMATED, "Fairness gaps"]
    drawn = []
    for title in order:
        if title not in charts:
            continue
        ranked = sorted(charts[title].items(), key=lambda item: -max(v for _, v in item[1]))
        (only, *rest) = thresholds[title]
        drawn.append((title, dict(ranked), None if rest else only))
    return drawn


def _stored_report(settings: Settings, run: MonitorRunPublic) -> dict[str, Any] | None:
    """Return the run's stored report document (written by the worker), if there is one."""
    json_key, _ = report_keys(project_id=run.project_id, run_id=run.id)
    try:
        document: dict[str, Any] = json.loads(settings.artifact_store().get(json_key))
    except NotFound:
        return None
    return document
