"""Routes analyse their endpoint when first used; what FastAPI serves and describes is unchanged.

The schema check rebuilds every route of the app from the arguments it was declared with, as a
plain (eager) ``APIRoute``, and compares the OpenAPI schema of that rebuild with the one the app
serves from its deferred routes: a deferred route exposing an argument wrongly (a tag, a status
code, a response) shows up as a difference.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api.app import create_app
from api.deferred_routes import DeferredAPIRoute
from api.settings import Settings


def _declared_routes(app: FastAPI) -> list[APIRoute]:
    return [
        context.original_route
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


def _eager_schema(routes: list[APIRoute]) -> dict[str, Any]:
    router = APIRouter()
    for route in routes:
        assert isinstance(route, DeferredAPIRoute)
        router.routes.append(APIRoute(route.path, route.endpoint, **route.declared))
    rebuilt = FastAPI()
    rebuilt.include_router(router)
    return rebuilt.openapi()


def test_every_route_of_the_app_is_deferred(settings: Settings) -> None:
    routes = _declared_routes(create_app(settings))
    assert len(routes) > 200
    assert [route.path for route in routes if not isinstance(route, DeferredAPIRoute)] == []


def test_the_openapi_schema_is_the_one_eager_routes_give(settings: Settings) -> None:
    app = create_app(settings)
    routes = _declared_routes(app)
    served = app.openapi()
    eager = _eager_schema(routes)
    assert len(eager["paths"]) > 100
    assert served["paths"] == eager["paths"]
    assert served["components"] == eager["components"]


class _Echo(BaseModel):
    value: int


def test_a_route_serves_without_its_declaration_being_analysed() -> None:
    router = APIRouter(prefix="/v1", tags=["echo"], route_class=DeferredAPIRoute)

    @router.post("/echo/{value}", status_code=201)
    def echo(value: int, times: int = 1) -> _Echo:
        """Echo the value."""
        return _Echo(value=value * times)

    app = FastAPI()
    app.include_router(router)
    (route,) = router.routes
    assert isinstance(route, DeferredAPIRoute)
    with TestClient(app) as client:
        answer = client.post("/v1/echo/4", params={"times": 3})
        invalid = client.post("/v1/echo/four")
    assert (answer.status_code, answer.json()) == (201, {"value": 12})
    assert invalid.status_code == 422
    assert app.openapi()["paths"]["/v1/echo/{value}"]["post"]["tags"] == ["echo"]
    assert not route.analysed
    assert [param.name for param in route.dependant.query_params] == ["times"]
    assert route.analysed
    assert route.response_model is _Echo


def test_a_route_with_arguments_it_does_not_know_is_analysed_at_once() -> None:
    router = APIRouter(route_class=DeferredAPIRoute)

    @router.post("/form", form_limits={"max_fields": 3})
    def form() -> None:
        """Take a form."""

    (route,) = router.routes
    assert isinstance(route, DeferredAPIRoute)
    assert route.analysed
