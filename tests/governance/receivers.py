"""Real receivers for outbound tests: an HTTP server and a minimal SMTP server, each in a thread.

They listen on 127.0.0.1, which Warden's outbound guard refuses by default: tests allow it the
way an admin would (an allow-list entry), so that path is exercised too.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Mail", "Received", "free_port", "http_receiver", "self_signed", "smtp_receiver"]


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
        return f"http://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        """Return the port it listens on."""
        return int(self._server.server_address[1])

    @property
    def requests(self) -> list[Received]:
        """Return the requests received so far."""
        return self._state.requests


@contextmanager
def http_receiver(
    statuses: list[int] | None = None, location: str = "", tls: ssl.SSLContext | None = None
) -> Iterator[HttpReceiver]:
    """Run an HTTP(S) server answering POSTs with ``statuses`` in turn (then 200)."""
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
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
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
    tls: bool = False
    login: str = ""


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
def smtp_receiver(
    tls: ssl.SSLContext | None = None, *, implicit: bool = False
) -> Iterator[SmtpReceiver]:
    """Run a minimal RFC 5321 server (EHLO, MAIL, RCPT, DATA, QUIT) that keeps every message.

    With ``tls``, it offers STARTTLS and AUTH PLAIN (the login is recorded with each message);
    with ``implicit`` too, it speaks TLS from the first byte (SMTPS, port 465 style).
    """
    mails: list[Mail] = []

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            self.reply("220 test-smtp ready")
            sender, recipients = "", []
            secure, login = implicit, ""
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                command = raw.decode().strip()
                verb = command.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250-test-smtp")
                    if tls is not None and not secure:
                        self.reply("250-STARTTLS")
                    if secure:
                        self.reply("250-AUTH PLAIN")
                    self.reply("250 8BITMIME")
                elif verb == "STARTTLS" and tls is not None:
                    self.reply("220 go ahead")
                    self.wfile.flush()
                    self.request = tls.wrap_socket(self.request, server_side=True)
                    self.rfile = self.request.makefile("rb")
                    self.wfile = self.request.makefile("wb", buffering=0)
                    secure = True
                elif verb == "AUTH":
                    _zero, user, _password = base64.b64decode(command.split()[2]).split(b"\0")
                    login = f"{user.decode()}:{_password.decode()}"
                    self.reply("235 ok")
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
                    mails.append(Mail(sender, recipients, "".join(lines), secure, login))
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
    if tls is not None and implicit:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
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


def self_signed(directory: Path, names: list[str]) -> tuple[Path, ssl.SSLContext]:
    """Write a self-signed certificate for ``names``; return its PEM path and a server context.

    Clients trust it by using the PEM file as their CA bundle.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "receiver.pem"
    key_path = directory / "receiver.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context
