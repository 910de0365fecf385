"""A small run of the OTLP ingest benchmark: both servers store every span; figures come out."""

from __future__ import annotations

import json

import pytest

from bench.otlp_ingest import main, make_bodies
from monitors.traces import decode_request

pytestmark = pytest.mark.slow


def test_small_benchmark_run_stores_every_span_in_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--spans", "40", "--batch", "20", "--repeat", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in (
        "warden_protobuf_spans_per_s", "warden_json_spans_per_s",
        "mlflow_protobuf_spans_per_s", "mlflow_json_spans_per_s",
        "ratio_protobuf", "ratio_json",
    ):  # fmt: skip
        assert figures[key] > 0, key
    assert figures["sent_spans_each"] == 2 * (40 + 40)
    assert figures["warden_stored_spans"] == figures["sent_spans_each"]
    assert figures["mlflow_stored_spans"] == figures["sent_spans_each"]


def test_both_encodings_carry_the_same_spans() -> None:
    (protobuf,) = make_bodies(8, 8, "protobuf")
    (document,) = make_bodies(8, 8, "json")
    spans = [
        decode_request(protobuf, encoding="protobuf")[0].spans,
        decode_request(document, encoding="json")[0].spans,
    ]
    for decoded in spans:
        assert len(decoded) == 8
        assert all(span.problem is None for span in decoded)
        assert [span.name for span in decoded][:4] == [
            "invoke_agent support",
            "chat gpt-4o-mini",
            "execute_tool track_parcel",
            "chat gpt-4o-mini",
        ]
        assert len({span.trace_id for span in decoded}) == 2
