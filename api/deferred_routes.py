"""Routes that analyse their endpoint when first used, not when declared.

FastAPI (0.16x) analyses an endpoint twice: when ``@router.get(...)`` declares it (its
dependencies and its parameter, body and response fields, each a pydantic ``TypeAdapter``), and
again, from the route's arguments, for each inclusion of its router (``app.include_router``) the
first time a request or the OpenAPI schema reaches that router. Every Warden router is included,
so the first analysis is never used; it was about a fifth of the CPU of ``import api.app``
(``bench/cli_startup.py``). Every router is declared with ``route_class=DeferredAPIRoute``: the
route keeps its arguments, exposes them as the attributes an inclusion reads, and becomes a
complete :class:`~fastapi.routing.APIRoute` the first time anything asks for more.
``tests/api/test_deferred_routes.py`` checks that the OpenAPI schema is the eager one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import get_name

from api.deps import commit_in_endpoint_thread

__all__ = ["DeferredAPIRoute"]

# The arguments ``APIRouter.add_api_route`` passes, which an inclusion reads back as attributes
# of the same name. A route declared with anything else (form limits, a future argument) is
# analysed at once, as FastAPI would.
_PASSED_THROUGH = frozenset(
    {
        "callbacks",
        "dependency_overrides_provider",
        "deprecated",
        "generate_unique_id_function",
        "include_in_schema",
        "max_body_size",
        "openapi_extra",
        "operation_id",
        "response_class",
        "response_description",
        "response_model",
        "response_model_by_alias",
        "response_model_exclude",
        "response_model_exclude_defaults",
        "response_model_exclude_none",
        "response_model_exclude_unset",
        "response_model_include",
        "strict_content_type",
        "summary",
    }
)
_NORMALISED = frozenset(
    {"dependencies", "description", "methods", "name", "responses", "status_code", "tags"}
)


class DeferredAPIRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` whose analysis waits for its first use.

    ``declared`` keeps the arguments it was declared with (beside its path and endpoint).

    Until then ``response_model`` holds the argument as given (FastAPI's placeholder when the
    return annotation decides it); every other attribute an inclusion reads holds what
    :class:`~fastapi.routing.APIRoute` would.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        self.declared = options
        endpoint = commit_in_endpoint_thread(endpoint)
        if not _PASSED_THROUGH <= set(options) <= _PASSED_THROUGH | _NORMALISED:
            super().__init__(path, endpoint, **options)
            return
        self._pending = True
        self.path = path
        self.endpoint = endpoint
        for key in _PASSED_THROUGH:
            setattr(self, key, options[key])
        self.stream_item_type = None
        self.form_limits = {}
        self.name = get_name(endpoint) if options.get("name") is None else options["name"]
        self.methods = {method.upper() for method in options.get("methods") or ["GET"]}
        status_code = options.get("status_code")
        self.status_code = int(status_code) if isinstance(status_code, IntEnum) else status_code
        self.tags = list(options.get("tags") or [])
        self.dependencies = list(options.get("dependencies") or [])
        self.responses = dict(options.get("responses") or {})
        description = options.get("description") or inspect.cleandoc(endpoint.__doc__ or "")
        self.description = description.split("\f")[0].strip()

    def __getattr__(self, name: str) -> Any:
        """Analyse the endpoint now: something asked for what only the analysis gives."""
        if not self.__dict__.pop("_pending", False):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        APIRoute.__init__(self, self.path, self.endpoint, **self.declared)
        return getattr(self, name)

    @property
    def analysed(self) -> bool:
        """Say whether the endpoint was analysed (the route used as a complete ``APIRoute``)."""
        return "_pending" not in self.__dict__
