"""``PromptClient`` against the real app: the live prompt, revalidated by ETag, and rendered.

The client's httpx requests are handed to the app's test client by a small transport (the real
routes, store and MLflow answer); "Warden is down" is that transport refusing to connect.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from warden_client import PromptClient

from governance.roles import Role
from tests.api.test_prompts_routes import V1, V2, Team
from tests.conftest import Issued


class _App(httpx.BaseTransport):
    """Pass httpx requests to the app's test client; refuse to connect while ``down``."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.down = False
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        answer = self.client.request(
            request.method,
            request.url.raw_path.decode(),
            headers=dict(request.headers),
            content=request.read(),
        )
        self.statuses.append(answer.status_code)
        return httpx.Response(
            answer.status_code, headers=answer.headers.multi_items(), content=answer.content
        )


def _go_live(team: Team, version: str) -> None:
    team.approve(version, requester=team.teammate)
    promoted = team.call(
        "POST", "/llm-deployments/support-bot/promote", team.teammate, json={"version": version}
    )
    assert promoted.status_code == 200, promoted.text


@pytest.mark.slow
def test_the_client_fetches_the_live_prompt_once_per_promotion_and_renders_it(
    client: TestClient, make_principal: Callable[..., Issued]
) -> None:
    team = Team(client, make_principal)
    for body in (V1, V2):
        made = team.call("POST", "/prompts/support/versions", team.author, json=body)
        assert made.status_code == 201, made.text
    bound = team.call(
        "POST",
        "/llm-deployments",
        team.author,
        json={"name": "support-bot", "prompt": "support", "base_url": "http://127.0.0.1:9/v1",
              "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
    )  # fmt: skip
    assert bound.status_code == 201, bound.text
    _go_live(team, "1")
    app = _App(client)
    reader = make_principal(role=Role.VIEWER, project="acme")  # model:read is enough
    with PromptClient("http://testserver", "acme", api_key=reader.key, transport=app) as prompts:
        first = prompts.get("support")
        assert (first.version, prompts.downloads) == ("1", 1)
        assert prompts.get("support") is first  # 304: nothing downloaded
        assert app.statuses[-2:] == [200, 304]
        assert first.render(product="Acme Router", question="Why is it blinking?") == (
            "Answer the customer's question about Acme Router: Why is it blinking?"
        )
        with pytest.raises(ValueError, match="needs the variables"):
            first.render(product="Acme Router")
        assert first.span_attributes() == {
            "warden.prompt.name": "support",
            "warden.prompt.version": "1",
        }

        _go_live(team, "2")
        second = prompts.get("support")
        assert (second.version, prompts.downloads) == ("2", 2)
        assert second.render(product="Acme", question="Hi?") == [
            {"role": "system", "content": "You support Acme. Be brief; answer in JSON."},
            {"role": "user", "content": "Hi?"},
        ]
        assert prompts.get("support", version="1").template == V1["template"]

        app.down = True  # Warden unreachable: the held copy keeps serving
        assert prompts.get("support") is second
        with pytest.raises(httpx.ConnectError):
            prompts.get("unknown")
        app.down = False
        with pytest.raises(httpx.HTTPStatusError) as missing:
            prompts.get("support", alias="staging")
        assert missing.value.response.status_code == 404
