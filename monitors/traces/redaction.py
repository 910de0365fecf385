"""PII and secret redaction, applied to every text before anything about a trace is written.

Pure: no I/O, no logging of the texts it sees. :func:`build_redactor` compiles a project's rules
once into a :class:`Redactor`; calling it on a text returns the text with every detected value
replaced and the counts per entity (:class:`Redacted`). Detection runs all detectors over the
original text, keeps the first claim on each stretch (detectors in :data:`DETECTORS` order, then
custom patterns), and replaces in one pass — so a replacement is never re-scanned.

Validators stop look-alikes: a card number must pass Luhn, an IBAN mod-97, an IPv6 candidate
the standard library's parser. Identifiers are not numbers: the detectors of number-shaped values
(phone, card, SSN, IBAN, IP address) never claim text inside a UUID or a hex id of the usual
lengths holding a letter (a span or trace id, a digest), where about 1 random UUID in 140 held a
"phone number" (``…-3958-4112-9972-…``) and some a Luhn-valid "card"; secrets (a bearer token
that is a UUID) are still found there, and a hex id of digits alone is a number like any other.

Replacement is a typed token (``[EMAIL]``) or, with ``mode="hash"``, the token plus a keyed hash
of the normalised value (``[EMAIL:3f9a…]``, HMAC-SHA256 under the project's key), so equal values
still join without being readable. The key is the project's, sealed at rest by the caller; this
module only receives its bytes.

Custom patterns are untrusted regexes: they are bounded in length, refused if they can match the
empty string or use back-references, compiled once, and run with a time limit; a text on which
a custom pattern runs out of time is replaced whole (``[REDACTED]``), never stored raw.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import regex

from lineage.errors import InvalidInput

__all__ = [
    "DETECTORS",
    "MAX_CUSTOM_PATTERNS",
    "MAX_PATTERN_LENGTH",
    "CustomPattern",
    "Entity",
    "Mode",
    "Redacted",
    "Redactor",
    "build_redactor",
    "compile_custom",
    "iban_valid",
    "luhn_valid",
]

MAX_PATTERN_LENGTH = 300
"""The longest custom pattern accepted (characters)."""
MAX_CUSTOM_PATTERNS = 50
"""The most custom patterns one project may have."""
_CUSTOM_TIMEOUT_SECONDS = 0.05
_HASH_HEX = 16
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

Mode = Literal["token", "hash"]
"""How a detected value is replaced: a typed token, or a typed token with a keyed hash."""


class Entity(StrEnum):
    """What a built-in detector finds; its upper-case name is the replacement token."""

    PRIVATE_KEY = "private_key"
    JWT = "jwt"
    BEARER_TOKEN = "bearer_token"  # noqa: S105 - a detector name, not a secret
    AWS_ACCESS_KEY = "aws_access_key"
    CLOUD_KEY = "cloud_key"
    EMAIL = "email"
    IBAN = "iban"
    CREDIT_CARD = "credit_card"
    US_SSN = "us_ssn"
    IP_ADDRESS = "ip_address"
    PHONE = "phone"


@dataclass(frozen=True, slots=True)
class Redacted:
    """A text after redaction, and how many values of each kind were replaced."""

    text: str
    counts: Mapping[str, int]


def luhn_valid(digits: str) -> bool:
    """Return whether ``digits`` (only digits) passes the Luhn check payment cards carry."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """Return whether ``candidate`` (no spaces, upper case) is an IBAN by ISO 13616 mod-97."""
    if not 15 <= len(candidate) <= 34 or not candidate.isalnum():
        return False
    moved = candidate[4:] + candidate[:4]
    number = "".join(str(int(char, 36)) for char in moved)
    return int(number) % 97 == 1


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def _card(text: str) -> str | None:
    digits = _digits(text)
    return digits if 13 <= len(digits) <= 19 and luhn_valid(digits) else None


def _iban(text: str) -> str | None:
    compact = text.replace(" ", "")
    return compact if iban_valid(compact) else None


def _ipv6(text: str) -> str | None:
    candidate = text.rstrip(".")
    if candidate.count(":") < 2:
        return None
    try:
        return str(ipaddress.IPv6Address(candidate))
    except ValueError:
        return None


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")


def _phone(text: str) -> str | None:
    digits = _digits(text)
    if text.startswith("+"):
        return "+" + digits if 8 <= len(digits) <= 15 else None
    if _ISO_DATE.match(text) or _SSN_SHAPE.fullmatch(text) or not 9 <= len(digits) <= 12:
        return None
    # Without a country code, a phone number is written in groups or with an area code.
    return digits if re.search(r"[ ().-]", text.strip()) else None


def _lower(text: str) -> str:
    return text.lower()


def _same(text: str) -> str:
    return text


_NUMBER_SHAPED = frozenset(
    {Entity.PHONE, Entity.CREDIT_CARD, Entity.US_SSN, Entity.IBAN, Entity.IP_ADDRESS}
)
# A UUID, or 16, 32, 40 or 64 hex digits holding both a digit and a letter (a span or trace id,
# a UUID's hex, a SHA-1 or SHA-256 digest), between non-word characters: an identifier, in which
# number-shaped values are not looked for. Other lengths are not exempt: a card number glued to
# a few letters is still a card number.
_IDENTIFIER = re.compile(
    r"(?<![\w-])(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|(?=[0-9A-Fa-f]*[A-Fa-f])(?=[0-9A-Fa-f]*\d)"
    r"(?:[0-9A-Fa-f]{64}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{32}|[0-9A-Fa-f]{16}))(?![\w-])"
)


def _inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Return whether ``[start, end)`` overlaps one of ``spans`` (sorted, not overlapping)."""
    at = bisect.bisect_right(spans, (start, end))
    return (at > 0 and spans[at - 1][1] > start) or (at < len(spans) and spans[at][0] < end)


@dataclass(frozen=True, slots=True)
class _Detector:
    """A pattern, the group holding the value, and a check that also normalises (None: reject)."""

    entity: str
    pattern: re.Pattern[str]
    check: Callable[[str], str | None] = _same
    group: int = 0


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

DETECTORS: tuple[_Detector, ...] = (
    _Detector(
        Entity.PRIVATE_KEY,
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----"
            r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----|\Z)"
        ),
    ),
    _Detector(
        Entity.JWT,
        re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    ),
    _Detector(
        Entity.BEARER_TOKEN,
        re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})"),
        group=1,
    ),
    _Detector(
        Entity.AWS_ACCESS_KEY,
        re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[A-Z0-9]{16}\b"),
    ),
    _Detector(
        Entity.CLOUD_KEY,
        re.compile(
            r"\bAIza[0-9A-Za-z_-]{35}"  # Google API key
            r"|\bgh[pousr]_[A-Za-z0-9]{36,255}"  # GitHub token
            r"|\bgithub_pat_[A-Za-z0-9_]{22,255}"
            r"|\bxox[abposr]-[A-Za-z0-9-]{10,200}"  # Slack token
            r"|\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,200}"  # Stripe key
            r"|\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,200}"  # OpenAI / Anthropic key
            r"|(?i:aws_secret_access_key)\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}"
        ),
    ),
    _Detector(
        Entity.EMAIL,
        re.compile(
            r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)"
            r"{1,8}[A-Za-z]{2,24}\b"
        ),
        _lower,
    ),
    _Detector(
        Entity.IBAN,
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
        _iban,
    ),
    _Detector(
        Entity.CREDIT_CARD,
        re.compile(
            r"(?<![\d-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5})"
            r"(?!\d)"
        ),
        _card,
    ),
    _Detector(
        Entity.US_SSN,
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
    ),
    _Detector(
        Entity.IP_ADDRESS,
        re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d]|\.\d)"),
    ),
    _Detector(
        Entity.IP_ADDRESS,
        re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[\d.]{1,15})?"),
        _ipv6,
    ),
    _Detector(
        Entity.PHONE,
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?"
            r"\d{1,4}(?:[ .-]?\d{2,4}){1,5}(?![\w])"
        ),
        _phone,
    ),
)
"""The built-in detectors, in the order they claim text (secrets first, phone numbers last)."""


@dataclass(frozen=True, slots=True)
class CustomPattern:
    """A project's own pattern: its name is the token (``[NAME]``) and the count's key."""

    name: str
    pattern: str


@dataclass(frozen=True, slots=True)
class _Custom:
    name: str
    compiled: regex.Pattern[str]


def compile_custom(pattern: CustomPattern, *, prefix: str = "") -> _Custom:
    """Validate and compile a custom pattern once; errors name ``{prefix}name``/``pattern``.

    Raises:
        InvalidInput: A bad name, a pattern too long, invalid, able to match the empty string,
            using back-references, or named like a built-in detector. The message never quotes
            the pattern (it may itself contain a secret someone wanted to catch).
    """
    if not _NAME.match(pattern.name):
        raise InvalidInput(
            "a pattern name is 1-40 characters: lower-case letters, digits and _, "
            "starting with a letter",
            field=f"{prefix}name",
        )
    if pattern.name in {entity.value for entity in Entity}:
        raise InvalidInput(
            f"{pattern.name!r} is a built-in detector; name the custom pattern otherwise",
            field=f"{prefix}name",
        )
    if not pattern.pattern or len(pattern.pattern) > MAX_PATTERN_LENGTH:
        raise InvalidInput(
            f"a pattern is 1 to {MAX_PATTERN_LENGTH} characters long", field=f"{prefix}pattern"
        )
    if re.search(r"\\[1-9]|\(\?P=|\\g<|\\k<", pattern.pattern):
        raise InvalidInput("back-references are not allowed in a pattern", field=f"{prefix}pattern")
    try:
        compiled = regex.compile(pattern.pattern, regex.VERSION0)
    except (regex.error, OverflowError, RecursionError) as error:
        raise InvalidInput(
            f"the pattern is not a valid regular expression ({type(error).__name__}: "
            f"{getattr(error, 'msg', 'invalid')})",
            field=f"{prefix}pattern",
        ) from error
    try:
        empty = compiled.fullmatch("", timeout=_CUSTOM_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        empty = True
    if empty:
        raise InvalidInput("the pattern matches the empty string", field=f"{prefix}pattern")
    return _Custom(pattern.name, compiled)


def _keyed_hash(key: bytes, entity: str, value: str) -> str:
    digest = hmac.new(key, f"{entity}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return digest[:_HASH_HEX]


@dataclass(frozen=True)
class Redactor:
    """A project's compiled rules; call it on a text to get the text without PII and secrets.

    Attributes:
        detectors: The enabled built-in detectors, in claim order.
        custom: The project's custom patterns, compiled.
        mode: ``token`` or ``hash``.
        key: The project's hash key (needed for ``hash`` mode; never shown).
    """

    detectors: tuple[_Detector, ...]
    custom: tuple[_Custom, ...] = ()
    mode: Mode = "token"
    key: bytes = field(default=b"", repr=False)

    def __call__(self, text: str) -> Redacted:
        """Return ``text`` with every detected value replaced, and the counts per entity."""
        if not text:
            return Redacted(text, {})
        claims: list[tuple[int, int, str, str]] = []
        starts: list[int] = []  # claimed stretches never overlap, so sorted starts suffice
        ends: list[int] = []

        def claim(start: int, end: int, entity: str, value: str) -> None:
            at = bisect.bisect_right(starts, start)
            if (at and ends[at - 1] > start) or (at < len(starts) and starts[at] < end):
                return
            starts.insert(at, start)
            ends.insert(at, end)
            claims.append((start, end, entity, value))

        identifiers = [match.span() for match in _IDENTIFIER.finditer(text)]
        for detector in self.detectors:
            for match in detector.pattern.finditer(text):
                start, end = match.span(detector.group)
                if detector.entity in _NUMBER_SHAPED and _inside(identifiers, start, end):
                    continue
                value = detector.check(match.group(detector.group))
                if value is not None:
                    claim(start, end, str(detector.entity), value)
        for custom in self.custom:
            try:
                for match in custom.compiled.finditer(text, timeout=_CUSTOM_TIMEOUT_SECONDS):
                    if match.end() > match.start():
                        claim(match.start(), match.end(), custom.name, match.group())
            except TimeoutError:
                return Redacted("[REDACTED]", {custom.name: 1})
        if not claims:
            return Redacted(text, {})
        claims.sort()
        parts: list[str] = []
        position = 0
        counts: Counter[str] = Counter()
        for start, end, entity, value in claims:
            parts.append(text[position:start])
            parts.append(self._replacement(entity, value))
            counts[entity] += 1
            position = end
        parts.append(text[position:])
        return Redacted("".join(parts), dict(counts))

    def _replacement(self, entity: str, value: str) -> str:
        label = entity.upper()
        if self.mode == "hash" and self.key:
            return f"[{label}:{_keyed_hash(self.key, entity, value)}]"
        return f"[{label}]"


def build_redactor(
    *,
    disabled: Collection[str] = (),
    custom: Sequence[CustomPattern] | Iterable[CustomPattern] = (),
    mode: Mode = "token",
    key: bytes = b"",
) -> Redactor:
    """Compile a project's rules into a :class:`Redactor` (all detectors on by default).

    Raises:
        InvalidInput: An unknown detector in ``disabled``, a bad custom pattern, too many
            custom patterns, or ``hash`` mode without a key.
    """
    known = {entity.value for entity in Entity}
    unknown = sorted(set(disabled) - known)
    if unknown:
        raise InvalidInput(
            f"unknown detectors {unknown}; the detectors are {sorted(known)}", field="disabled"
        )
    patterns = list(custom)
    if len(patterns) > MAX_CUSTOM_PATTERNS:
        raise InvalidInput(
            f"at most {MAX_CUSTOM_PATTERNS} custom patterns per project", field="patterns"
        )
    if mode == "hash" and not key:
        raise InvalidInput("hash mode needs the project's key", field="mode")
    return Redactor(
        detectors=tuple(d for d in DETECTORS if d.entity not in set(disabled)),
        custom=tuple(compile_custom(p, prefix=f"patterns.{i}.") for i, p in enumerate(patterns)),
        mode=mode,
        key=key,
    )
