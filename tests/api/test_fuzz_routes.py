"""Bad input never yields a 500: a property-based sweep over every operation of the OpenAPI doc.

Schemathesis reads the app's own ``/openapi.json`` and, per operation, generates valid and invalid
path parameters, query strings and bodies (wrong types, missing and extra fields, huge numbers,
unicode, empty strings). Each case is sent by a global administrator, so it passes the permission
gate and reaches the handler. ``{project}`` is pinned to a real project, and the ids of a seeded
model version, deployment and policy are pinned where a path names them, so cases get past the
lookup into the handler's own validation. For every response:

- the status is below 500;
- a 4xx is ``application/problem+json`` with ``status``, ``title`` and ``detail``; a 422 names the
  ``field``;
- a rejected write leaves the store as it was: the row count of every table is unchanged, except
  for the audit log's record of a denial.

Bounded: a fixed number of examples per operation, no shrinking, derandomized; every operation is
swept even after a failure, and the assertion lists all failing operations at once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.core.result import Ok
from sqlalchemy.engine import Engine

from api.problems import PROBLEM_JSON
from governance.audit import AuditEntry
from governance.roles import Role
from lineage.projects import Project
from tests.api.going_live import approve_version
from tests.conftest import Issued

Operation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Operation]
# The test client's response class comes from httpx or httpx2, whichever Starlette found.
Response = Any

PROJECT = "acme"
BASE = f"/api/v1/projects/{PROJECT}"
EXAMPLES = 8
# Rendering a report (HTML or PDF) takes seconds per request: fewer examples keep the sweep bounded.
FEWER = {"/reports/": 3}
POLICY = """
rules:
  - name: retrain-on-drift
    when:
      all:
        - {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
    actions:
      - {type: retrain, pipeline: income-train}
"""


@pytest.fixture
def admin(make_principal: Callable[..., Issued], make_project: Callable[[str], Project]) -> Issued:
    make_project(PROJECT)
    return make_principal(admin=True)


@pytest.fixture
def seeded(
    client: TestClient, admin: Issued, make_principal: Callable[..., Issued]
) -> dict[str, dict[str, str]]:
    """Create a model version, a deployment of it and a policy; return path pins by path part."""

    def post(path: str, body: dict[str, Any]) -> Any:
        response = client.post(BASE + path, json=body, headers=admin.headers)
        assert response.status_code == 201, response.text
        return response.json()

    sha = hashlib.sha256(b"model").hexdigest()
    post(
        "/models/income/versions",
        {"artifact_uri": "models:/income/1", "artifact_sha256": sha, "version": "1"},
    )
    approve_version(
        client,
        project=PROJECT,
        name="income",
        version="1",
        requester=admin,
        approver=make_principal(role=Role.APPROVER, project=PROJECT),
    )
    deployment = post(
        "/deployments",
        {"name": "api", "environment": "prod", "model_name": "income", "model_version": "1"},
    )
    policy = post("/policies", {"name": "drift", "source": POLICY})
    return {
        "/models/{name}/": {"name": "income", "version": "1"},
        "/reports/models/{name}/": {"name": "income", "version": "1"},
        "/deployments/{name}/": {"name": "api"},
        "{deployment_id}": {"deployment_id": deployment["id"]},
        "{policy_id}": {"policy_id": policy["id"]},
    }


def _row_counts(engine: Engine) -> dict[str, int]:
    """Count the rows of every table; audit entries only when they are not denials.

    A refused request may record its own denial in the audit log (that is the point of the log);
    anything else it leaves behind is a partial write.
    """
    with engine.connect() as connection:
        counts = {}
        for name in sa.inspect(connection).get_table_names():
            query = sa.select(sa.func.count()).select_from(sa.table(name))
            if name == AuditEntry.__tablename__:
                query = query.where(sa.column("outcome") != "denied")
            counts[name] = connection.execute(query).scalar_one()
        return counts


def _send(client: TestClient, case: AnyCase, admin: Issued) -> Response:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=admin.headers)
    data = kwargs.get("data")
    return client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        json=kwargs.get("json"),
        content=data if isinstance(data, (bytes, str)) else None,
        data=data if isinstance(data, dict) else None,
        files=kwargs.get("files"),
    )


def _problems(response: Response) -> list[str]:
    """Return what is wrong with one response (empty when it is fine)."""
    status = response.status_code
    if status >= 500:
        return [f"{status}: {response.text[:300]}"]
    if status < 400:
        return []
    media_type = response.headers.get("content-type", "").split(";")[0]
    if media_type != PROBLEM_JSON:
        return [f"{status} with content-type {media_type!r}"]
    body = response.json()
    wrong = [
        f"{status} problem without {key!r}" for key in ("title", "detail") if not body.get(key)
    ]
    if body.get("status") != status:
        wrong.append(f"{status} problem says status {body.get('status')!r}")
    if status == 422 and not body.get("field"):
        wrong.append(f"422 without a field: {body.get('detail')!r}")
    return wrong


def _strategy(operation: Operation, pins: dict[str, dict[str, str]]) -> st.SearchStrategy[AnyCase]:
    names = {p.name for p in operation.path_parameters}
    pinned = {"project": PROJECT} if "project" in names else {}
    for part, values in pins.items():
        if part in operation.path:
            pinned.update({k: v for k, v in values.items() if k in names})
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=pinned or None),
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=pinned or None),
    )


def _sweep(
    client: TestClient, engine: Engine, admin: Issued, case: AnyCase, seen: Counter[str]
) -> None:
    write = case.method.upper() != "GET"
    before = _row_counts(engine) if write else {}
    response = _send(client, case, admin)
    wrong = _problems(response)
    seen[f"{response.status_code // 100}xx"] += 1
    if write and response.status_code >= 400:
        seen["refused writes"] += 1
        after = _row_counts(engine)
        changed = {t: (n, after.get(t)) for t, n in before.items() if after.get(t) != n}
        if changed:
            wrong.append(f"refused with {response.status_code}, yet rows changed: {changed}")
    assert not wrong, (
        f"{case.method} {response.request.url}: {wrong}; body={getattr(case, 'body', None)!r}"
    )


@pytest.mark.slow
def test_bad_input_never_yields_a_500(
    client: TestClient, engine: Engine, admin: Issued, seeded: dict[str, dict[str, str]]
) -> None:
    schema = schemathesis.openapi.from_dict(
        client.get("/openapi.json", headers=admin.headers).json()
    )
    failures: list[str] = []
    swept = 0
    seen: Counter[str] = Counter()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document is invalid: {result.err()}"
        operation = result.ok()
        examples = min([n for part, n in FEWER.items() if part in operation.path] or [EXAMPLES])

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=_strategy(operation, seeded))
        def check(case: AnyCase) -> None:
            _sweep(client, engine, admin, case, seen)

        try:
            check()
        except AssertionError as error:
            failures.append(f"{operation.label}: {error}")
        swept += 1
    assert swept > 100, "the sweep must see every operation of the OpenAPI document"
    assert seen["2xx"] > 100, f"too few cases reached a handler and succeeded: {seen}"
    assert seen["4xx"] > 300, f"too few cases were refused: {seen}"
    assert seen["refused writes"] > 200, f"too few refused writes were checked: {seen}"
    assert not failures, "\n".join(failures)
