"""A project's redaction rules, stored, and the redactor every ingest path builds from them.

:func:`project_redactor` is what a storing path calls before it writes any text of a project:
it reads the project's rules (defaults: every detector on, typed tokens) and returns a compiled
:class:`~monitors.traces.redaction.Redactor`; compiled redactors are cached by their rules, so
custom patterns compile once. The hash key of ``hash`` mode is 32 random bytes per project,
created when a project first chooses ``hash`` and kept sealed by the caller's :class:`Sealer`
(``governance.SecretBox``, whose key lives in the keys directory, apart from the database);
it is never returned, logged or audited.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, select

from lineage.errors import InvalidInput
from lineage.tables import utcnow
from monitors.traces.controls import RedactionSettings
from monitors.traces.redaction import (
    MAX_CUSTOM_PATTERNS,
    MAX_PATTERN_LENGTH,
    CustomPattern,
    Entity,
    Mode,
    Redactor,
    build_redactor,
)

__all__ = [
    "CustomPatternRecord",
    "RedactionRulesPublic",
    "RedactionRulesUpdate",
    "Sealer",
    "get_rules",
    "project_redactor",
    "set_rules",
]

_KEY_FIELD = "hash_key"


class Sealer(Protocol):
    """Seals and opens secrets with a key kept outside the database (``SecretBox``)."""

    def seal(self, values: dict[str, str]) -> str:
        """Return ``values`` encrypted."""
        ...

    def open(self, token: str) -> dict[str, str]:
        """Return the values sealed in ``token``."""
        ...


class CustomPatternRecord(BaseModel):
    """A custom pattern as clients send it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_LENGTH)


class RedactionRulesUpdate(BaseModel):
    """A project's new rules: replacement mode, detectors switched off, custom patterns."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = "token"
    disabled: list[Entity] = Field(default_factory=list, max_length=len(Entity))
    patterns: list[CustomPatternRecord] = Field(
        default_factory=list, max_length=MAX_CUSTOM_PATTERNS
    )


class RedactionRulesPublic(BaseModel):
    """A project's rules as clients see them (never the hash key)."""

    mode: Mode
    detectors: list[str]
    disabled: list[str]
    patterns: list[CustomPatternRecord]
    updated_at: datetime | None

    def audit_view(self) -> dict[str, object]:
        """Return the rules for an audit entry: names and patterns, never a key or a text."""
        return self.model_dump(mode="json", exclude={"updated_at", "detectors"})


def _row(session: Session, project_id: uuid.UUID) -> RedactionSettings | None:
    return session.exec(
        select(RedactionSettings).where(RedactionSettings.project_id == project_id)
    ).first()


def _public(row: RedactionSettings | None) -> RedactionRulesPublic:
    return RedactionRulesPublic(
        mode="hash" if row is not None and row.mode == "hash" else "token",
        detectors=[entity.value for entity in Entity],
        disabled=[] if row is None else sorted(row.disabled),
        patterns=[] if row is None else [CustomPatternRecord(**item) for item in row.patterns],
        updated_at=None if row is None else row.updated_at,
    )


def get_rules(*, session: Session, project_id: uuid.UUID) -> RedactionRulesPublic:
    """Return the project's redaction rules (the defaults if it never changed them)."""
    return _public(_row(session, project_id))


def set_rules(
    *, session: Session, project_id: uuid.UUID, spec: RedactionRulesUpdate, sealer: Sealer
) -> tuple[RedactionRulesPublic, RedactionRulesPublic]:
    """Replace the project's rules; return them before and after.

    Every custom pattern is compiled first, so bad rules are refused and nothing changes.
    Choosing ``hash`` creates the project's key if it has none (sealed by ``sealer``).

    Raises:
        InvalidInput: A bad or duplicate pattern (naming ``patterns.N.…``).
    """
    names = [pattern.name for pattern in spec.patterns]
    if len(set(names)) != len(names):
        raise InvalidInput("two custom patterns have the same name", field="patterns")
    patterns = [CustomPattern(p.name, p.pattern) for p in spec.patterns]
    build_redactor(disabled={str(e) for e in spec.disabled}, custom=patterns)
    row = _row(session, project_id)
    before = _public(row)
    if row is None:
        row = RedactionSettings(project_id=project_id)
    row.mode = spec.mode
    row.disabled = sorted({str(entity) for entity in spec.disabled})
    row.patterns = [{"name": p.name, "pattern": p.pattern} for p in spec.patterns]
    if spec.mode == "hash" and row.sealed_key is None:
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        row.sealed_key = sealer.seal({_KEY_FIELD: key})
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return before, _public(row)


@lru_cache(maxsize=256)
def _compiled(
    disabled: frozenset[str], patterns: tuple[CustomPattern, ...], mode: Mode, key: bytes
) -> Redactor:
    return build_redactor(disabled=disabled, custom=patterns, mode=mode, key=key)


def project_redactor(
    *, session: Session, project_id: uuid.UUID, sealer: Sealer | None = None
) -> Redactor:
    """Return the redactor of the project's rules; call it on every text before storing it.

    Raises:
        InvalidInput: The project hashes values but no ``sealer`` was given to open its key.
    """
    row = _row(session, project_id)
    if row is None:
        return _compiled(frozenset(), (), "token", b"")
    key = b""
    mode: Mode = "hash" if row.mode == "hash" else "token"
    if mode == "hash":
        if sealer is None or row.sealed_key is None:
            raise InvalidInput(
                "this project hashes redacted values; its key is needed", field="sealer"
            )
        key = base64.b64decode(sealer.open(row.sealed_key)[_KEY_FIELD])
    patterns = tuple(CustomPattern(item["name"], item["pattern"]) for item in row.patterns)
    return _compiled(frozenset(row.disabled), patterns, mode, key)
