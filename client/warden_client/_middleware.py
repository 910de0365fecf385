"""``WardenMiddleware``: an ASGI middleware logging what a FastAPI (or any ASGI) app answered.

For each configured route, the request's JSON is the features (or its ``features_key`` member),
and the response's JSON gives the prediction and score (by ``prediction_key`` / ``score_key``);
a JSON list in and a list of the same length out log one record per item. The record is queued
after the response was sent, so the app's answer is never delayed, changed or broken by Warden
being down: the client only appends to memory or the spool, and any error here is logged and
swallowed. The request id is the ``X-Request-ID`` header when the caller sent one, else fresh;
the response carries it back as ``X-Warden-Request-ID`` so labels can follow later.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from warden_client._model import InferenceLog
from warden_client._records import deployment_id, new_request_id

__all__ = ["WardenMiddleware"]

log = logging.getLogger("warden_client")

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WardenMiddleware:
    """Log the answers of chosen routes to Warden: ``app.add_middleware(WardenMiddleware, ...)``.

    Args:
        app: The ASGI app.
        client: A :class:`~warden_client.WardenClient` or :class:`~warden_client.AsyncWardenClient`.
        routes: Path → deployment UUID or name, e.g. ``{"/predict": "income-api"}`` (exact paths).
        prediction_key: The response member holding the prediction.
        score_key: The response member holding the score (optional in the response).
        features_key: The request member holding the features; the whole request when ``None``.
        request_id_header: The request header whose value becomes the request id.
        max_body_bytes: Bodies larger than this are passed through without being logged.
    """

    def __init__(
        self,
        app: ASGIApp,
        client: InferenceLog,
        routes: Mapping[str, uuid.UUID | str],
        *,
        prediction_key: str = "prediction",
        score_key: str = "score",
        features_key: str | None = None,
        request_id_header: str = "x-request-id",
        max_body_bytes: int = 1_048_576,
    ) -> None:
        self.app = app
        self.client = client
        self.routes = {path: deployment_id(value) for path, value in routes.items()}
        self.prediction_key = prediction_key
        self.score_key = score_key
        self.features_key = features_key
        self.request_id_header = request_id_header.lower().encode("latin-1")
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through; note its body and the answer's, then log the pair."""
        deployment = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if deployment is None:
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        for name, value in scope.get("headers", []):
            if name == self.request_id_header and value:
                request_id = value.decode("latin-1")[:200]
        request = bytearray()
        response = bytearray()
        state = {"status": 0, "too_big": False}

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self._keep(request, message.get("body", b""), state)
            return message

        async def send_and_keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-warden-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                self._keep(response, message.get("body", b""), state)
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self._record(deployment, request_id, request, response, state)

        await self.app(scope, receive_and_keep, send_and_keep)

    def _keep(self, buffer: bytearray, chunk: bytes, state: dict[str, Any]) -> None:
        if len(buffer) + len(chunk) > self.max_body_bytes:
            state["too_big"] = True
        elif not state["too_big"]:
            buffer.extend(chunk)

    def _record(
        self,
        deployment: str,
        request_id: str,
        request: bytearray,
        response: bytearray,
        state: dict[str, Any],
    ) -> None:
        if not 200 <= state["status"] < 300 or state["too_big"]:
            return
        try:
            asked = json.loads(request)
            answered = json.loads(response)
            if isinstance(asked, list) and isinstance(answered, list):
                if len(asked) != len(answered):
                    return
                for index, (one_in, one_out) in enumerate(zip(asked, answered, strict=True)):
                    self._log_one(deployment, f"{request_id}-{index}", one_in, one_out)
            else:
                self._log_one(deployment, request_id, asked, answered)
        except Exception:
            log.exception("could not log an answer to Warden; the app's response was sent as is")

    def _log_one(self, deployment: str, request_id: str, asked: Any, answered: Any) -> None:
        features = (
            asked.get(self.features_key) if self.features_key and isinstance(asked, dict) else asked
        )
        if not isinstance(features, dict) or not isinstance(answered, dict):
            return
        self.client.log(
            features,
            prediction=answered.get(self.prediction_key),
            score=answered.get(self.score_key),
            request_id=request_id,
            deployment=deployment,
        )
