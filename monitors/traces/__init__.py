"""LLM traces: redaction before anything is written, prices and cost, retention.

``redaction`` (PII and secret detectors, project rules compiled into a redactor), ``pricing``
(the versioned price table and a span's cost in nano-dollars), ``retention`` (content and
metrics lifetimes, legal hold, the purge).
"""

from monitors.traces.redaction import (
    DETECTORS,
    CustomPattern,
    Entity,
    Redacted,
    Redactor,
    build_redactor,
    iban_valid,
    luhn_valid,
)

__all__ = [
    "DETECTORS",
    "CustomPattern",
    "Entity",
    "Redacted",
    "Redactor",
    "build_redactor",
    "iban_valid",
    "luhn_valid",
]
