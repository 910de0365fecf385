"""What every step of the demo shares: the options, the client, the people, the facts so far."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from api.demo.adult import find_adult_data
from api.demo.client import Client, Person
from api.demo.options import PROJECT, DemoFailed, DemoOptions
from api.demo.output import Console, Summary
from api.demo.receiver import WebhookReceiver

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["Demo"]

T = TypeVar("T")


class Demo:
    """The state of one demo run, handed from step to step."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.data_dir = (options.root / ".warden").resolve()
        self.base_url = f"http://{options.host}:{options.port}"
        self.summary = Summary(
            started_at=datetime.now(UTC).isoformat(),
            base_url=self.base_url,
            data_dir=str(self.data_dir),
        )
        self.console = Console(self.summary)
        self.api = Client(self.base_url)
        self.people: dict[str, Person] = {}
        self.admin: Person | None = None
        self.adult = find_adult_data()
        self.receiver = WebhookReceiver()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.server: Any = None
        self.engine: Engine | None = None
        self.facts = self.summary.facts
        self.llm: Any = None
        """The local LLM stand-in, when the demo started one."""
        self.llm_app: Person | None = None
        """The LLM application's service account."""

    @property
    def base(self) -> str:
        """Return the demo project's REST prefix."""
        return f"/api/v1/projects/{PROJECT}"

    def person(self, role: str) -> Person:
        """Return the person the demo created with ``role``."""
        return next(p for p in self.people.values() if p.role == role)

    def wait_for(
        self, step: str, what: str, probe: Callable[[], T | None], *, timeout: float | None = None
    ) -> T:
        """Poll ``probe`` until it returns something; fail the step after the timeout."""
        limit = timeout or self.options.step_timeout
        began = time.monotonic()
        said = 0.0
        self.console.say(f"      waiting for {what} ...")
        while True:
            found = probe()
            if found is not None:
                return found
            waited = time.monotonic() - began
            if waited > limit:
                raise DemoFailed(step, f"{what} did not happen within {limit:.0f} s")
            if waited - said >= 15:
                said = waited
                self.console.say(f"      ... still waiting for {what} ({waited:.0f} s)")
            time.sleep(1.0)
