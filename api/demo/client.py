"""The demo's REST client and the people it acts as: every call checked, failures name the step."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from api.demo.options import DemoFailed

__all__ = ["Client", "Person"]

_READ_RETRIES = 5


@dataclass
class Person:
    """Someone the demo created (or the administrator), with the credentials it issued them."""

    name: str
    role: str
    password: str
    key: str
    id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        """Return the headers that authenticate as this person."""
        return {"Authorization": f"Bearer {self.key}"}


class Client:
    """Call Warden's REST API as a person; an unexpected answer fails the current step."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=120.0)
        self.step = "?"

    def call(
        self,
        method: str,
        path: str,
        who: Person,
        *,
        expect: tuple[int, ...] = (200, 201, 202),
        **kwargs: Any,
    ) -> Any:
        """Send one request as ``who``; return its JSON (or text), or raise :class:`DemoFailed`."""
        answer = self.client.request(method, path, headers=who.headers, **kwargs)
        retries = 0
        while method == "GET" and answer.status_code >= 500 and retries < _READ_RETRIES:
            # A read can meet the embedded store's write lock held by a long job; a client retries.
            retries += 1
            print(f"      (GET {path} answered {answer.status_code}; retrying)", flush=True)
            time.sleep(2.0 * retries)
            answer = self.client.request(method, path, headers=who.headers, **kwargs)
        if answer.status_code not in expect:
            raise DemoFailed(
                self.step,
                f"{method} {path} as {who.name} answered {answer.status_code}: {answer.text[:800]}",
            )
        if not answer.content:
            return None
        if "json" in answer.headers.get("content-type", ""):
            return answer.json()
        return answer.text

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
