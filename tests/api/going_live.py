"""Helpers for tests that put a version live over REST: the approval it needs first."""

from __future__ import annotations

from typing import Any, Protocol

from tests.conftest import Issued

__all__ = ["approve_version"]


class Poster(Protocol):
    """A test client or an ``httpx.Client``: anything that can POST JSON with headers."""

    def post(self, url: str, *, json: Any, headers: dict[str, str]) -> Any:
        """Send one POST and return its response."""


def approve_version(
    client: Poster,
    *,
    project: str,
    name: str,
    version: str,
    requester: Issued,
    approver: Issued,
) -> str:
    """Ask for and grant the promotion of a version (two people, as the rule wants); return its id.

    ``client`` is a test client or an ``httpx.Client`` on a live server (the headers are the
    principals'). The approver must not have registered or trained the version.
    """
    base = f"/api/v1/projects/{project}"
    asked = client.post(
        f"{base}/models/{name}/versions/{version}/promotion-requests",
        json={"reason": "ready to serve"},
        headers=requester.headers,
    )
    assert asked.status_code == 201, asked.text
    approval_id: str = asked.json()["approval_id"]
    decided = client.post(
        f"{base}/approvals/{approval_id}/approve",
        json={"reason": "checked"},
        headers=approver.headers,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved", decided.text
    return approval_id
