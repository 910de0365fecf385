"""The one client of OpenAI-compatible chat-completions endpoints (evaluation runs and judges).

An :class:`Endpoint` is where to call (base URL, model) and *how to find* the credential — a
reference, never the key: ``env:NAME`` reads the environment variable ``NAME`` at call time, in
the process that makes the call (the worker). The key is sent as a bearer token and never
stored, logged or put in an error message. :func:`chat` makes one call and returns a typed
:class:`ChatReply` with the usage the server reported and the measured latency.

Failures are split by what a caller can do about them: :class:`EndpointUnavailable` (network
error, timeout, 429 or 5xx: the endpoint is down or overloaded, so the result is an error, not a
verdict) and :class:`EndpointRefused` (another 4xx, e.g. an unsupported ``response_format``:
the request must change, which is how a judge falls back).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lineage.errors import InvalidInput

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CREDENTIAL_PATTERN",
    "ChatReply",
    "Endpoint",
    "EndpointError",
    "EndpointRefused",
    "EndpointUnavailable",
    "Guard",
    "GuardedTarget",
    "chat",
    "resolve_credential",
]

CREDENTIAL_PATTERN = r"^env:[A-Za-z_][A-Za-z0-9_]{0,127}$"
"""How a credential is referenced: ``env:NAME`` (an environment variable of the worker)."""

_ERROR_TEXT = 300


class GuardedTarget(Protocol):
    """A destination an outbound guard let through (``governance.outbound.Target``)."""

    @property
    def scheme(self) -> str:
        """Return ``http`` or ``https``."""

    @property
    def host_header(self) -> str:
        """Return the ``Host`` header value the server expects."""

    def pinned_url(self, url: str) -> str:
        """Return ``url`` pointing at the checked address."""


Guard = Callable[[str, int | None], GuardedTarget]
"""Checks a URL before a call (``governance.outbound.guard_for_project``); raises to refuse."""


class EndpointError(Exception):
    """A chat call did not produce a reply (the message never quotes the key)."""


class EndpointUnavailable(EndpointError):
    """The endpoint is down, overloaded or timed out: retrying later may work."""


class EndpointRefused(EndpointError):
    """The endpoint refused the request (a 4xx other than 429): the request must change."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class Endpoint(BaseModel):
    """Where to send chat completions, and a reference to the credential (never the key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        min_length=8,
        max_length=2048,
        description="OpenAI-compatible base URL, e.g. https://api.openai.com/v1.",
    )
    model: str = Field(min_length=1, max_length=256)
    provider: str = Field(
        default="openai", min_length=1, max_length=128, description="Names the price to apply."
    )
    credential: str | None = Field(
        default=None,
        pattern=CREDENTIAL_PATTERN,
        description="`env:NAME`: the worker reads the key from that variable at call time.",
    )
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", value):
            raise ValueError("give an http(s) URL without query or fragment, e.g. https://host/v1")
        return value.rstrip("/")


def resolve_credential(reference: str | None) -> str | None:
    """Return the key a reference names, read now; ``None`` when no credential is referenced.

    Raises:
        InvalidInput: The referenced variable is not set.
    """
    if reference is None:
        return None
    name = reference.removeprefix("env:")
    value = os.environ.get(name)
    if not value:
        raise InvalidInput(
            f"the credential reference {reference!r} names an environment variable that is not "
            "set where the call runs (the worker); set it there",
            field="credential",
        )
    return value


@dataclass(frozen=True, slots=True)
class ChatReply:
    """One completion: the text and what it cost in tokens and time."""

    text: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: float
    finish_reason: str | None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return str(message or response.text)[:_ERROR_TEXT]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def chat(
    endpoint: Endpoint,
    messages: Sequence[Mapping[str, str]],
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    response_format: Mapping[str, Any] | None = None,
    client: httpx.Client | None = None,
    guard: Guard | None = None,
    api_key: str | None = None,
) -> ChatReply:
    """Send one chat completion and return its reply.

    ``guard`` is the project's outbound guard (``governance.outbound.guard_for_project``):
    the endpoint's host is checked against it first, and a plain-http call connects to the very
    address that was checked (https relies on the certificate naming the host). ``api_key`` is
    a key the caller already opened (an LLM deployment's sealed key); otherwise the endpoint's
    credential reference is resolved here.

    Raises:
        EndpointUnavailable: Network error, timeout, 429 or 5xx, or a reply without text.
        EndpointRefused: Any other 4xx (the message says what the server objected to).
        InvalidInput: The credential reference names an unset variable.
        InvalidInput: The guard refused the endpoint's host (loopback, metadata…).
    """
    import httpx  # imported by the first call, not by the API's start

    body: dict[str, Any] = {"model": endpoint.model, "messages": [dict(m) for m in messages]}
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if response_format is not None:
        body["response_format"] = dict(response_format)
    headers = {"Content-Type": "application/json"}
    key = api_key if api_key is not None else resolve_credential(endpoint.credential)
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    url = f"{endpoint.base_url}/chat/completions"
    if guard is not None:
        target = guard(url, None)
        if target.scheme == "http":
            url = target.pinned_url(url)
            headers["Host"] = target.host_header
    started = time.perf_counter()
    try:
        if client is None:
            with httpx.Client(timeout=endpoint.timeout_seconds, follow_redirects=False) as own:
                response = own.post(url, json=body, headers=headers)
        else:
            response = client.post(
                url, json=body, headers=headers, timeout=endpoint.timeout_seconds
            )
    except httpx.HTTPError as error:
        raise EndpointUnavailable(
            f"{endpoint.base_url} could not be reached ({type(error).__name__})"
        ) from None
    latency_ms = (time.perf_counter() - started) * 1000
    if response.status_code == 429 or response.status_code >= 500:
        raise EndpointUnavailable(
            f"{endpoint.base_url} answered {response.status_code}: {_error_text(response)}"
        )
    if response.status_code >= 400:
        raise EndpointRefused(
            f"{endpoint.base_url} refused the request ({response.status_code}): "
            f"{_error_text(response)}",
            status=response.status_code,
        )
    try:
        payload = response.json()
        choice = payload["choices"][0]
        text = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise EndpointUnavailable(
            f"{endpoint.base_url} answered without a completion (no choices[0].message.content)"
        ) from None
    if not isinstance(text, str):
        raise EndpointUnavailable(f"{endpoint.base_url} answered a completion without text")
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
    return ChatReply(
        text=text,
        model=str(payload.get("model") or endpoint.model),
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        latency_ms=latency_ms,
        finish_reason=choice.get("finish_reason") if isinstance(choice, dict) else None,
    )
