"""LLM traces: redaction before anything is written, prices and cost, retention.

``redaction`` (PII and secret detectors, project rules compiled into a redactor), ``pricing``
(the versioned price table and a span's cost in nano-dollars), ``controls`` (the tables of what
a project decides: prices, redaction rules, retention settings).
"""

from monitors.traces.controls import PriceEntry, RedactionSettings, RetentionSettings
from monitors.traces.pricing import (
    Price,
    PriceBook,
    PriceCreate,
    PricePublic,
    add_price,
    close_price,
    list_prices,
    load_price_book,
    price_span,
)
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
    "Price",
    "PriceBook",
    "PriceCreate",
    "PriceEntry",
    "PricePublic",
    "Redacted",
    "RedactionSettings",
    "Redactor",
    "RetentionSettings",
    "add_price",
    "build_redactor",
    "close_price",
    "iban_valid",
    "list_prices",
    "load_price_book",
    "luhn_valid",
    "price_span",
]
