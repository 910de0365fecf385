"""List routes page by keyset cursor: ``limit`` and ``cursor`` in, ``Link: rel="next"`` out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from governance.roles import Role
from lineage import ModelVersionCreate, Project, register_model_version, session_scope
from monitors.models import MonitorCreate, RunTrigger
from monitors.run_jobs import queue_monitor_run
from monitors.schedules import create_monitor
from tests.conftest import Issued

BASE = "/api/v1/projects/acme"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _walk(client: TestClient, url: str, who: Issued, limit: int) -> list[list[object]]:
    """Return each page's items, following ``rel="next"`` until it is absent."""
    pages: list[list[object]] = []
    next_url: str | None = f"{url}{'&' if '?' in url else '?'}limit={limit}"
    while next_url is not None:
        answer = client.get(next_url, headers=who.headers)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        link = httpx.Response(200, headers=answer.headers).links.get("next")
        next_url = None if link is None else link["url"]
    return pages


def test_model_versions_and_monitor_runs_page_by_cursor(
    client: TestClient,
    engine: Engine,
    make_project: Callable[[str], Project],
    make_principal: Callable[..., Issued],
) -> None:
    reader = make_principal(role=Role.DATA_SCIENTIST, project="acme")
    with session_scope(engine) as session:
        from sqlmodel import select

        from lineage import Project

        project = session.exec(select(Project).where(Project.name == "acme")).one()
        for name in ("b", "a", "b", "a", "b"):
            register_model_version(
                session=session,
                project_id=project.id,
                name=name,
                spec=ModelVersionCreate(artifact_uri="s3://m", external=True),
            )
        monitor = create_monitor(
            session=session,
            project_id=project.id,
            spec=MonitorCreate.model_validate({"name": "drift", "spec": {"kind": "drift"}}),
            now=T0,
        )
        for hour in range(3):
            queue_monitor_run(
                session=session,
                monitor=monitor,
                scheduled_for=T0 + timedelta(hours=hour),
                trigger=RunTrigger.MANUAL,
            )
        monitor_id = monitor.id
        create_monitor(
            session=session,
            project_id=project.id,
            spec=MonitorCreate.model_validate({"name": "another", "spec": {"kind": "drift"}}),
            now=T0,
        )
    pages = _walk(client, f"{BASE}/models", reader, limit=2)
    names = [[(v["name"], v["version"]) for v in page] for page in pages]  # type: ignore[index]
    assert names == [[("a", "1"), ("a", "2")], [("b", "1"), ("b", "2")], [("b", "3")]]
    assert [len(p) for p in _walk(client, f"{BASE}/models/b/versions", reader, limit=2)] == [2, 1]
    runs = _walk(client, f"{BASE}/monitors/{monitor_id}/runs", reader, limit=2)
    slots = [run["scheduled_for"] for page in runs for run in page]  # type: ignore[index]
    assert slots == sorted(slots, reverse=True)
    assert len(slots) == 3
    monitors = _walk(client, f"{BASE}/monitors", reader, limit=1)  # a list read whole, paged
    assert [[m["name"] for m in page] for page in monitors] == [["another"], ["drift"]]  # type: ignore[index]


def test_a_bad_cursor_or_limit_is_a_problem_naming_the_field(
    client: TestClient, make_principal: Callable[..., Issued]
) -> None:
    reader = make_principal(role=Role.VIEWER, project="acme")
    for query, field in (
        ("cursor=bm9wZQ", "cursor"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ):
        answer = client.get(f"{BASE}/models?{query}", headers=reader.headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["field"] == field


def test_every_list_route_takes_a_bounded_limit_and_a_cursor(client: TestClient) -> None:
    document = client.app.openapi()  # type: ignore[attr-defined]
    lists = []
    for path, operations in document["paths"].items():
        answer = operations.get("get", {}).get("responses", {}).get("200", {})
        schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("type") != "array" and "Page" not in schema.get("$ref", ""):
            continue
        lists.append(path)
        query = {p["name"]: p for p in operations["get"]["parameters"] if p["in"] == "query"}
        assert {"cursor", "after"} & set(query), path
        assert query["limit"]["schema"]["maximum"] <= 1000, path
    assert len(lists) >= 40


def _deploy(engine: Engine, slot: str, version: str, at: datetime) -> None:
    from sqlmodel import select

    from lineage import DeploymentCreate, record_deployment

    with session_scope(engine) as session:
        project = session.exec(select(Project).where(Project.name == "acme")).one()
        register_model_version(
            session=session,
            project_id=project.id,
            name="m",
            spec=ModelVersionCreate(artifact_uri=f"s3://m/{version}", external=True),
        )
        record_deployment(
            session=session,
            project_id=project.id,
            spec=DeploymentCreate(
                name=slot, environment="production", model_name="m", model_version=version
            ),
            at=at,
        )


def test_deployment_history_pages_in_sql_stable_while_deployments_are_recorded(
    client: TestClient, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    reader = make_principal(role=Role.VIEWER, project="acme")
    for number in range(5):  # slots a, b, a, b, a: versions 1..5, an hour apart
        _deploy(engine, "ab"[number % 2], str(number + 1), T0 + timedelta(hours=number))
    first = client.get(f"{BASE}/deployments?limit=2", headers=reader.headers)
    assert [d["model_version"] for d in first.json()] == ["5", "4"]
    _deploy(engine, "b", "6", T0 + timedelta(hours=9))  # newer than every page: not in the next
    link = httpx.Response(200, headers=first.headers).links["next"]["url"]
    rest = client.get(link, headers=reader.headers)
    assert [d["model_version"] for d in rest.json()] == ["3", "2"]
    pages = _walk(client, f"{BASE}/deployments?name=a&environment=production", reader, limit=2)
    versions = [[d["model_version"] for d in page] for page in pages]  # type: ignore[index]
    assert versions == [["5", "3"], ["1"]]
    assert all(d["name"] == "a" for page in pages for d in page)  # type: ignore[index]


def test_approvals_page_in_sql_by_status_with_their_decisions(
    client: TestClient, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    from sqlmodel import select

    from governance.approvals import ApprovalAction, decide, request_approval
    from governance.identity import actor_for

    requester = make_principal(role=Role.DATA_SCIENTIST, project="acme")
    approver = make_principal(role=Role.APPROVER, project="acme")
    with session_scope(engine) as session:
        project = session.exec(select(Project).where(Project.name == "acme")).one()
        asking = actor_for(requester.principal, project_id=project.id)
        deciding = actor_for(approver.principal, project_id=project.id)

    def ask(target: str) -> uuid.UUID:
        with session_scope(engine) as session:
            made = request_approval(
                session=session,
                actor=asking,
                action=ApprovalAction.PROMOTE,
                target_kind="model_version",
                target_id=target,
                reason="better",
            )
            return made.id

    ids = [ask(f"v{n}") for n in range(4)]  # v0..v3; v1 and v3 approved
    for decided in (ids[1], ids[3]):
        with session_scope(engine) as session:
            decide(session=session, actor=deciding, approval_id=decided, approve=True, reason="ok")
    url = f"{BASE}/approvals?status=pending&limit=1"
    first = client.get(url, headers=approver.headers)
    assert [a["target_id"] for a in first.json()] == ["v2"]
    ask("v4")  # newer than the first page: not in the pages after it
    pages = [first.json()]
    link = httpx.Response(200, headers=first.headers).links.get("next")
    while link is not None:
        answer = client.get(link["url"], headers=approver.headers)
        pages.append(answer.json())
        link = httpx.Response(200, headers=answer.headers).links.get("next")
    assert [[a["target_id"] for a in page] for page in pages] == [["v2"], ["v0"]]
    approved = _walk(client, f"{BASE}/approvals?status=approved", approver, limit=1)
    assert [[a["target_id"] for a in page] for page in approved] == [["v3"], ["v1"]]  # type: ignore[index]
    assert all(len(a["decisions"]) == 1 for page in approved for a in page)  # type: ignore[index]


def test_prompt_versions_page_in_sql_oldest_first(
    client: TestClient, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    from sqlmodel import select

    from lineage import PromptVersionCreate
    from lineage.prompts import register_prompt_version

    reader = make_principal(role=Role.VIEWER, project="acme")
    with session_scope(engine) as session:
        project = session.exec(select(Project).where(Project.name == "acme")).one()
        for number in ("1", "2", "3"):
            register_prompt_version(
                session=session,
                project_id=project.id,
                name="support",
                version=number,
                spec=PromptVersionCreate.model_validate(
                    {
                        "template": f"answer {{{{q}}}} ({number})",
                        "model": {"provider": "openai", "name": "m"},
                        "commit_message": number,
                    }
                ),
                registered_by=None,
            )
    pages = _walk(client, f"{BASE}/prompts/support/versions", reader, limit=2)
    assert [[p["version"] for p in page] for page in pages] == [["1", "2"], ["3"]]  # type: ignore[index]
    missing = client.get(f"{BASE}/prompts/nothing/versions", headers=reader.headers)
    assert missing.status_code == 404
