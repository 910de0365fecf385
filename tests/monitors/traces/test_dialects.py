"""The same model call in each dialect maps onto the same columns; each dialect's quirks."""

from __future__ import annotations

import json

import pytest

from monitors.traces import decode_request, is_content_key, map_attributes
from tests.monitors.traces.conftest import DIALECTS, payload

SYSTEM = "You are a helpful support assistant."
USER = "Where is my parcel?"
ANSWER = "It left the depot this morning."


def _fields(dialect: str) -> dict[str, object]:
    body = json.dumps(payload(dialect)).encode()
    (resource,) = decode_request(body, encoding="json")
    (span,) = resource.spans
    fields = map_attributes(span.attributes, events=span.events, start_ns=span.start_ns)
    return {
        "operation": fields.operation,
        "provider": fields.provider,
        "request_model": fields.request_model,
        "response_model": fields.response_model,
        "input_tokens": fields.input_tokens,
        "output_tokens": fields.output_tokens,
        "cache_read_tokens": fields.cache_read_tokens,
        "reasoning_tokens": fields.reasoning_tokens,
        "finish_reasons": fields.finish_reasons,
        "input_messages": fields.input_messages,
        "output_messages": fields.output_messages,
        "dialect": fields.dialect,
    }


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialect_yields_the_same_columns(dialect: str) -> None:
    fields = _fields(dialect)
    assert fields.pop("dialect") == {"mlflow_langfuse": "mlflow"}.get(dialect, dialect)
    assert fields == {
        "operation": "chat",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini",
        "input_tokens": 42,
        "output_tokens": 9,
        "cache_read_tokens": 16,
        "reasoning_tokens": 3,
        "finish_reasons": ["stop"],
        "input_messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": USER},
        ],
        "output_messages": [{"role": "assistant", "content": ANSWER}],
    }


def test_current_names_win_over_legacy_ones() -> None:
    fields = map_attributes(
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.system": "openai",
            "gen_ai.usage.input_tokens": 5,
            "gen_ai.usage.prompt_tokens": 7,
            "llm.token_count.prompt": 9,
        }
    )
    assert (fields.provider, fields.input_tokens, fields.dialect) == ("anthropic", 5, "semconv")


def test_legacy_message_events_become_messages() -> None:
    from monitors.traces import OtlpEvent

    fields = map_attributes(
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"},
        events=[
            OtlpEvent("gen_ai.user.message", 1, {"content": "hi"}),
            OtlpEvent("gen_ai.choice", 2, {"message": json.dumps({"content": "hello"})}),
        ],
    )
    assert fields.input_messages == [{"role": "user", "content": "hi"}]
    assert fields.output_messages == [{"role": "assistant", "content": "hello"}]


def test_tool_calls_are_kept_in_every_dialect() -> None:
    semconv = map_attributes(
        {
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "tool_call",
                                "id": "c1",
                                "name": "track",
                                "arguments": {"parcel": "X1"},
                            }
                        ],
                    }
                ]
            )
        }
    )
    openinference = map_attributes(
        {
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "track",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": json.dumps(
                {"parcel": "X1"}
            ),
        }
    )
    expected = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "name": "track", "arguments": {"parcel": "X1"}}],
        }
    ]
    assert semconv.output_messages == expected
    assert openinference.output_messages == expected


def test_ingested_costs_and_time_to_first_token_are_read() -> None:
    start = 1_765_000_000_000_000_000
    langfuse = map_attributes(
        {
            "langfuse.observation.cost_details": json.dumps({"total": 0.0000125}),
            "langfuse.observation.completion_start_time": json.dumps("2025-12-06T05:46:40.250000Z"),
        },
        start_ns=start,
    )
    assert langfuse.cost_nano_usd == 12_500
    assert langfuse.ttft_ms == pytest.approx(250.0)
    semconv = map_attributes({"gen_ai.response.time_to_first_chunk": 0.125})
    assert semconv.ttft_ms == pytest.approx(125.0)
    assert map_attributes({"llm.cost.total": 0.002}).cost_nano_usd == 2_000_000


def test_values_of_the_wrong_type_are_ignored_not_guessed() -> None:
    fields = map_attributes(
        {"gen_ai.usage.input_tokens": "many", "gen_ai.usage.prompt_tokens": 11, "gen_ai.system": 3}
    )
    assert fields.input_tokens == 11
    assert fields.provider == "3"
    assert map_attributes({"gen_ai.usage.output_tokens": -4}).output_tokens is None
    assert map_attributes({"gen_ai.usage.output_tokens": True}).output_tokens is None


def test_content_keys_are_told_apart_from_metrics() -> None:
    assert is_content_key("gen_ai.input.messages")
    assert is_content_key("llm.input_messages.3.message.content")
    assert is_content_key("mlflow.spanOutputs")
    assert not is_content_key("gen_ai.usage.input_tokens")
    assert not is_content_key("llm.model_name")
