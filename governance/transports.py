"""Sending one delivery attempt over the wire: webhook, Slack or e-mail, through the outbound guard.

- **Webhook**: a CloudEvents 1.0 event in *structured* JSON mode
  (``Content-Type: application/cloudevents+json``), signed as Standard Webhooks specifies:
  ``webhook-id`` (the event id, stable across retries and re-sends, for idempotency),
  ``webhook-timestamp`` (Unix seconds at sending) and ``webhook-signature: v1,<base64
  HMAC-SHA256 over "{id}.{timestamp}.{body}">`` keyed with the base64-decoded part of the
  channel's ``whsec_`` secret.
- **Slack**: ``{"text": …}`` posted to the incoming-webhook URL.
- **E-mail**: a plain-text message through ``smtplib`` (STARTTLS, implicit TLS or none).

A refused target or a redirect (never followed) gives up at once; any other failure is retried
(:class:`DeliveryPolicy`). A channel URL's path and query are credentials, so a filter on the HTTP
client's loggers cuts every URL down to ``scheme://host:port/…`` before the first send.
:mod:`governance.delivery` keeps the rows, claims what is due and records each attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

from governance.channels import ChannelKind
from governance.outbound import OutboundRefused, Resolver, Target, check_host, check_url

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE",
    "SENDERS",
    "AttemptOutcome",
    "DeliveryPolicy",
    "Outgoing",
    "SendResult",
    "event_text",
    "sign",
]

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_USER_AGENT = "Warden-Webhooks/0.1"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard Warden tries: attempts, backoff, timeouts.

    Attributes:
        max_attempts: Attempts before a delivery is marked failed (re-send starts afresh).
        backoff_base_seconds: Delay before the second attempt; doubles each time.
        backoff_max_seconds: Cap on the delay between attempts.
        timeout_seconds: Connect/read timeout of one attempt.
        claim_seconds: How long a claimed attempt is hidden from other workers.
        batch: Most deliveries sent by one :func:`deliver_due` call.
        ca_file: A PEM bundle of extra certificate authorities to trust for https and SMTP TLS
            (receivers behind an internal CA); the system's trust store otherwise.
    """

    max_attempts: int = 6
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    claim_seconds: float = 300.0
    batch: int = 50
    ca_file: str | None = None

    def backoff(self, attempt: int) -> timedelta:
        """Return the wait after failed attempt number ``attempt`` (1-based)."""
        seconds = self.backoff_base_seconds * 2 ** max(attempt - 1, 0)
        return timedelta(seconds=min(seconds, self.backoff_max_seconds))

    def tls_context(self) -> ssl.SSLContext:
        """Return the TLS context that verifies receivers (host name and chain)."""
        return ssl.create_default_context(cafile=self.ca_file)


class AttemptOutcome(StrEnum):
    """How one attempt ended."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"
    GAVE_UP = "gave_up"


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one attempt ended, with the receiver's status code and the error, if any."""

    outcome: AttemptOutcome
    status_code: int | None = None
    error: str = ""


@dataclass(slots=True)
class Outgoing:
    """One claimed attempt: its delivery, the channel's configuration and secrets, the event."""

    delivery_id: uuid.UUID
    number: int
    kind: str
    config: dict[str, Any]
    secrets: dict[str, str]
    event: dict[str, Any]
    allowlist: list[str] = field(default_factory=list)


def event_text(event: dict[str, Any]) -> tuple[str, str]:
    """Return the (subject line, body text) people read in Slack and e-mail."""
    data = event.get("data") or {}
    title = str(data.get("title") or event.get("type", "Warden event"))
    summary = str(data.get("summary") or "")
    return title, f"{title}\n{summary}".strip()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the Standard Webhooks ``webhook-signature`` value for one message."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --- sending -------------------------------------------------------------------------------

_URL_TAIL = re.compile(r"\b(https?://)(?:[^/\s\"'@]*@)?([^/\s\"'?#]+)[^\s\"']*")
_HTTP_CLIENT_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


def _redact(value: object) -> object:
    import httpx  # loaded already: the filter runs on httpx's own log records

    if isinstance(value, httpx.URL):
        port = f":{value.port}" if value.port else ""
        return f"{value.scheme}://{value.host}{port}/…"
    if isinstance(value, str) and "://" in value:
        return _URL_TAIL.sub(r"\1\2/…", value)
    return value


class _RedactUrls(logging.Filter):
    """Cut URLs in log records down to scheme, host and port: their paths may be credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message and arguments in place; never drop the record."""
        if isinstance(record.msg, str):
            record.msg = str(_redact(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact(arg) for key, arg in record.args.items()}
        return True


def _redact_http_client_logs() -> None:
    """Put :class:`_RedactUrls` on the HTTP client's loggers, once per process."""
    for name in _HTTP_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactUrls) for f in logger.filters):
            logger.addFilter(_RedactUrls())


def _http_post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    allowlist: list[str],
    policy: DeliveryPolicy,
    resolver: Resolver | None,
) -> SendResult:
    try:
        target = check_url(url, allowlist=allowlist, resolver=resolver)
    except OutboundRefused as error:
        return SendResult(AttemptOutcome.GAVE_UP, error=error.detail)
    import httpx

    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    _redact_http_client_logs()
    try:
        with httpx.Client(
            follow_redirects=False,
            trust_env=False,
            timeout=policy.timeout_seconds,
            verify=policy.tls_context(),
        ) as client:
            response = client.post(
                target.pinned_url(url),
                content=body,
                headers={**headers, "Host": target.host_header, "User-Agent": _USER_AGENT},
                extensions=extensions,
            )
    except httpx.HTTPError as error:
        return SendResult(
            AttemptOutcome.RETRY, error=str(_redact(f"{type(error).__name__}: {error}"))
        )
    code = response.status_code
    if 200 <= code < 300:
        return SendResult(AttemptOutcome.SUCCEEDED, status_code=code)
    if 300 <= code < 400:
        location = response.headers.get("location", "")
        return SendResult(
            AttemptOutcome.GAVE_UP,
            status_code=code,
            error=f"the receiver redirected to {location!r}; redirects are not followed — "
            "point the channel at the final URL",
        )
    return SendResult(
        AttemptOutcome.RETRY, status_code=code, error=f"HTTP {code}: {response.text[:200]}".strip()
    )


def _send_webhook(
    job: Outgoing, *, policy: DeliveryPolicy, resolver: Resolver | None
) -> SendResult:
    body = json.dumps(job.event, separators=(",", ":"), sort_keys=True).encode()
    msg_id = str(job.event["id"])
    timestamp = int(time.time())
    headers = {
        "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(job.secrets["signing_secret"], msg_id, timestamp, body),
    }
    return _http_post(
        str(job.config["url"]),
        body=body,
        headers=headers,
        allowlist=job.allowlist,
        policy=policy,
        resolver=resolver,
    )


def _send_slack(job: Outgoing, *, policy: DeliveryPolicy, resolver: Resolver | None) -> SendResult:
    _title, text = event_text(job.event)
    body = json.dumps({"text": text}).encode()
    return _http_post(
        job.secrets["url"],
        body=body,
        headers={"Content-Type": "application/json"},
        allowlist=job.allowlist,
        policy=policy,
        resolver=resolver,
    )


class _PinnedSMTP(smtplib.SMTP):
    """SMTP that connects to the checked address while TLS still verifies the host name."""

    def __init__(self, target: Target, **kwargs: Any) -> None:
        self._pinned = target.address
        super().__init__(**kwargs)
        self._host = target.host  # what STARTTLS verifies; smtplib sets it only in __init__

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._pinned, port), timeout, self.source_address)


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    """Implicit-TLS SMTP pinned to the checked address."""

    def __init__(self, target: Target, **kwargs: Any) -> None:
        self._pinned = target.address
        super().__init__(**kwargs)
        self._host = target.host

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = socket.create_connection((self._pinned, port), timeout, self.source_address)
        return self.context.wrap_socket(raw, server_hostname=self._host)


def _send_email(job: Outgoing, *, policy: DeliveryPolicy, resolver: Resolver | None) -> SendResult:
    config = job.config
    host = str(config["smtp_host"])
    port = int(config["smtp_port"])
    try:
        target = check_host(
            scheme="smtp", host=host, port=port, allowlist=job.allowlist, resolver=resolver
        )
    except OutboundRefused as error:
        return SendResult(AttemptOutcome.GAVE_UP, error=error.detail)
    subject, text = event_text(job.event)
    message = EmailMessage()
    message["Subject"] = "[Warden] " + " ".join(subject.split())
    message["From"] = str(config["sender"])
    message["To"] = ", ".join(config["recipients"])
    message["Message-ID"] = f"<{job.event['id']}.{job.delivery_id.hex}@warden>"
    message.set_content(text + "\n\n" + json.dumps(job.event.get("data", {}), indent=2))
    security = config.get("security", "starttls")
    client: smtplib.SMTP
    try:
        if security == "ssl":
            client = _PinnedSMTPSSL(
                target, timeout=policy.timeout_seconds, context=policy.tls_context()
            )
        else:
            client = _PinnedSMTP(target, timeout=policy.timeout_seconds)
        with client:
            client.connect(target.host, port)
            if security == "starttls":
                client.starttls(context=policy.tls_context())
            if config.get("username"):
                client.login(str(config["username"]), job.secrets.get("password", ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        return SendResult(AttemptOutcome.RETRY, error=f"{type(error).__name__}: {error}")
    return SendResult(AttemptOutcome.SUCCEEDED, status_code=250)


SENDERS: dict[str, Callable[..., SendResult]] = {
    ChannelKind.WEBHOOK: _send_webhook,
    ChannelKind.SLACK: _send_slack,
    ChannelKind.EMAIL: _send_email,
}
