"""LLM traces: OTLP spans in, mapped from any dialect onto one span model, redacted, rolled up.

A trace is an inference record of an LLM deployment: spans are stored against a lineage
``Deployment`` and read back per project. Where each part lives: ``otlp`` (decoding protobuf
and OTLP/JSON requests), ``dialects`` (the table mapping semconv, OpenInference and
MLflow/Langfuse attributes onto typed fields), ``models`` (span, content and trace tables),
``redaction`` (PII and secret detectors compiled into a redactor), ``redaction_rules`` (a
project's stored rules and its redactor), ``pricing`` (the versioned price table, a span's cost
in nano-dollars, the recompute), ``controls`` (the tables of what a project decides: prices,
redaction rules, retention settings), ``retention`` (content and metrics lifetimes, legal hold,
the purge), ``jobs`` (purge and cost recompute on the worker, audited), ``ingest`` (the one
storing pipeline: redaction, pricing, idempotency, roll-ups), ``queries`` (listing and
filtering traces, one trace as its span tree).
"""

from monitors.traces.controls import (
    PriceEntry,
    RedactionSettings,
    RetentionSettings,
)
from monitors.traces.dialects import (
    FIELD_SOURCES,
    GenAiFields,
    Message,
    is_content_key,
    map_attributes,
)
from monitors.traces.ingest import (
    MAX_SPANS,
    IngestOutcome,
    Rejected,
    default_redactor,
    find_deployment,
    ingest_spans,
)
from monitors.traces.jobs import (
    COST_RECOMPUTE,
    TRACE_PURGE,
    AuditHook,
    queue_due_purges,
    queue_purge,
    queue_recompute,
    register_trace_handlers,
)
from monitors.traces.models import (
    CostSource,
    Trace,
    TraceContent,
    TraceSpan,
)
from monitors.traces.otlp import (
    Encoding,
    OtlpEvent,
    OtlpSpan,
    ResourceSpans,
    decode_request,
    encode_response,
)
from monitors.traces.pricing import (
    Price,
    PriceBook,
    PriceCreate,
    PricePublic,
    RecomputeCounts,
    add_price,
    close_price,
    list_prices,
    load_price_book,
    price_span,
    recompute_costs,
)
from monitors.traces.prompt_links import PromptLink, SpanLink, prompt_of_span, spans_of_prompt
from monitors.traces.queries import (
    MAX_PAGE,
    SpanContentPublic,
    SpanPublic,
    TraceFilter,
    TracePagePublic,
    TracePublic,
    TraceTreePublic,
    get_trace,
    list_traces,
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
from monitors.traces.redaction_rules import (
    RedactionRulesPublic,
    RedactionRulesUpdate,
    Sealer,
    get_rules,
    project_redactor,
    set_rules,
)
from monitors.traces.retention import (
    LegalHoldUpdate,
    PurgeCounts,
    RetentionPublic,
    RetentionUpdate,
    get_retention,
    purge,
    set_legal_hold,
    set_retention,
)

__all__ = [
    "COST_RECOMPUTE",
    "DETECTORS",
    "FIELD_SOURCES",
    "MAX_PAGE",
    "MAX_SPANS",
    "TRACE_PURGE",
    "AuditHook",
    "CostSource",
    "CustomPattern",
    "Encoding",
    "Entity",
    "GenAiFields",
    "IngestOutcome",
    "LegalHoldUpdate",
    "Message",
    "OtlpEvent",
    "OtlpSpan",
    "Price",
    "PriceBook",
    "PriceCreate",
    "PriceEntry",
    "PricePublic",
    "PromptLink",
    "PurgeCounts",
    "RecomputeCounts",
    "Redacted",
    "RedactionRulesPublic",
    "RedactionRulesUpdate",
    "RedactionSettings",
    "Redactor",
    "Rejected",
    "ResourceSpans",
    "RetentionPublic",
    "RetentionSettings",
    "RetentionUpdate",
    "Sealer",
    "SpanContentPublic",
    "SpanLink",
    "SpanPublic",
    "Trace",
    "TraceContent",
    "TraceFilter",
    "TracePagePublic",
    "TracePublic",
    "TraceSpan",
    "TraceTreePublic",
    "add_price",
    "build_redactor",
    "close_price",
    "decode_request",
    "default_redactor",
    "encode_response",
    "find_deployment",
    "get_retention",
    "get_rules",
    "get_trace",
    "iban_valid",
    "ingest_spans",
    "is_content_key",
    "list_prices",
    "list_traces",
    "load_price_book",
    "luhn_valid",
    "map_attributes",
    "price_span",
    "project_redactor",
    "prompt_of_span",
    "purge",
    "queue_due_purges",
    "queue_purge",
    "queue_recompute",
    "recompute_costs",
    "register_trace_handlers",
    "set_legal_hold",
    "set_retention",
    "set_rules",
    "spans_of_prompt",
]
