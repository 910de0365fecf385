"""Redaction detectors: what each finds, the look-alikes each keeps, and the project rules."""

from __future__ import annotations

import time
import uuid

import pytest

from lineage.errors import InvalidInput
from monitors.traces.redaction import (
    CustomPattern,
    Entity,
    build_redactor,
    iban_valid,
    luhn_valid,
)

REDACT = build_redactor()


@pytest.mark.parametrize(
    ("text", "expected", "entity"),
    [
        ("write to John.Doe+x@Example.co.uk today", "write to [EMAIL] today", "email"),
        ("call +1 415 555 2671 now", "call [PHONE] now", "phone"),
        ("call (415) 555-2671 now", "call [PHONE] now", "phone"),
        ("ring +44 20 7946 0958", "ring [PHONE]", "phone"),
        ("card 4111 1111 1111 1111 ok", "card [CREDIT_CARD] ok", "credit_card"),
        ("card 5500-0000-0000-0004.", "card [CREDIT_CARD].", "credit_card"),
        ("card 378282246310005", "card [CREDIT_CARD]", "credit_card"),
        ("pay GB82 WEST 1234 5698 7654 32 please", "pay [IBAN] please", "iban"),
        ("pay DE89370400440532013000", "pay [IBAN]", "iban"),
        ("ssn 123-45-6789.", "ssn [US_SSN].", "us_ssn"),
        ("from 192.168.1.10:443", "from [IP_ADDRESS]:443", "ip_address"),
        ("from 2001:db8::8a2e:370:7334 and", "from [IP_ADDRESS] and", "ip_address"),
        ("loopback ::1 here", "loopback [IP_ADDRESS] here", "ip_address"),
        ("id AKIAIOSFODNN7EXAMPLE", "id [AWS_ACCESS_KEY]", "aws_access_key"),
        ("key AIzaSyA1234567890abcdefghijklmnopqrstuv", "key [CLOUD_KEY]", "cloud_key"),
        ("tok ghp_" + "a" * 36, "tok [CLOUD_KEY]", "cloud_key"),
        ("openai sk-proj-abcdefghijklmnopqrstuvwxyz", "openai [CLOUD_KEY]", "cloud_key"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0."
            "dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "jwt [JWT]",
            "jwt",
        ),
        (
            "Authorization: Bearer abc.DEF-123_456~x",
            "Authorization: Bearer [BEARER_TOKEN]",
            "bearer_token",
        ),
        (
            "k=-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n"
            "-----END OPENSSH PRIVATE KEY-----!",
            "k=[PRIVATE_KEY]!",
            "private_key",
        ),
        ("cut -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN", "cut [PRIVATE_KEY]", "private_key"),
    ],
)
def test_each_detector_replaces_what_it_finds_with_its_token(
    text: str, expected: str, entity: str
) -> None:
    result = REDACT(text)
    assert result.text == expected
    assert result.counts == {entity: 1}


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 shipped",  # 16 digits failing Luhn
        "ref 4111 1111 1111 1112",
        "iban GB82WEST12345698765433",  # mod-97 fails
        "iban GB00 WEST 1234 5698 7654 32",
        "ssn 000-12-3456 and 666-12-3456 and 123-45-678",
        "version 1.2.3.4.5 and 999.1.1.1 and pi 3.14159",
        "at 10:30:00 on 2024-01-15 12:30",
        "order number 1234567890",  # no grouping, no country code: not a phone number
        "user@localhost and not-an-email@ and @handle",
        "AKIA1234 is too short; eyJhbGciOiJ9 is not a JWT; Bearer short",
        "BEGIN PRIVATE KEY without dashes",
    ],
)
def test_look_alikes_are_kept(text: str) -> None:
    assert REDACT(text).text == text
    assert REDACT(text).counts == {}


@pytest.mark.parametrize(
    "identifier",
    [
        "232b070c-3958-4112-9972-abcce2b06660",  # held a "phone number" before
        "64bf8473-7487-4751-92b6-c4b562476459",  # held a Luhn-valid "card" before
        "232B070C-3958-4112-9972-ABCCE2B06660",
        "64bf84737487475192b6c4b562476459",  # a trace id, a UUID's hex
        "84737487475192b6",  # a span id
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # a SHA-256
    ],
)
def test_identifiers_are_not_read_as_phone_or_card_numbers(identifier: str) -> None:
    for text in (identifier, f"run {identifier} done", f'{{"run_id": "{identifier}"}}'):
        assert REDACT(text).text == text


def test_random_uuids_come_through_whole() -> None:
    """About 1 random UUID in 140 lost digits to the phone detector; none may now."""
    for _ in range(20_000):
        identifier = str(uuid.uuid4())
        assert REDACT(identifier).text == identifier


def test_values_beside_an_identifier_and_secrets_inside_one_are_still_found() -> None:
    run = "232b070c-3958-4112-9972-abcce2b06660"
    result = REDACT(f"call 555-123-4567 about {run}, card 4111111111111111abc")
    assert result.text == f"call [PHONE] about {run}, card [CREDIT_CARD]abc"
    assert REDACT(f"Authorization: Bearer {run}").text == "Authorization: Bearer [BEARER_TOKEN]"
    assert REDACT("x-3958-4112-9972-y").counts == {"phone": 1}  # not shaped like an identifier
    assert REDACT("4111111111111111").counts == {"credit_card": 1}  # digits alone: a number


def test_several_values_are_counted_per_type_and_replaced_in_one_pass() -> None:
    result = REDACT("a@b.io, c@d.io, 4111 1111 1111 1111, +33 1 23 45 67 89")
    assert result.text == "[EMAIL], [EMAIL], [CREDIT_CARD], [PHONE]"
    assert result.counts == {"email": 2, "credit_card": 1, "phone": 1}


def test_a_card_inside_a_phone_looking_run_is_claimed_once() -> None:
    result = REDACT("4111-1111-1111-1111")
    assert result.counts == {"credit_card": 1}


def test_hash_mode_joins_equal_values_and_differs_by_key() -> None:
    one = build_redactor(mode="hash", key=b"project-one-key-0123456789abcdef")
    two = build_redactor(mode="hash", key=b"project-two-key-0123456789abcdef")
    first = one("Ann@Example.com").text
    assert first.startswith("[EMAIL:")
    assert len(first) == len("[EMAIL:]") + 16
    assert one("ann@example.com").text == first  # normalised: the same address joins
    assert one("bob@example.com").text != first
    assert two("ann@example.com").text != first
    assert "example" not in first


def test_hash_mode_needs_a_key() -> None:
    with pytest.raises(InvalidInput, match="key") as caught:
        build_redactor(mode="hash")
    assert caught.value.field == "mode"


def test_disabled_detectors_are_skipped_and_unknown_ones_refused() -> None:
    redactor = build_redactor(disabled={Entity.IP_ADDRESS, Entity.EMAIL})
    assert redactor("a@b.io from 10.0.0.1").text == "a@b.io from 10.0.0.1"
    with pytest.raises(InvalidInput, match="unknown detectors") as caught:
        build_redactor(disabled={"postcode"})
    assert caught.value.field == "disabled"


def test_custom_patterns_replace_with_their_name() -> None:
    redactor = build_redactor(custom=[CustomPattern("employee_id", r"EMP-\d{6}")])
    result = redactor("ticket by EMP-004211 and a@b.io")
    assert result.text == "ticket by [EMPLOYEE_ID] and [EMAIL]"
    assert result.counts == {"employee_id": 1, "email": 1}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (CustomPattern("x", "(unclosed"), "not a valid regular expression"),
        (CustomPattern("x", "a*"), "empty string"),
        (CustomPattern("x", r"(a)\1"), "back-references"),
        (CustomPattern("x", "a" * 301), "1 to 300 characters"),
        (CustomPattern("Bad Name", "abc"), "pattern name"),
        (CustomPattern("email", "abc"), "built-in detector"),
    ],
)
def test_bad_custom_patterns_are_refused_without_quoting_them(
    pattern: CustomPattern, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        build_redactor(custom=[pattern])
    assert pattern.pattern[:20] not in str(caught.value) or len(pattern.pattern) < 4


def test_a_custom_pattern_that_runs_too_long_redacts_the_whole_text() -> None:
    redactor = build_redactor(custom=[CustomPattern("slow", r"(x+x+)+y")])
    started = time.monotonic()
    result = redactor("x" * 5000 + " secret a@b.io")
    assert time.monotonic() - started < 2
    assert result.text == "[REDACTED]"
    assert result.counts == {"slow": 1}


def test_validators() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB82WEST12345698765433")
    assert not iban_valid("GB82")
