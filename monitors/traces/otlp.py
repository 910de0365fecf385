"""Decode an OTLP ``ExportTraceServiceRequest`` (protobuf or OTLP/JSON) into plain spans.

Both encodings land in the same small types (:class:`ResourceSpans`, :class:`OtlpSpan`) with
attribute values as plain Python (``str``, ``int``, ``float``, ``bool``, lists, dicts; bytes as
base64 text), so the dialect mapping never sees protobuf. OTLP/JSON is walked by hand rather than
through ``google.protobuf.json_format``: the spec writes trace and span ids as hex, and the generic
parser would decode them as base64 into wrong 24-byte ids. Old exporters that still send base64
ids are tolerated when the decoded length is right.

A body that is not an ``ExportTraceServiceRequest`` at all raises
:class:`~lineage.errors.InvalidInput` (the route answers 400); a span that is well-framed but
unusable (an id of the wrong length, an end before its start) is kept with :attr:`OtlpSpan.problem`
set, so the ingest rejects it alone and accepts the rest of the batch.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lineage.errors import InvalidInput

if TYPE_CHECKING:  # protobuf's generated modules load with the first protobuf request
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "SPAN_KINDS",
    "STATUS_CODES",
    "Attributes",
    "Encoding",
    "OtlpEvent",
    "OtlpSpan",
    "ResourceSpans",
    "decode_request",
    "encode_response",
]

Encoding = Literal["protobuf", "json"]
Attributes = dict[str, Any]
"""An attribute bag: keys to ``str | int | float | bool | None | list | dict`` values."""

SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class OtlpEvent:
    """A span event: a name, a time and its attributes."""

    name: str
    time_ns: int
    attributes: Attributes


@dataclass(slots=True)
class OtlpSpan:
    """One span as received; ``problem`` says why it cannot be stored (``None`` when it can)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str
    attributes: Attributes
    events: list[OtlpEvent] = field(default_factory=list)
    scope: str = ""
    problem: str | None = None


@dataclass(slots=True)
class ResourceSpans:
    """The spans one resource (one service process) sent, with its resource attributes."""

    resource: Attributes
    spans: list[OtlpSpan]


def decode_request(body: bytes, *, encoding: Encoding) -> list[ResourceSpans]:
    """Decode an ``ExportTraceServiceRequest`` body.

    Raises:
        InvalidInput: The body is not a request in that encoding (the route answers 400).
    """
    if encoding == "protobuf":
        return _decode_protobuf(body)
    return _decode_json(body)


def encode_response(*, rejected: int, message: str, encoding: Encoding) -> bytes:
    """Return an ``ExportTraceServiceResponse`` naming the rejected spans, in ``encoding``."""
    if encoding == "protobuf":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        response = ExportTraceServiceResponse()
        if rejected or message:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        encoded: bytes = response.SerializeToString()
        return encoded
    document: dict[str, Any] = {}
    if rejected or message:
        # OTLP/JSON writes 64-bit integers as strings.
        document["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
    return json.dumps(document).encode()


# --- ids ------------------------------------------------------------------------------------


def _id_problem(raw: bytes, size: int, what: str) -> str | None:
    if len(raw) != size:
        return f"{what} must be {size} bytes ({size * 2} hex digits), not {len(raw)}"
    if raw == bytes(size):
        return f"{what} is all zeros, which OTLP defines as invalid"
    return None


def _json_id(value: Any, size: int, what: str) -> tuple[str, str | None]:
    """Return ``(hex id, problem)`` for an OTLP/JSON id: hex per the spec, base64 tolerated."""
    if not isinstance(value, str) or not value:
        return "", f"{what} is missing; send {size * 2} hex digits"
    text = value.strip()
    if len(text) == size * 2:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if raw:
            return raw.hex(), _id_problem(raw, size, what)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "", f"{what} {text[:40]!r} is neither {size * 2} hex digits nor base64"
    if len(raw) != size:
        return "", f"{what} {text[:40]!r} is not {size * 2} hex digits"
    return raw.hex(), _id_problem(raw, size, what)


# --- protobuf -------------------------------------------------------------------------------


def _pb_value(value: AnyValue, depth: int = 0) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else None
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if depth >= _MAX_DEPTH:
        return None
    if which == "array_value":
        return [_pb_value(item, depth + 1) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return None


def _pb_attributes(pairs: Sequence[KeyValue]) -> Attributes:
    return {kv.key: _pb_value(kv.value) for kv in pairs}


def _decode_protobuf(body: bytes) -> list[ResourceSpans]:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError) as error:
        raise InvalidInput(
            f"the body is not an OTLP ExportTraceServiceRequest in protobuf ({error}); "
            "send application/x-protobuf as the OTLP exporter does, or application/json",
            field="body",
        ) from None
    decoded: list[ResourceSpans] = []
    for resource_spans in request.resource_spans:
        spans: list[OtlpSpan] = []
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                parent = span.parent_span_id
                problem = _id_problem(trace_id, 16, "traceId") or _id_problem(span_id, 8, "spanId")
                if parent and problem is None and len(parent) != 8:
                    problem = f"parentSpanId must be 8 bytes, not {len(parent)}"
                item = OtlpSpan(
                    trace_id=trace_id.hex(),
                    span_id=span_id.hex(),
                    parent_span_id=parent.hex() if parent and parent != bytes(8) else None,
                    name=span.name,
                    kind=SPAN_KINDS[span.kind] if 0 <= span.kind < len(SPAN_KINDS) else "internal",
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status=STATUS_CODES[span.status.code]
                    if 0 <= span.status.code < len(STATUS_CODES)
                    else "unset",
                    status_message=span.status.message,
                    attributes=_pb_attributes(span.attributes),
                    events=[
                        OtlpEvent(
                            name=event.name,
                            time_ns=event.time_unix_nano,
                            attributes=_pb_attributes(event.attributes),
                        )
                        for event in span.events
                    ],
                    scope=scope,
                    problem=problem,
                )
                _check_times(item)
                spans.append(item)
        decoded.append(
            ResourceSpans(resource=_pb_attributes(resource_spans.resource.attributes), spans=spans)
        )
    return decoded


# --- OTLP/JSON ------------------------------------------------------------------------------


class _Malformed(Exception):
    """A span (or part of one) does not have the shape OTLP/JSON gives it."""


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    """Read a field by its lowerCamelCase name, or the proto name some encoders still write."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_int(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _Malformed(f"{what} is a boolean; send an integer (as a string or a number)")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Malformed(f"{what} {str(value)[:40]!r} is not an integer")


def _json_value(value: Any, depth: int = 0) -> Any:
    if not isinstance(value, Mapping):
        raise _Malformed("an attribute value must be an AnyValue object such as {stringValue: …}")
    if "stringValue" in value or "string_value" in value:
        text = _get(value, "stringValue", "string_value")
        if not isinstance(text, str):
            raise _Malformed("stringValue must be a string")
        return text
    if "intValue" in value or "int_value" in value:
        return _json_int(_get(value, "intValue", "int_value"), "intValue")
    if "boolValue" in value or "bool_value" in value:
        flag = _get(value, "boolValue", "bool_value")
        if not isinstance(flag, bool):
            raise _Malformed("boolValue must be true or false")
        return flag
    if "doubleValue" in value or "double_value" in value:
        number = _get(value, "doubleValue", "double_value")
        if isinstance(number, bool) or not isinstance(number, int | float | str):
            raise _Malformed("doubleValue must be a number")
        try:
            parsed = float(number)
        except ValueError:
            raise _Malformed("doubleValue must be a number") from None
        return parsed if math.isfinite(parsed) else None
    if "bytesValue" in value or "bytes_value" in value:
        data = _get(value, "bytesValue", "bytes_value")
        return data if isinstance(data, str) else None
    if depth >= _MAX_DEPTH:
        return None
    if "arrayValue" in value or "array_value" in value:
        items = _get(value, "arrayValue", "array_value")
        values = items.get("values", []) if isinstance(items, Mapping) else None
        if not isinstance(values, list):
            raise _Malformed("arrayValue.values must be a list")
        return [_json_value(item, depth + 1) for item in values]
    if "kvlistValue" in value or "kvlist_value" in value:
        items = _get(value, "kvlistValue", "kvlist_value")
        values = items.get("values", []) if isinstance(items, Mapping) else None
        if not isinstance(values, list):
            raise _Malformed("kvlistValue.values must be a list")
        return _json_attributes(values, depth + 1)
    return None


def _json_attributes(pairs: Any, depth: int = 0) -> Attributes:
    if pairs is None:
        return {}
    if not isinstance(pairs, list):
        raise _Malformed("attributes must be a list of {key, value}")
    bag: Attributes = {}
    for pair in pairs:
        if not isinstance(pair, Mapping) or not isinstance(pair.get("key"), str):
            raise _Malformed("each attribute must be an object with a string key")
        bag[pair["key"]] = _json_value(pair.get("value") or {}, depth)
    return bag


def _json_enum(value: Any, names: tuple[str, ...], prefix: str) -> str:
    if value is None:
        return names[0] if prefix == "STATUS_CODE_" else "internal"
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value.upper().startswith(prefix):
        name = value.upper().removeprefix(prefix).lower()
        if name in names:
            return name
    raise _Malformed(f"{value!r} is not one of the OTLP {prefix.rstrip('_')} values")


def _json_span(span: Any, scope: str, index: str) -> OtlpSpan:
    if not isinstance(span, Mapping):
        return _unusable(f"{index} is not an object")
    trace_id, trace_problem = _json_id(_get(span, "traceId", "trace_id"), 16, "traceId")
    span_id, span_problem = _json_id(_get(span, "spanId", "span_id"), 8, "spanId")
    parent_raw = _get(span, "parentSpanId", "parent_span_id")
    parent_id, parent_problem = (
        _json_id(parent_raw, 8, "parentSpanId") if parent_raw else (None, None)
    )
    problem = trace_problem or span_problem or parent_problem
    try:
        status = span.get("status") or {}
        if not isinstance(status, Mapping):
            raise _Malformed("status must be an object")
        events_raw = span.get("events") or []
        if not isinstance(events_raw, list):
            raise _Malformed("events must be a list")
        events = []
        for event in events_raw:
            if not isinstance(event, Mapping):
                raise _Malformed("each event must be an object")
            events.append(
                OtlpEvent(
                    name=str(event.get("name") or ""),
                    time_ns=_json_int(
                        _get(event, "timeUnixNano", "time_unix_nano"), "timeUnixNano"
                    ),
                    attributes=_json_attributes(event.get("attributes")),
                )
            )
        name = span.get("name") or ""
        if not isinstance(name, str):
            raise _Malformed("name must be a string")
        message = status.get("message") or ""
        item = OtlpSpan(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_id if parent_id and parent_id != "0" * 16 else None,
            name=name,
            kind=_json_enum(span.get("kind"), SPAN_KINDS, "SPAN_KIND_"),
            start_ns=_json_int(
                _get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"
            ),
            end_ns=_json_int(
                _get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"
            ),
            status=_json_enum(status.get("code"), STATUS_CODES, "STATUS_CODE_"),
            status_message=message if isinstance(message, str) else str(message),
            attributes=_json_attributes(span.get("attributes")),
            events=events,
            scope=scope,
            problem=problem,
        )
    except _Malformed as error:
        unusable = _unusable(f"{index}: {error}")
        unusable.trace_id, unusable.span_id = trace_id, span_id
        return unusable
    _check_times(item)
    return item


def _unusable(problem: str) -> OtlpSpan:
    return OtlpSpan(
        trace_id="",
        span_id="",
        parent_span_id=None,
        name="",
        kind="internal",
        start_ns=0,
        end_ns=0,
        status="unset",
        status_message="",
        attributes={},
        problem=problem,
    )


def _check_times(span: OtlpSpan) -> None:
    if span.problem is not None:
        return
    if span.start_ns <= 0:
        span.problem = "startTimeUnixNano is missing or zero"
    elif span.end_ns < span.start_ns:
        span.problem = "endTimeUnixNano is before startTimeUnixNano"
    elif span.end_ns >= 2**63:
        span.problem = "endTimeUnixNano is beyond the year 2262"


def _list_of(obj: Mapping[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"{where}.{camel} must be a list", field=f"{where}.{camel}")
    return value


def _decode_json(body: bytes) -> list[ResourceSpans]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(
            f"the body is not valid JSON ({error}); send an OTLP/JSON ExportTraceServiceRequest",
            field="body",
        ) from None
    if not isinstance(document, Mapping):
        raise InvalidInput(
            "the body must be a JSON object with resourceSpans (an ExportTraceServiceRequest)",
            field="body",
        )
    decoded: list[ResourceSpans] = []
    for r, resource_spans in enumerate(
        _list_of(document, "resourceSpans", "resource_spans", "body")
    ):
        where = f"resourceSpans.{r}"
        if not isinstance(resource_spans, Mapping):
            raise InvalidInput(f"{where} must be an object", field=where)
        resource = resource_spans.get("resource") or {}
        try:
            attributes = _json_attributes(
                resource.get("attributes") if isinstance(resource, Mapping) else None
            )
        except _Malformed as error:
            raise InvalidInput(f"{where}.resource: {error}", field=f"{where}.resource") from None
        spans: list[OtlpSpan] = []
        for s, scope_spans in enumerate(
            _list_of(resource_spans, "scopeSpans", "scope_spans", where)
        ):
            scope_where = f"{where}.scopeSpans.{s}"
            if not isinstance(scope_spans, Mapping):
                raise InvalidInput(f"{scope_where} must be an object", field=scope_where)
            scope = scope_spans.get("scope") or {}
            scope_name = scope.get("name", "") if isinstance(scope, Mapping) else ""
            for n, span in enumerate(_list_of(scope_spans, "spans", "spans", scope_where)):
                spans.append(_json_span(span, str(scope_name or ""), f"{scope_where}.spans.{n}"))
        decoded.append(ResourceSpans(resource=attributes, spans=spans))
    return decoded
