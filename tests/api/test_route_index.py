"""The included routers' path regexes change no routing answer, only what it costs."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi import routing as fastapi_routing
from fastapi.testclient import TestClient
from starlette.routing import Match

from api.app import create_app
from api.route_index import prefilter_included_routers
from api.settings import Settings

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
_SAMPLE = {"path": "a/b.txt", "int": "7", "float": "1.5", "uuid": str(uuid.UUID(int=5))}

included: Any = getattr(fastapi_routing, "_IncludedRouter", None)
pytestmark = pytest.mark.skipif(included is None, reason="this FastAPI flattens included routes")


def _filled(path: str) -> str:
    return _PARAM.sub(lambda m: _SAMPLE.get(m.group(2) or "", f"v-{m.group(1)}"), path)


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_every_router_answers_every_path_as_fastapi_does(settings: Settings) -> None:
    app = create_app(settings)
    routers = [route for route in app.router.routes if isinstance(route, included)]
    assert len(routers) > 20
    assert all(type(route) is not included for route in routers)  # each has its regex
    paths = {"/", "/nowhere", "/api/v1/projects/acme/nowhere"}
    for router in routers:
        for candidate in router.effective_candidates():
            path = getattr(candidate, "path", "") or getattr(candidate.original_route, "path", "")
            paths |= {_filled(path), _filled(path) + "/extra"}
    answers = 0
    for router in routers:
        plain = included(
            original_router=router.original_router, include_context=router.include_context
        )
        for path in sorted(paths):
            for method in ("GET", "PATCH"):  # every route takes one or is a 405 (partial) to both
                got, got_scope = router.matches(_scope(method, path))
                want, want_scope = plain.matches(_scope(method, path))
                assert got == want, (method, path, router.original_router.prefix)
                assert got_scope.get("endpoint") == want_scope.get("endpoint")
                answers += got != Match.NONE
    assert answers > 100  # the paths reach the routes, not only the misses


def test_a_late_route_still_answers_and_a_wrong_method_is_still_405(
    client: TestClient, settings: Settings
) -> None:
    assert prefilter_included_routers(create_app(settings)) > 20
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/projects/acme/evaluation/runs").status_code == 401  # gated
    assert client.put("/healthz").status_code == 405
    assert client.get("/api/v1/no-such-route").status_code == 404


def test_a_route_added_after_the_regex_was_made_is_found() -> None:
    router = APIRouter(prefix="/things")

    @router.get("/one")
    def one() -> dict[str, str]:
        return {"thing": "one"}

    app = FastAPI()
    app.include_router(router)
    assert prefilter_included_routers(app) == 1
    with TestClient(app) as client:
        assert client.get("/things/one").json() == {"thing": "one"}
        assert client.get("/things/two").status_code == 404

        @router.get("/two")
        def two() -> dict[str, str]:
            return {"thing": "two"}

        assert client.get("/things/two").json() == {"thing": "two"}
