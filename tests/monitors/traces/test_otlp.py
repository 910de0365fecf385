"""Decoding OTLP requests: hex ids in JSON (base64 tolerated), protobuf, and what is refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from lineage.errors import InvalidInput
from monitors.traces import decode_request, encode_response
from tests.monitors.traces.conftest import payload

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_hex_ids_are_read_as_hex_not_base64() -> None:
    document = payload("semconv")
    (resource,) = decode_request(_json(document), encoding="json")
    (span,) = resource.spans
    assert (span.trace_id, span.span_id, span.problem) == (TRACE, SPAN, None)
    assert resource.resource == {"service.name": "support-bot"}
    assert (span.kind, span.status, span.scope) == ("client", "ok", "fixture")
    # What the generic parser would have stored instead: 24 wrong bytes.
    parsed = json_format.ParseDict(document, ExportTraceServiceRequest())
    assert len(parsed.resource_spans[0].scope_spans[0].spans[0].trace_id) == 24


def test_base64_ids_from_old_exporters_are_tolerated() -> None:
    document = payload("semconv")
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"] = base64.b64encode(bytes.fromhex(TRACE)).decode()
    span["spanId"] = base64.b64encode(bytes.fromhex(SPAN)).decode()
    (resource,) = decode_request(_json(document), encoding="json")
    assert (resource.spans[0].trace_id, resource.spans[0].span_id) == (TRACE, SPAN)


def test_protobuf_and_json_decode_to_the_same_span() -> None:
    document = payload("openinference")
    request = ExportTraceServiceRequest()
    raw = json.loads(json.dumps(document))
    for span in raw["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["traceId"] = base64.b64encode(bytes.fromhex(span["traceId"])).decode()
        span["spanId"] = base64.b64encode(bytes.fromhex(span["spanId"])).decode()
    json_format.ParseDict(raw, request)
    from_protobuf = decode_request(request.SerializeToString(), encoding="protobuf")
    from_json = decode_request(_json(document), encoding="json")
    assert from_protobuf == from_json


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"traceId": "abc"}, "traceId 'abc' is neither 32 hex digits nor base64"),
        ({"traceId": "0" * 32}, "traceId is all zeros"),
        ({"spanId": None}, "spanId is missing"),
        ({"endTimeUnixNano": "1"}, "endTimeUnixNano is before startTimeUnixNano"),
        ({"startTimeUnixNano": "soon"}, "startTimeUnixNano 'soon' is not an integer"),
        ({"attributes": [{"key": "a", "value": "plain"}]}, "an attribute value must be"),
        ({"kind": "SPAN_KIND_SIDEWAYS"}, "is not one of the OTLP SPAN_KIND values"),
    ],
)
def test_a_bad_span_is_marked_not_fatal(change: dict[str, Any], problem: str) -> None:
    document = payload("semconv")
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    bad = {**spans[0], **change, "spanId": change.get("spanId", "1" * 16)}
    spans.append(bad)
    (resource,) = decode_request(_json(document), encoding="json")
    assert resource.spans[0].problem is None
    assert resource.spans[1].problem is not None
    assert problem in resource.spans[1].problem


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (b"\x0a\xff\xff\xff\xff\x0f", "protobuf", "not an OTLP ExportTraceServiceRequest"),
        (b"{not json", "json", "not valid JSON"),
        (b"[1, 2]", "json", "must be a JSON object"),
        (b'{"resourceSpans": {}}', "json", "resourceSpans must be a list"),
        (b'{"resourceSpans": [{"scopeSpans": 3}]}', "json", "scopeSpans must be a list"),
        (
            b'{"resourceSpans": [{"resource": {"attributes": [1]}}]}',
            "json",
            "resourceSpans.0.resource",
        ),
    ],
)
def test_a_body_that_is_no_request_is_refused(body: bytes, encoding: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode_request(body, encoding=encoding)


def test_the_response_reports_partial_success_in_each_encoding() -> None:
    raw = encode_response(rejected=2, message="2 span(s) rejected", encoding="protobuf")
    response = ExportTraceServiceResponse.FromString(raw)
    assert response.partial_success.rejected_spans == 2
    assert json.loads(encode_response(rejected=2, message="m", encoding="json")) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "m"}
    }
    assert encode_response(rejected=0, message="", encoding="json") == b"{}"
    assert encode_response(rejected=0, message="", encoding="protobuf") == b""
