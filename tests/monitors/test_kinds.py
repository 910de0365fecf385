"""The kind registry: dispatch, plug-in registration, strict specs and insufficient windows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from lineage.errors import InvalidInput
from monitors.baseline import Baseline, build_baseline
from monitors.findings import Finding, Status
from monitors.kinds import (
    BUILTIN_KINDS,
    KindResult,
    MonitorContext,
    get_kind,
    register_kind,
    registered_kinds,
    run_monitor,
)
from monitors.spec import Kind, MonitorSpec


@pytest.fixture(scope="module")
def tiny_baseline() -> Baseline:
    return build_baseline(pd.DataFrame({"x": [float(i) for i in range(50)]}))


def test_every_kind_has_a_module() -> None:
    assert set(BUILTIN_KINDS) == {kind.value for kind in Kind}


def test_shipped_kinds_register_on_first_use() -> None:
    runner = get_kind(Kind.QUALITY)
    assert "quality" in registered_kinds()
    assert get_kind("quality") is runner


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidInput, match="'nonsense' is not available") as error:
        get_kind("nonsense")
    assert error.value.field == "kind"


def test_a_plug_in_kind_runs_through_the_runner(tiny_baseline: Baseline) -> None:
    @register_kind("test_row_count")
    def count_rows(spec: MonitorSpec, context: MonitorContext) -> KindResult:
        rows = len(context.frame(["x"]))
        context.report_progress(2.0, "counted")
        return KindResult(
            findings=[Finding("test_row_count", "rows", "dataset", rows, None, Status.WARN)],
            report={"rows": rows},
        )

    progress: list[tuple[float, str]] = []
    received: list[list[Finding]] = []

    def sink(findings: list[Finding]) -> None:
        received.append(findings)

    spec = MonitorSpec.model_construct(kind="test_row_count", min_rows=1)  # type: ignore[arg-type]
    context = MonitorContext(
        window=pd.DataFrame({"x": [1.0, 2.0]}),
        baseline=tiny_baseline,
        progress=lambda fraction, message: progress.append((fraction, message)),
    )
    result = run_monitor(spec, context, sink=sink)
    assert result.status is Status.WARN
    assert result.report == {"rows": 2}
    assert received == [result.findings]
    assert progress == [(1.0, "counted")]
    assert result.to_dict()["findings"][0]["value"] == 2


def test_registering_a_kind_twice_is_refused() -> None:
    def first(spec: MonitorSpec, context: MonitorContext) -> KindResult:
        return KindResult(findings=[])

    def second(spec: MonitorSpec, context: MonitorContext) -> KindResult:
        return KindResult(findings=[])

    register_kind("test_twice")(first)
    with pytest.raises(ValueError, match="registered twice"):
        register_kind("test_twice")(second)


def test_specs_are_strict() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        MonitorSpec.model_validate({"kind": "drift", "owner": "mallory"})
    with pytest.raises(ValidationError, match="kind"):
        MonitorSpec.model_validate({"kind": "astrology"})
    with pytest.raises(ValidationError, match="min_rows"):
        MonitorSpec.model_validate({"kind": "drift", "min_rows": 0})
    with pytest.raises(ValidationError, match="methods"):
        MonitorSpec.model_validate({"kind": "drift", "methods": {"age": "psychic"}})


def test_an_insufficient_window_never_reaches_the_kind(
    tiny_baseline: Baseline, tmp_path: Path
) -> None:
    path = tmp_path / "window.parquet"
    pd.DataFrame({"x": [1.0] * 5}).to_parquet(path)
    context = MonitorContext(window=path, baseline=tiny_baseline)
    assert context.row_count() == 5
    assert context.window_columns() == ["x"]
    for kind in (Kind.DRIFT, Kind.QUALITY, Kind.PERFORMANCE):
        result = run_monitor(MonitorSpec(kind=kind, min_rows=10), context)
        assert result.status is Status.INSUFFICIENT
        assert result.findings[0].value is None
        assert result.findings[0].monitor == kind.value
