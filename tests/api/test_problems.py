"""Request-validation errors become problem+json naming the field a client must fix."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from api.problems import PROBLEM_JSON
from governance.roles import Role
from tests.conftest import Issued

CHANNELS = "/api/v1/projects/acme/alert-channels"


@pytest.fixture
def writer(make_principal: Callable[..., Issued]) -> dict[str, str]:
    return make_principal(role=Role.ADMIN).headers


def test_an_unknown_discriminator_value_names_the_discriminator(
    client: TestClient, writer: dict[str, str]
) -> None:
    response = client.post(CHANNELS, json={"kind": "carrier-pigeon", "name": "ops"}, headers=writer)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["field"] == "kind"
    assert "'webhook', 'slack', 'email'" in problem["detail"]
    assert problem["errors"][0]["field"] == "kind"


def test_a_missing_discriminator_is_named_as_required(
    client: TestClient, writer: dict[str, str]
) -> None:
    response = client.post(CHANNELS, json={"name": "ops"}, headers=writer)
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "kind"
    assert problem["detail"] == (
        "field 'kind' is required to tell which kind of object this is; add it"
    )


def test_other_errors_keep_their_location(client: TestClient, writer: dict[str, str]) -> None:
    response = client.post(
        CHANNELS, json={"kind": "webhook", "name": "ops", "url": "x", "id": "1"}, headers=writer
    )
    assert response.status_code == 422
    assert "id" in [error["field"] for error in response.json()["errors"]]

    missing = client.post(CHANNELS, json={"kind": "webhook", "name": "url"}, headers=writer)
    assert missing.status_code == 422
    assert missing.json()["field"] == "url"


def test_an_extra_field_with_an_empty_name_is_still_named(
    client: TestClient, writer: dict[str, str]
) -> None:
    response = client.post(
        CHANNELS, json={"kind": "webhook", "name": "ops", "url": "http://x", "": 1}, headers=writer
    )
    assert response.status_code == 422
    assert response.json()["field"] == "''"
