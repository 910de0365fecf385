"""A stand-in for a hosted LLM: an OpenAI-compatible chat-completions server on 127.0.0.1.

Warden calls LLMs through any OpenAI-compatible endpoint; a hosted one cannot run here (no
network, no keys), so tests and ``warden demo`` start this server instead and say so. It is a
fake, not a model: it answers ``POST /v1/chat/completions`` from a table of canned answers
(the first :class:`CannedAnswer` whose ``when`` text occurs in the request's messages wins),
deterministically, with ``usage`` token counts (whitespace words), honours ``response_format``
(``json_object`` / ``json_schema`` replies are JSON), and can be told to fail — an outage
(every request answers ``503``), or refusing ``json_schema`` (``400``) as older servers do — so
callers' error paths and fallbacks run for real over HTTP. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["DEFAULT_ANSWERS", "CannedAnswer", "StandInLLM"]


@dataclass(frozen=True, slots=True)
class CannedAnswer:
    """Answer ``text`` to any request whose messages contain ``when`` (case-insensitive)."""

    when: str
    text: str


DEFAULT_ANSWERS: tuple[CannedAnswer, ...] = (
    CannedAnswer("capital of france", "Paris is the capital of France."),
    CannedAnswer("2 + 2", "4"),
)
"""What the stand-in says when a caller gives no table of its own."""

_FALLBACK_TEXT = "I am a stand-in model and have no canned answer for that."


def _words(text: str) -> int:
    return len(text.split())


@dataclass
class StandInLLM:
    """Serve canned chat completions on ``127.0.0.1``; use as a context manager or start/stop.

    Attributes:
        answers: The canned answers, first match wins.
        judge_score: The score (1-5) a JSON reply carries when no canned answer matches.
        outage: When set, every request answers this HTTP status (``503`` for an outage).
        refuse_json_schema: Answer ``400`` to ``response_format: json_schema`` (as servers
            without structured outputs do), so callers fall back to ``json_object``.
        refuse_response_format: Answer ``400`` to any ``response_format`` (plain text only).
        requests: Every request body received, in order (for tests to inspect).
    """

    answers: Sequence[CannedAnswer] = DEFAULT_ANSWERS
    judge_score: int = 4
    outage: int | None = None
    refuse_json_schema: bool = False
    refuse_response_format: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def base_url(self) -> str:
        """Return the OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``)."""
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self, port: int = 0) -> StandInLLM:
        """Listen on 127.0.0.1 (``port`` 0: any free port) in a background thread."""
        stand_in = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet: requests are kept in ``requests``, not printed."""

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "stand-in"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "the body is not JSON"}})
                    return
                status, reply = stand_in.reply(self.path, body)
                self._send(status, reply)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="llm-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and wait for the thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StandInLLM:
        return self.start() if self._server is None else self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def reply(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Return the status and JSON an OpenAI-compatible server would send for ``body``."""
        with self._lock:
            self.requests.append(body)
        if self.outage is not None:
            return self.outage, {"error": {"message": "the stand-in is simulating an outage"}}
        if path.rstrip("/") != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}"}}
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, {"error": {"message": "messages: give at least one message"}}
        prompt = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        response_format = body.get("response_format") or {}
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind is not None and self.refuse_response_format:
            return 400, {"error": {"message": "response_format is not supported"}}
        if kind == "json_schema" and self.refuse_json_schema:
            return 400, {"error": {"message": "response_format json_schema is not supported"}}
        text = self._answer(prompt, json_reply=kind in ("json_object", "json_schema"))
        return 200, {
            "id": f"chatcmpl-stand-in-{len(self.requests)}",
            "object": "chat.completion",
            "model": str(body.get("model") or "stand-in"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": _words(prompt),
                "completion_tokens": _words(text),
                "total_tokens": _words(prompt) + _words(text),
            },
        }

    def _answer(self, prompt: str, *, json_reply: bool) -> str:
        lowered = prompt.lower()
        for answer in self.answers:
            if answer.when.lower() in lowered:
                return answer.text
        if json_reply:
            return json.dumps(
                {"score": self.judge_score, "rationale": "canned verdict of the stand-in"}
            )
        return _FALLBACK_TEXT
