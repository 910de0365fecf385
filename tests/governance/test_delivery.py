from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import stat
import threading
import time
import uuid
from datetime import timedelta
from email import message_from_string
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from governance.channels import Channel, SecretBox, create_channel, public_view
from governance.delivery import (
    AttemptOutcome,
    Delivery,
    DeliveryPolicy,
    DeliveryState,
    build_event,
    deliver_due,
    enqueue,
    list_attempts,
    resend,
)
from governance.outbound import (
    OutboundRefused,
    Resolver,
    add_allow_entry,
    guard_for_project,
    list_allow_entries,
    remove_allow_entry,
)
from lineage import Conflict, Project, create_project, session_scope, utcnow
from tests.governance.receivers import free_port, http_receiver, self_signed, smtp_receiver

FAST = DeliveryPolicy(max_attempts=4, backoff_base_seconds=30, timeout_seconds=5)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.generate()


@pytest.fixture
def project(engine: Engine) -> Project:
    """A project whose admin allowed 127.0.0.1, where the test receivers listen."""
    with session_scope(engine) as session:
        project = create_project(session=session, name="acme")
        add_allow_entry(
            session=session,
            project_id=project.id,
            target="127.0.0.1",
            note="test receivers",
            created_by="admin",
        )
        return project


def make_channel(
    engine: Engine, project: Project, box: SecretBox, spec: dict[str, Any]
) -> tuple[Channel, str | None]:
    with session_scope(engine) as session:
        return create_channel(
            session=session,
            project_id=project.id,
            spec=spec,
            box=box,
            created_by="alice",
            check_target=guard_for_project(session=session, project_id=project.id),
        )


def queue_event(
    engine: Engine,
    project: Project,
    channel: Channel,
    policy: DeliveryPolicy = FAST,
    **data: Any,
) -> Delivery:
    with session_scope(engine) as session:
        event = build_event(
            project=project,
            event_type="io.warden.test",
            subject="tests/1",
            data={"title": "Drift on income", "summary": "3 columns drifted", **data},
        )
        [delivery] = enqueue(
            session=session,
            project_id=project.id,
            channel_ids=[channel.id],
            event=event,
            policy=policy,
        )
        return delivery


def load(engine: Engine, delivery_id: uuid.UUID) -> Delivery:
    with session_scope(engine) as session:
        found = session.get(Delivery, delivery_id)
        assert found is not None
        return found


def dns(table: dict[str, list[str]]) -> Resolver:
    return lambda host, _port: table[host]


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Check a Standard Webhooks signature independently of Warden's code."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    versions = dict(part.split(",", 1) for part in headers["webhook-signature"].split(" "))
    assert hmac.compare_digest(versions["v1"], expected)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60


def test_a_webhook_receives_a_signed_cloudevent(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    with http_receiver() as receiver:
        channel, secret = make_channel(
            engine, project, box, {"kind": "webhook", "name": "ops", "url": receiver.url + "/in"}
        )
        assert secret is not None
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
        delivery = queue_event(engine, project, channel)

        assert deliver_due(engine=engine, box=box, policy=FAST) == 1

        [request] = receiver.requests
    assert request.path == "/in"
    assert request.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    verify_standard_webhook(secret, request.headers, request.body)
    event = json.loads(request.body)
    assert event["specversion"] == "1.0"
    assert event["id"] == request.headers["webhook-id"] == delivery.event_id
    assert event["source"] == "/api/v1/projects/acme"
    assert event["type"] == "io.warden.test"
    assert event["subject"] == "tests/1"
    assert event["datacontenttype"] == "application/json"
    assert event["time"].endswith("Z")
    assert event["data"]["title"] == "Drift on income"
    done = load(engine, delivery.id)
    assert (done.state, done.attempts, done.last_status_code) == ("succeeded", 1, 200)
    assert done.delivered_at is not None
    assert done.next_attempt_at is None


def test_a_tampered_body_fails_the_independent_check(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    with http_receiver() as receiver:
        channel, secret = make_channel(
            engine, project, box, {"kind": "webhook", "name": "ops", "url": receiver.url}
        )
        queue_event(engine, project, channel)
        deliver_due(engine=engine, box=box, policy=FAST)
        [request] = receiver.requests
    assert secret is not None
    with pytest.raises(AssertionError):
        verify_standard_webhook(secret, request.headers, request.body.replace(b"income", b"outgo"))


def test_a_failing_receiver_is_retried_with_exponential_backoff(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    with http_receiver(statuses=[500, 503]) as receiver:
        channel, secret = make_channel(
            engine, project, box, {"kind": "webhook", "name": "ops", "url": receiver.url}
        )
        delivery = queue_event(engine, project, channel)
        t0 = utcnow()

        assert deliver_due(engine=engine, box=box, now=t0, policy=FAST) == 1
        first = load(engine, delivery.id)
        assert (first.state, first.attempts, first.last_status_code) == ("pending", 1, 500)
        assert first.next_attempt_at == t0 + timedelta(seconds=30)

        assert deliver_due(engine=engine, box=box, now=t0 + timedelta(seconds=29), policy=FAST) == 0
        assert deliver_due(engine=engine, box=box, now=t0 + timedelta(seconds=30), policy=FAST) == 1
        second = load(engine, delivery.id)
        assert second.next_attempt_at == t0 + timedelta(seconds=30 + 60)

        assert deliver_due(engine=engine, box=box, now=t0 + timedelta(seconds=90), policy=FAST) == 1
        requests = receiver.requests
    assert len(requests) == 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1, "one event id across retries"
    assert secret is not None
    for request in requests:
        verify_standard_webhook(secret, request.headers, request.body)
    with session_scope(engine) as session:
        attempts = list_attempts(session=session, delivery_id=delivery.id)
    assert [(a.number, a.outcome, a.status_code) for a in attempts] == [
        (1, AttemptOutcome.RETRY, 500),
        (2, AttemptOutcome.RETRY, 503),
        (3, AttemptOutcome.SUCCEEDED, 200),
    ]
    assert load(engine, delivery.id).state == DeliveryState.SUCCEEDED


def test_a_delivery_gives_up_after_max_attempts_and_can_be_resent(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    policy = DeliveryPolicy(max_attempts=2, backoff_base_seconds=1)
    with http_receiver(statuses=[500, 500]) as receiver:
        channel, _secret = make_channel(
            engine, project, box, {"kind": "webhook", "name": "ops", "url": receiver.url}
        )
        delivery = queue_event(engine, project, channel, policy)
        t0 = utcnow()
        deliver_due(engine=engine, box=box, now=t0, policy=policy)
        deliver_due(engine=engine, box=box, now=t0 + timedelta(seconds=1), policy=policy)
        failed = load(engine, delivery.id)
        assert (failed.state, failed.attempts, failed.next_attempt_at) == ("failed", 2, None)
        assert "HTTP 500" in failed.last_error

        with session_scope(engine) as session:
            again = resend(session=session, project_id=project.id, delivery_id=delivery.id)
        assert again.id != delivery.id
        assert again.resent_from == delivery.id
        assert deliver_due(engine=engine, box=box, policy=policy) == 1
        ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 3
    assert set(ids) == {delivery.event_id}, "a re-send is the same event"
    assert load(engine, again.id).state == "succeeded"
    assert load(engine, delivery.id).state == "failed", "history is kept"


def test_a_pending_delivery_cannot_be_resent(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    channel, _ = make_channel(
        engine, project, box, {"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/x"}
    )
    delivery = queue_event(engine, project, channel)
    with session_scope(engine) as session, pytest.raises(Conflict, match="still being attempted"):
        resend(session=session, project_id=project.id, delivery_id=delivery.id)


def test_slack_gets_a_text_payload(engine: Engine, project: Project, box: SecretBox) -> None:
    with http_receiver() as receiver:
        url = receiver.url + "/services/T000/B000/XXXXSECRET"
        channel, secret = make_channel(
            engine, project, box, {"kind": "slack", "name": "s", "url": url}
        )
        queue_event(engine, project, channel)
        deliver_due(engine=engine, box=box, policy=FAST)
        [request] = receiver.requests
    assert secret is None
    assert request.path == "/services/T000/B000/XXXXSECRET"
    assert request.headers["content-type"] == "application/json"
    assert "webhook-signature" not in request.headers
    payload = json.loads(request.body)
    assert list(payload) == ["text"]
    assert payload["text"] == "Drift on income\n3 columns drifted"
    view = public_view(channel)
    assert "XXXXSECRET" not in json.dumps(view), "the Slack URL is a credential"
    assert "XXXXSECRET" not in channel.sealed


def test_email_is_sent_over_smtp(engine: Engine, project: Project, box: SecretBox) -> None:
    with smtp_receiver() as smtp:
        channel, _ = make_channel(
            engine,
            project,
            box,
            {
                "kind": "email",
                "name": "mail",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "security": "none",
                "sender": "warden@example.org",
                "recipients": ["oncall@example.org", "ml@example.org"],
            },
        )
        delivery = queue_event(engine, project, channel)
        assert deliver_due(engine=engine, box=box, policy=FAST) == 1
        [mail] = smtp.mails
    assert mail.sender == "warden@example.org"
    assert mail.recipients == ["oncall@example.org", "ml@example.org"]
    message = message_from_string(mail.data)
    assert message["Subject"] == "[Warden] Drift on income"
    assert message["To"] == "oncall@example.org, ml@example.org"
    assert "3 columns drifted" in message.get_payload()
    assert load(engine, delivery.id).state == "succeeded"


def test_an_unreachable_receiver_is_retried(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    channel, _ = make_channel(engine, project, box, {"kind": "webhook", "name": "ops", "url": url})
    delivery = queue_event(engine, project, channel)
    deliver_due(engine=engine, box=box, policy=FAST)
    pending = load(engine, delivery.id)
    assert (pending.state, pending.attempts) == ("pending", 1)
    assert "ConnectError" in pending.last_error


def test_redirects_are_not_followed(engine: Engine, project: Project, box: SecretBox) -> None:
    with http_receiver() as elsewhere, http_receiver([302], location="") as receiver:
        receiver._state.location = elsewhere.url + "/stolen"
        channel, _ = make_channel(
            engine, project, box, {"kind": "webhook", "name": "ops", "url": receiver.url}
        )
        delivery = queue_event(engine, project, channel)
        deliver_due(engine=engine, box=box, policy=FAST)
        assert len(receiver.requests) == 1
        assert elsewhere.requests == []
    failed = load(engine, delivery.id)
    assert (failed.state, failed.last_status_code) == ("failed", 302)
    assert "redirects are not followed" in failed.last_error


def test_loopback_channels_need_the_allow_list(engine: Engine, box: SecretBox) -> None:
    with session_scope(engine) as session:
        project = create_project(session=session, name="plain")
    for url, reason in [
        ("http://127.0.0.1:8000/api/v1", "loopback"),
        ("http://169.254.169.254/latest/meta-data/iam", "metadata"),
        ("http://localhost:8000/", "metadata host name"),
    ]:
        with pytest.raises(OutboundRefused, match=reason):
            make_channel(engine, project, box, {"kind": "webhook", "name": "x", "url": url})


def test_the_guard_runs_again_at_delivery_time(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    with http_receiver() as receiver:
        channel, _ = make_channel(
            engine, project, box, {"kind": "webhook", "name": "ops", "url": receiver.url}
        )
        delivery = queue_event(engine, project, channel)
        with session_scope(engine) as session:
            [entry] = list_allow_entries(session=session, project_id=project.id)
            remove_allow_entry(session=session, project_id=project.id, entry_id=entry.id)
        deliver_due(engine=engine, box=box, policy=FAST)
        assert receiver.requests == []
    failed = load(engine, delivery.id)
    assert failed.state == "failed"
    assert "loopback" in failed.last_error
    assert "allow-list" in failed.last_error


def test_two_workers_never_send_the_same_attempt(
    engine: Engine, project: Project, box: SecretBox
) -> None:
    with http_receiver() as receiver:
        channel, _ = make_channel(
            engine, project, box, {"kind": "webhook", "name": "ops", "url": receiver.url}
        )
        for _ in range(5):
            queue_event(engine, project, channel)
        now = utcnow()
        counts: list[int] = []
        workers = [
            threading.Thread(
                target=lambda: counts.append(
                    deliver_due(engine=engine, box=box, now=now, policy=FAST)
                )
            )
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert sum(counts) == 5
        assert len(receiver.requests) == 5
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 5


def test_disabled_channels_get_nothing(engine: Engine, project: Project, box: SecretBox) -> None:
    channel, _ = make_channel(
        engine,
        project,
        box,
        {"kind": "webhook", "name": "off", "url": "http://127.0.0.1:9/", "enabled": False},
    )
    with session_scope(engine) as session:
        event = build_event(project=project, event_type="t", subject="s", data={})
        assert (
            enqueue(session=session, project_id=project.id, channel_ids=[channel.id], event=event)
            == []
        )


def test_secrets_are_sealed_and_the_key_file_is_private(
    engine: Engine, project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "keys" / "outbound.key"
    box = SecretBox.from_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    channel, secret = make_channel(
        engine, project, box, {"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/"}
    )
    assert secret is not None
    assert secret not in channel.sealed
    assert secret not in json.dumps(public_view(channel))
    reopened = SecretBox.from_key_file(path)
    assert reopened.open(channel.sealed) == {"signing_secret": secret}


def test_https_goes_to_the_checked_address_and_still_verifies_the_host_name(
    engine: Engine, box: SecretBox, tmp_path: Path
) -> None:
    ca_file, server_tls = self_signed(tmp_path, ["hooks.test", "mail.test"])
    resolver = dns({"hooks.test": ["127.0.0.1"]})
    with session_scope(engine) as session:
        project = create_project(session=session, name="tls")
        add_allow_entry(
            session=session, project_id=project.id, target="hooks.test", note="", created_by="a"
        )
    with http_receiver(tls=server_tls) as receiver:
        url = f"https://hooks.test:{receiver.port}/in"
        with session_scope(engine) as session:
            channel, secret = create_channel(
                session=session,
                project_id=project.id,
                spec={"kind": "webhook", "name": "tls", "url": url},
                box=box,
                created_by="alice",
                check_target=guard_for_project(
                    session=session, project_id=project.id, resolver=resolver
                ),
            )
        delivery = queue_event(engine, project, channel)
        trusted = DeliveryPolicy(ca_file=str(ca_file))
        untrusted = DeliveryPolicy()
        deliver_due(engine=engine, box=box, policy=untrusted, resolver=resolver)
        refused = load(engine, delivery.id)
        assert (refused.state, refused.attempts) == ("pending", 1)
        assert "CERTIFICATE_VERIFY_FAILED" in refused.last_error
        assert receiver.requests == []
        later = utcnow() + timedelta(hours=1)
        deliver_due(engine=engine, box=box, now=later, policy=trusted, resolver=resolver)
        [request] = receiver.requests
    assert request.headers["host"] == f"hooks.test:{receiver.port}"
    assert secret is not None
    verify_standard_webhook(secret, request.headers, request.body)
    assert load(engine, delivery.id).state == "succeeded"


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_uses_tls_and_the_sealed_password(
    engine: Engine, project: Project, box: SecretBox, tmp_path: Path, security: str
) -> None:
    ca_file, server_tls = self_signed(tmp_path, ["mail.test"])
    resolver = dns({"mail.test": ["127.0.0.1"]})
    with session_scope(engine) as session:
        add_allow_entry(
            session=session, project_id=project.id, target="mail.test", note="", created_by="a"
        )
    with smtp_receiver(tls=server_tls, implicit=security == "ssl") as smtp:
        with session_scope(engine) as session:
            channel, _ = create_channel(
                session=session,
                project_id=project.id,
                spec={
                    "kind": "email",
                    "name": "mail",
                    "smtp_host": "mail.test",
                    "smtp_port": smtp.port,
                    "security": security,
                    "username": "warden",
                    "password": "s3cret-pw",
                    "sender": "warden@example.org",
                    "recipients": ["oncall@example.org"],
                },
                box=box,
                created_by="alice",
                check_target=guard_for_project(
                    session=session, project_id=project.id, resolver=resolver
                ),
            )
        assert "s3cret-pw" not in channel.sealed
        assert "s3cret-pw" not in json.dumps(public_view(channel))
        queue_event(engine, project, channel)
        policy = DeliveryPolicy(ca_file=str(ca_file))
        assert deliver_due(engine=engine, box=box, policy=policy, resolver=resolver) == 1
        [mail] = smtp.mails
    assert mail.tls
    assert mail.login == "warden:s3cret-pw"


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "outbound.key"
    boxes: list[SecretBox] = []
    starters = [
        threading.Thread(target=lambda: boxes.append(SecretBox.from_key_file(path)))
        for _ in range(8)
    ]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(10)
    assert len(boxes) == 8
    token = boxes[0].seal({"k": "v"})
    assert all(box.open(token) == {"k": "v"} for box in boxes)
    assert [p.name for p in path.parent.iterdir()] == ["outbound.key"]


def test_no_log_line_carries_a_channel_urls_secret(
    engine: Engine, project: Project, box: SecretBox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with http_receiver(statuses=[500]) as receiver:
        slack, _ = make_channel(
            engine,
            project,
            box,
            {"kind": "slack", "name": "s", "url": receiver.url + "/services/T0/B0/SLACKSECRET"},
        )
        hook, signing = make_channel(
            engine,
            project,
            box,
            {"kind": "webhook", "name": "w", "url": receiver.url + "/in/HOOKPATH?token=QSECRET"},
        )
        queue_event(engine, project, slack)
        queue_event(engine, project, hook)
        deliver_due(engine=engine, box=box, policy=FAST)
        deliver_due(engine=engine, box=box, policy=FAST, now=utcnow() + timedelta(minutes=5))
        assert len(receiver.requests) == 3
    assert signing is not None
    text = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    assert "HTTP Request: POST" in text, "the HTTP client's log lines were captured"
    for secret in ("SLACKSECRET", "HOOKPATH", "QSECRET", signing, signing.removeprefix("whsec_")):
        assert secret not in text
