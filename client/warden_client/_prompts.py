"""Fetch the live prompt from Warden at run time, cached by ETag, and render it.

``PromptClient.get("support")`` asks ``GET …/prompts/support@production`` with the ETag of the
copy it holds; Warden answers ``304`` (nothing downloaded) until a promotion moves
``production``, so an application may ask on every call. When Warden cannot be reached, the last
copy is returned (``stale_ok``), so serving survives a Warden outage.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from warden_client._pipeline import resolve_key

__all__ = ["Prompt", "PromptClient"]

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
_USER_AGENT = "warden-client/0.1"


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt version as Warden serves it: template, model configuration, identity."""

    name: str
    version: str
    template: str | list[dict[str, str]]
    variables: list[str]
    model: dict[str, Any]
    content_sha256: str
    etag: str = field(repr=False)

    def render(self, **values: str | int | float | bool) -> str | list[dict[str, str]]:
        """Fill every ``{{variable}}``: each must be given, and no other.

        Raises:
            ValueError: A variable is missing or unknown (named in the message).
        """
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise ValueError(f"prompt {self.name!r} needs the variables {missing}")
        unknown = sorted(set(values) - set(self.variables))
        if unknown:
            raise ValueError(f"prompt {self.name!r} has no variables {unknown}")

        def fill(text: str) -> str:
            return _VARIABLE.sub(lambda m: str(values[m[1]]), text)

        if isinstance(self.template, str):
            return fill(self.template)
        return [{**m, "content": fill(m["content"])} for m in self.template]

    def span_attributes(self) -> dict[str, str]:
        """Return the span attributes that link a trace to this version in Warden."""
        return {"warden.prompt.name": self.name, "warden.prompt.version": self.version}


class PromptClient:
    """Read prompts from Warden, keeping one copy per reference and revalidating it by ETag.

    Args:
        url: Warden's base URL, e.g. ``http://warden:8000``.
        project: The project's name.
        api_key: A key with ``model:read``; ``WARDEN_API_KEY`` when omitted.
        timeout: Seconds one request may take.
        stale_ok: Return the held copy when Warden cannot be reached (else raise).
        transport: An httpx transport (tests, proxies); the default otherwise.
    """

    def __init__(
        self,
        url: str,
        project: str,
        *,
        api_key: str | None = None,
        timeout: float = 5.0,
        stale_ok: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.stale_ok = stale_ok
        self._base = f"/api/v1/projects/{quote(project, safe='')}/prompts"
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {resolve_key(api_key)}",
                "User-Agent": _USER_AGENT,
            },
            timeout=timeout,
            transport=transport,
        )
        self._held: dict[str, Prompt] = {}
        self._lock = threading.Lock()
        self.downloads = 0
        """How many answers carried a body (the rest were ``304``)."""

    def get(self, name: str, *, alias: str = "production", version: str | None = None) -> Prompt:
        """Return ``name@alias`` (or a fixed ``version``), downloading it only when it changed.

        Raises:
            httpx.HTTPStatusError: Warden refused (unknown prompt, nothing live, no permission).
            httpx.TransportError: Warden is unreachable and no copy is held (or not ``stale_ok``).
        """
        path = (
            f"{self._base}/{quote(name, safe='')}/versions/{quote(version, safe='')}"
            if version is not None
            else f"{self._base}/{quote(name, safe='')}@{quote(alias, safe='')}"
        )
        with self._lock:
            held = self._held.get(path)
        headers = {"If-None-Match": held.etag} if held is not None else {}
        try:
            answer = self._http.get(path, headers=headers)
        except httpx.TransportError:
            if held is not None and self.stale_ok:
                return held
            raise
        if answer.status_code == 304 and held is not None:
            return held
        answer.raise_for_status()
        body: Mapping[str, Any] = answer.json()
        prompt = Prompt(
            name=str(body["name"]),
            version=str(body["version"]),
            template=body["template"],
            variables=list(body["variables"]),
            model=dict(body["model"]),
            content_sha256=str(body["content_sha256"]),
            etag=answer.headers.get("ETag", ""),
        )
        with self._lock:
            self._held[path] = prompt
            self.downloads += 1
        return prompt

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> PromptClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
