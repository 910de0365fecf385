"""The finding and run-summary contract: one JSON form each, read back as the same type."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitors.findings import Finding, FindingList, RunSummary, Status, run_status, worst_status

DRIFT = [
    Finding("drift", "wasserstein_distance", "column:age", 0.31, 0.1, Status.WARN, {"p": 0.01}),
    Finding("drift", "drift_share", "dataset", 0.5, 0.3, Status.ALERT),
    Finding("drift", "wasserstein_distance", "column:hours", None, 0.1, Status.INSUFFICIENT),
]


def test_a_finding_reads_back_equal_from_its_json() -> None:
    for finding in DRIFT:
        assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding


def test_a_finding_without_a_status_is_refused() -> None:
    with pytest.raises(KeyError, match="status"):
        Finding.from_dict({"monitor": "drift", "metric": "drift_share", "scope": "dataset"})
    with pytest.raises(ValueError, match="'red'"):
        Finding.from_dict({"monitor": "m", "metric": "x", "scope": "dataset", "status": "red"})


def test_a_run_summary_reads_back_equal_from_its_stored_form() -> None:
    summary = RunSummary.of(kind="drift", status=Status.ALERT, rows=1500, findings=DRIFT)
    assert summary.drift_share == 0.5
    assert summary.computed is True
    stored = json.loads(json.dumps(summary.to_json()))
    assert stored["status"] == "alert"
    assert stored["findings"][0]["detail"] == {"p": 0.01}
    assert RunSummary.from_json(stored) == summary


def test_a_summary_of_nothing_says_why() -> None:
    summary = RunSummary.of(
        kind="drift", status=Status.INSUFFICIENT, rows=0, findings=[], reason="no rows"
    )
    stored = summary.to_json()
    assert (stored["computed"], stored["reason"], stored["drift_share"]) == (False, "no rows", None)
    assert RunSummary.from_json(stored) == summary


@pytest.mark.parametrize("stored", [None, [], "alert", {"ok": True}, {"attempt": 2}])
def test_what_is_not_a_run_summary_reads_as_none(stored: Any) -> None:
    assert RunSummary.from_json(stored) is None
    assert run_status(RunSummary.from_json(stored)) is None


def test_an_older_summary_without_status_is_judged_by_its_findings() -> None:
    stored = {"findings": [f.to_dict() for f in DRIFT] + [{"metric": "unreadable"}]}
    summary = RunSummary.from_json(stored)
    assert summary is not None
    assert summary.status is None
    assert len(summary.findings) == 3
    assert summary.drift_share == 0.5
    assert run_status(summary) == Status.ALERT


def test_the_stored_status_is_the_verdict() -> None:
    summary = RunSummary.from_json({"status": "warn", "findings": []})
    assert run_status(summary) == Status.WARN
    assert run_status(RunSummary.from_json({"status": None, "findings": []})) is None


def test_statuses_rank_from_insufficient_to_alert() -> None:
    ordered = [Status.INSUFFICIENT, Status.OK, Status.WARN, Status.ALERT]
    assert [s.rank for s in ordered] == [0, 1, 2, 3]
    assert worst_status([Status.OK, Status.INSUFFICIENT]) == Status.OK
    assert worst_status([]) == Status.INSUFFICIENT


def test_a_finding_list_column_stores_json_and_reads_findings(engine: Engine) -> None:
    table = sa.Table(
        f"t_findings_{uuid.uuid4().hex[:8]}",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("findings", FindingList(), nullable=False),
    )
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(table.insert().values(id=1, findings=DRIFT))
    with engine.connect() as connection:
        plain = sa.Table(table.name, sa.MetaData(), sa.Column("findings", sa.JSON()))
        raw = connection.execute(sa.select(plain.c.findings)).scalar_one()
        typed = connection.execute(sa.select(table.c.findings)).scalar_one()
    table.drop(engine)
    assert raw == [f.to_dict() for f in DRIFT]
    assert typed == DRIFT
