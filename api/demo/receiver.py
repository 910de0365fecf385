"""The demo's local webhook receiver: proof that an alert left Warden, signed."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    """A tiny local HTTP server that records the webhook events Warden delivers to it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    event = json.loads(body)
                except ValueError:
                    event = {"raw": body.decode("utf-8", "replace")}
                with receiver._lock:
                    receiver.events.append(
                        {"signature": self.headers.get("webhook-signature"), "event": event}
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Return the URL Warden posts to."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/warden"

    def start(self) -> None:
        """Start answering in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering (``shutdown`` would wait forever for a loop that never started)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[dict[str, Any]]:
        """Return a copy of what arrived so far."""
        with self._lock:
            return list(self.events)
