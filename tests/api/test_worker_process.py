from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings
from api.worker_process import build_registry
from lineage import InvalidInput
from lineage.storage import LocalStore
from monitors.run_jobs import MonitorRunHandler
from reports import ReportRenderHandler
from retrain.budget_checks import BudgetCheckHandler
from tests.api.marker_handlers import slow_marker


def _settings(tmp_path: Path, handlers: dict[str, str]) -> Settings:
    return Settings(data_dir=tmp_path, worker_handlers=handlers)


def test_the_default_registry_runs_monitor_and_pipeline_runs(tmp_path: Path) -> None:
    registry = build_registry(_settings(tmp_path, {}))
    assert registry.kinds() == [
        "budget_check",
        "drift_page",
        "eval_run",
        "explanation",
        "monitor_run",
        "pipeline_run",
        "report_render",
        "trace_cost_recompute",
        "trace_purge",
    ]
    renders = registry.handler_for("report_render")
    assert isinstance(renders, ReportRenderHandler)
    assert isinstance(renders.store, LocalStore)
    assert renders.store.root == tmp_path
    handler = registry.handler_for("monitor_run")
    assert isinstance(handler, MonitorRunHandler)
    assert handler.store is renders.store  # one store per process
    checks = registry.handler_for("budget_check")
    assert isinstance(checks, BudgetCheckHandler)
    assert checks.registry is not None  # so a policy may perform a rollback on a breach
    assert checks.deployer is not None


def test_configured_handlers_add_to_or_replace_the_defaults(tmp_path: Path) -> None:
    path = "tests.api.marker_handlers:slow_marker"
    registry = build_registry(_settings(tmp_path, {"monitor_run": path, "report_render": path}))
    assert registry.kinds() == [
        "budget_check",
        "drift_page",
        "eval_run",
        "explanation",
        "monitor_run",
        "pipeline_run",
        "report_render",
        "trace_cost_recompute",
        "trace_purge",
    ]
    assert registry.handler_for("monitor_run") is slow_marker


def test_handlers_are_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "WARDEN_WORKER_HANDLERS", '{"pipeline_run": "tests.api.marker_handlers:slow_marker"}'
    )
    registry = build_registry(Settings(data_dir=tmp_path))
    assert registry.handler_for("pipeline_run") is slow_marker


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.api.marker_handlers", "is not 'module:function'"),
        ("tests.api.marker_handlers:__doc__", "is not a callable handler"),
    ],
)
def test_a_bad_handler_path_is_named(tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        build_registry(_settings(tmp_path, {"report_render": path}))
