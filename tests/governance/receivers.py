"""Real receivers for outbound tests: an HTTP server and a minimal SMTP server, each in a thread.

They listen on 127.0.0.1, which Warden's outbound guard refuses by default: tests allow it the
way an admin would (an allow-list entry), so that path is exercised too.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Mail", "Received", "http_receiver", "smtp_receiver"]


@dataclass
class Received:
    """One request the HTTP receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _HttpState:
    statuses: list[int]
    location: str = ""
    requests: list[Received] = field(default_factory=list)


class HttpReceiver:
    """A running HTTP receiver: its URL, what it got, and what it answers next."""

    def __init__(self, server: ThreadingHTTPServer, state: _HttpState) -> None:
        self._server = server
        self._state = state

    @property
    def url(self) -> str:
        """Return the base URL (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Received]:
        """Return the requests received so far."""
        return self._state.requests


@contextmanager
def http_receiver(statuses: list[int] | None = None, location: str = "") -> Iterator[HttpReceiver]:
    """Run an HTTP server answering POSTs with ``statuses`` in turn (then 200)."""
    state = _HttpState(statuses=list(statuses or []), location=location)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests.append(
                Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield HttpReceiver(server, state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Mail:
    """One message the SMTP receiver accepted."""

    sender: str
    recipients: list[str]
    data: str


class SmtpReceiver:
    """A running SMTP receiver: its port and the messages it accepted."""

    def __init__(self, server: socketserver.ThreadingTCPServer, mails: list[Mail]) -> None:
        self._server = server
        self.mails = mails

    @property
    def port(self) -> int:
        """Return the port it listens on."""
        return int(self._server.server_address[1])


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    """Run a minimal RFC 5321 server (EHLO, MAIL, RCPT, DATA, QUIT) that keeps every message."""
    mails: list[Mail] = []

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            self.reply("220 test-smtp ready")
            sender, recipients = "", []
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                command = raw.decode().strip()
                verb = command.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250-test-smtp")
                    self.reply("250 8BITMIME")
                elif verb == "MAIL":
                    sender = command.split(":", 1)[1].strip().strip("<>").split(">")[0]
                    self.reply("250 ok")
                elif verb == "RCPT":
                    recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                    self.reply("250 ok")
                elif verb == "DATA":
                    self.reply("354 go ahead")
                    lines = []
                    while (line := self.rfile.readline()) not in (b".\r\n", b""):
                        lines.append(line.decode())
                    mails.append(Mail(sender, recipients, "".join(lines)))
                    sender, recipients = "", []
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 ok")

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield SmtpReceiver(server, mails)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_port() -> int:
    """Return a port nobody listens on (for connection-refused tests)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
