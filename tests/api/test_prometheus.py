from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.app import create_app
from api.settings import Settings
from governance.actors import Actor
from governance.alerts import RuleCreate, create_rule
from governance.channels import SecretBox, create_channel
from governance.incidents import route_findings
from governance.roles import Role
from lineage import Project, session_scope, utcnow
from lineage.runtime.queue import RuntimeJob, enqueue
from monitors.findings import Finding, Status
from monitors.models import Monitor, MonitorRun
from monitors.run_jobs import MONITOR_RUN
from retrain.pipelines import PIPELINE_RUN
from tests.conftest import Issued

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, headers: dict[str, str]) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def labelled(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples: Samples) -> set[str]:
    return {name for name, _labels in samples}


def seed_store(engine: Engine, project_name: str) -> None:
    """Put real rows behind every store-derived series: jobs, a monitor run, an incident."""
    now = utcnow()
    with session_scope(engine) as session:
        project = session.exec(select(Project).where(Project.name == project_name)).one()
        enqueue(session=session, project_id=project.id, kind=MONITOR_RUN, payload={})
        enqueue(session=session, project_id=project.id, kind=MONITOR_RUN, payload={})
        session.add(
            RuntimeJob(
                project_id=project.id,
                kind=PIPELINE_RUN,
                payload={},
                state="succeeded",
                started_at=now - timedelta(seconds=42),
                finished_at=now,
            )
        )
        monitor = Monitor(
            project_id=project.id,
            name="income-drift",
            kind="drift",
            spec={"kind": "drift"},
            interval_seconds=3600,
            window="last:24h",
            anchor_at=now,
            active_since=now,
            updated_at=now,
        )
        session.add(monitor)
        session.flush()
        for minutes, status, share in [(120, "ok", 0.1), (60, "alert", 0.62)]:
            at = now - timedelta(minutes=minutes)
            job = RuntimeJob(
                project_id=project.id,
                kind=MONITOR_RUN,
                payload={},
                state="succeeded",
                started_at=at,
                finished_at=at + timedelta(seconds=5),
            )
            session.add(job)
            session.add(
                MonitorRun(
                    project_id=project.id,
                    monitor_id=monitor.id,
                    scheduled_for=at,
                    trigger="schedule",
                    job_id=job.id,
                    summary={
                        "findings": [
                            Finding(
                                "drift", "drift_share", "dataset", share, 0.5, Status(status)
                            ).to_dict()
                        ]
                    },
                )
            )
        box = SecretBox.generate()
        channel, _ = create_channel(
            session=session,
            project_id=project.id,
            spec={"kind": "webhook", "name": "ops", "url": "http://10.0.0.1/"},
            box=box,
            created_by="t",
        )
        create_rule(
            session=session,
            project_id=project.id,
            spec=RuleCreate(name="drift", channel_ids=[channel.id]),
            created_by="t",
        )
        route_findings(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            source_kind="monitor",
            source_id=str(monitor.id),
            run_id="r1",
            findings=[Finding("drift", "drift_share", "dataset", 0.62, 0.5, Status.ALERT)],
        )


def test_metrics_need_credentials(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_metrics_report_requests_and_the_store(
    client: TestClient, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    viewer = make_principal(role=Role.VIEWER, project="acme", name="prom").headers
    seed_store(engine, "acme")
    assert client.get("/api/v1/projects/acme/incidents", headers=viewer).status_code == 200

    samples = scrape(client, viewer)

    route = "/api/v1/projects/{project}/incidents"
    assert labelled(
        samples, "warden_http_requests_total", method="GET", route=route, status="200"
    ) == pytest.approx(1)
    assert (
        labelled(samples, "warden_http_request_duration_seconds_count", method="GET", route=route)
        == 1
    )
    assert labelled(samples, "warden_http_requests_total", method="GET", route=route + "/x") is None
    assert (
        labelled(samples, "warden_queue_depth", project="acme", kind="monitor_run", state="queued")
        == 2
    )
    assert labelled(samples, "warden_job_duration_seconds_count", kind="pipeline_run") == 1
    assert labelled(samples, "warden_job_duration_seconds_sum", kind="pipeline_run") == (
        pytest.approx(42, abs=0.01)
    )
    assert (
        labelled(samples, "warden_job_duration_seconds_bucket", kind="pipeline_run", le="15.0") == 0
    )
    assert (
        labelled(samples, "warden_job_duration_seconds_bucket", kind="pipeline_run", le="60.0") == 1
    )
    monitor = {"project": "acme", "monitor": "income-drift"}
    statuses = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "warden_monitor_last_status"
    }
    assert {dict(k)["status"]: v for k, v in statuses.items()} == {
        "ok": 0,
        "warn": 0,
        "alert": 1,
        "insufficient": 0,
    }
    [drift_labels] = [labels for (name, labels) in samples if name == "warden_monitor_drift_share"]
    assert dict(drift_labels).items() >= monitor.items()
    assert samples[("warden_monitor_drift_share", drift_labels)] == pytest.approx(0.62)
    assert labelled(samples, "warden_open_incidents", project="acme", severity="alert") == 1
    assert labelled(samples, "warden_open_incidents", project="acme", severity="warn") == 0
    assert labelled(samples, "warden_deliveries", project="acme", state="pending") == 1


def test_project_series_only_cover_projects_the_caller_may_read(
    client: TestClient, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    make_principal(role=Role.VIEWER, project="acme", name="a")
    outsider = make_principal(role=Role.VIEWER, project="other", name="o").headers
    admin = make_principal(admin=True, name="root").headers
    seed_store(engine, "acme")

    theirs = scrape(client, outsider)
    assert labelled(theirs, "warden_open_incidents", project="other", severity="alert") == 0
    assert not [labels for (_n, labels) in theirs if ("project", "acme") in labels]
    assert "warden_monitor_drift_share" not in names(theirs)

    everything = scrape(client, admin)
    assert labelled(everything, "warden_open_incidents", project="acme", severity="alert") == 1


def test_each_app_has_its_own_registry(
    settings: Settings, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    viewer = make_principal(role=Role.VIEWER, name="p").headers
    route = "/api/v1/projects/{project}/incidents"
    with TestClient(create_app(settings, engine=engine)) as first:
        first.get("/api/v1/projects/acme/incidents", headers=viewer)
        first.get("/api/v1/projects/acme/incidents", headers=viewer)
        counted = scrape(first, viewer)
    with TestClient(create_app(settings, engine=engine)) as second:
        fresh = scrape(second, viewer)
    key = {"method": "GET", "route": route, "status": "200"}
    assert labelled(counted, "warden_http_requests_total", **key) == 2
    assert labelled(fresh, "warden_http_requests_total", **key) is None
