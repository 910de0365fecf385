"""Map the three attribute dialects of LLM spans onto one set of typed columns (table-driven).

Applications describe the same model call in different words: the OpenTelemetry GenAI semantic
conventions (current names, and the pre-1.37 ones that instrumentations on older versions still
emit), OpenInference (Arize Phoenix's ``llm.*``), and the extras MLflow and Langfuse write. Each
field of :class:`GenAiFields` has an ordered list of sources in :data:`FIELD_SOURCES`; the first
source present wins, in the order ``warden.*`` > semconv > semconv legacy > OpenInference >
MLflow > Langfuse. Adding a name an exporter uses is one line in that table.

Message content (prompts, completions, tool arguments) is read into normalised messages
``{"role", "content"[, "tool_calls"]}`` with system instructions folded in as a ``system``
message, so one call yields identical messages whatever the dialect; the attributes that carry
content are named by :func:`is_content_key` so they are kept out of the span's attribute bag.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from monitors.traces.otlp import Attributes, OtlpEvent

__all__ = [
    "FIELD_SOURCES",
    "Dialect",
    "GenAiFields",
    "Message",
    "Source",
    "is_content_key",
    "is_message_key",
    "map_attributes",
]

Dialect = Literal["warden", "semconv", "semconv_legacy", "openinference", "mlflow", "langfuse"]
Message = dict[str, Any]
"""A normalised message: ``role``, ``content`` (text) and, for tool calls, ``tool_calls``."""

_NANO = 1_000_000_000


@dataclass(slots=True)
class GenAiFields:
    """What a span says about a model call, whichever dialect it said it in."""

    operation: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    ttft_ms: float | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    cost_nano_usd: int | None = None
    error_type: str | None = None
    input_messages: list[Message] = field(default_factory=list)
    output_messages: list[Message] = field(default_factory=list)
    dialect: str | None = None


@dataclass(frozen=True, slots=True)
class _Span:
    """What a source reads: the attributes, the events and the start time."""

    attributes: Attributes
    events: Sequence[OtlpEvent]
    start_ns: int


@dataclass(frozen=True, slots=True)
class Source:
    """One place a field can come from, in one dialect.

    ``needs`` names the attribute the source reads, when it reads one: a span without it is
    skipped without calling ``read`` (most spans carry few of the names in the table).
    """

    dialect: Dialect
    read: Callable[[_Span], Any]
    needs: str | None = None


# --- readers ---------------------------------------------------------------------------------


def _decoded(value: Any) -> Any:
    """Return JSON-encoded attribute text (MLflow and Langfuse write JSON) decoded."""
    if isinstance(value, str) and value[:1] in ('"', "{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _key(name: str) -> Callable[[_Span], Any]:
    return lambda span: _decoded(span.attributes.get(name))


def _path(name: str, *path: str) -> Callable[[_Span], Any]:
    """Read ``path`` inside a JSON (or map) attribute, e.g. ``mlflow.chat.tokenUsage``."""

    def read(span: _Span) -> Any:
        node = _decoded(span.attributes.get(name))
        for step in path:
            if not isinstance(node, dict):
                return None
            node = _decoded(node.get(step))
        return node

    return read


def _first_linked_prompt(part: str) -> Callable[[_Span], Any]:
    def read(span: _Span) -> Any:
        linked = _decoded(span.attributes.get("mlflow.linkedPrompts"))
        if isinstance(linked, list) and linked and isinstance(linked[0], Mapping):
            return linked[0].get(part)
        return None

    return read


def _mapped(read: Callable[[_Span], Any], table: Mapping[str, str]) -> Callable[[_Span], Any]:
    def mapped(span: _Span) -> Any:
        value = read(span)
        if not isinstance(value, str):
            return None
        return table.get(value.upper(), value.lower())

    return mapped


def _seconds_to_ms(read: Callable[[_Span], Any]) -> Callable[[_Span], Any]:
    def convert(span: _Span) -> Any:
        value = read(span)
        return value * 1000.0 if isinstance(value, int | float) else None

    return convert


def _langfuse_ttft(span: _Span) -> float | None:
    value = _decoded(span.attributes.get("langfuse.observation.completion_start_time"))
    if not isinstance(value, str):
        return None
    try:
        first = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    first_ns = int(first.timestamp() * _NANO)
    return max(0.0, (first_ns - span.start_ns) / 1_000_000)


def _indexed(attributes: Attributes, prefix: str) -> dict[int, dict[str, Any]]:
    """Group flattened ``prefix.N.rest`` keys by ``N`` (OpenInference and OpenLLMetry style)."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            groups.setdefault(int(index), {})[rest] = value
    return groups


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI-style content parts
        return "\n".join(
            str(part.get("text") or part.get("content") or "")
            if isinstance(part, Mapping)
            else str(part)
            for part in content
        )
    return json.dumps(content, sort_keys=True)


def _arguments(value: Any) -> Any:
    decoded = _decoded(value)
    return decoded if decoded is not None else {}


def _message(role: Any, content: Any, tool_calls: list[dict[str, Any]] | None = None) -> Message:
    message: Message = {"role": str(role or "user"), "content": _text(content)}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"id": str(call_id or ""), "name": str(name or ""), "arguments": _arguments(arguments)}


def _semconv_message(item: Any) -> Message | None:
    """Read one semconv message: ``{role, parts: [{type: text|tool_call|…}]}``."""
    if not isinstance(item, Mapping):
        return None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in item.get("parts") or []:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "tool_call":
            calls.append(_tool_call(part.get("id"), part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":
            texts.append(_text(part.get("response") if "response" in part else part.get("result")))
        else:
            texts.append(_text(part.get("content")))
    if not item.get("parts") and "content" in item:
        texts.append(_text(item.get("content")))
    return _message(item.get("role"), "\n".join(texts), calls)


def _semconv_messages(name: str, *, system: bool) -> Callable[[_Span], Any]:
    def read(span: _Span) -> list[Message] | None:
        items = _decoded(span.attributes.get(name))
        if not isinstance(items, list):
            return None
        messages = [m for m in (_semconv_message(item) for item in items) if m is not None]
        instructions = _decoded(span.attributes.get("gen_ai.system_instructions"))
        if system and isinstance(instructions, list | str):
            parts = instructions if isinstance(instructions, list) else [instructions]
            text = "\n".join(
                _text(p.get("content")) if isinstance(p, Mapping) else _text(p) for p in parts
            )
            messages.insert(0, _message("system", text))
        return messages

    return read


def _legacy_indexed(prefix: str) -> Callable[[_Span], Any]:
    """OpenLLMetry: ``gen_ai.prompt.0.role`` / ``gen_ai.prompt.0.content``."""

    def read(span: _Span) -> list[Message] | None:
        groups = _indexed(span.attributes, prefix)
        if not groups:
            return None
        messages = []
        for index in sorted(groups):
            group = groups[index]
            calls = [
                _tool_call(call.get("id"), call.get("name"), call.get("arguments"))
                for _, call in sorted(_indexed(group, "tool_calls.").items())
            ]
            messages.append(_message(group.get("role"), group.get("content"), calls))
        return messages

    return read


_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def _legacy_events(*, output: bool) -> Callable[[_Span], Any]:
    """The deprecated per-message events (``gen_ai.user.message``, ``gen_ai.choice``)."""

    def read(span: _Span) -> list[Message] | None:
        messages: list[Message] = []
        for event in span.events:
            if output and event.name == "gen_ai.choice":
                body = _decoded(event.attributes.get("message"))
                if isinstance(body, Mapping):
                    messages.append(_message(body.get("role") or "assistant", body.get("content")))
                else:
                    messages.append(_message("assistant", event.attributes.get("content")))
            elif not output and event.name in _EVENT_ROLES:
                role = event.attributes.get("role") or _EVENT_ROLES[event.name]
                messages.append(_message(role, event.attributes.get("content")))
        return messages or None

    return read


def _legacy_single(name: str, role: str) -> Callable[[_Span], Any]:
    """``gen_ai.prompt`` / ``gen_ai.completion`` as one JSON list or one text."""

    def read(span: _Span) -> list[Message] | None:
        value = _decoded(span.attributes.get(name))
        if isinstance(value, list):
            return [
                _message(item.get("role") or role, item.get("content"))
                for item in value
                if isinstance(item, Mapping)
            ]
        if isinstance(value, str):
            return [_message(role, value)]
        return None

    return read


def _openinference_messages(prefix: str) -> Callable[[_Span], Any]:
    """OpenInference: ``llm.input_messages.0.message.role`` / ``….message.content``."""

    def read(span: _Span) -> list[Message] | None:
        groups = _indexed(span.attributes, prefix)
        if not groups:
            return None
        messages = []
        for index in sorted(groups):
            group = groups[index]
            content = group.get("message.content")
            if content is None:
                parts = _indexed(group, "message.contents.")
                content = "\n".join(
                    str(part.get("message_content.text") or "") for _, part in sorted(parts.items())
                )
            calls = [
                _tool_call(
                    call.get("tool_call.id"),
                    call.get("tool_call.function.name"),
                    call.get("tool_call.function.arguments"),
                )
                for _, call in sorted(_indexed(group, "message.tool_calls.").items())
            ]
            messages.append(_message(group.get("message.role"), content, calls))
        return messages

    return read


def _chat_messages(items: Any) -> list[Message] | None:
    """Read an OpenAI-style message list (MLflow inputs, Langfuse input)."""
    if isinstance(items, Mapping) and "role" in items:
        items = [items]
    if not isinstance(items, list):
        return None
    messages = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        calls = [
            _tool_call(
                call.get("id"),
                (call.get("function") or {}).get("name"),
                (call.get("function") or {}).get("arguments"),
            )
            for call in item.get("tool_calls") or []
            if isinstance(call, Mapping)
        ]
        messages.append(_message(item.get("role"), item.get("content"), calls))
    return messages


def _mlflow_inputs(span: _Span) -> list[Message] | None:
    inputs = _decoded(span.attributes.get("mlflow.spanInputs"))
    if isinstance(inputs, Mapping):
        return _chat_messages(inputs.get("messages"))
    return _chat_messages(inputs)


def _choices(outputs: Any) -> list[Mapping[str, Any]]:
    if isinstance(outputs, dict) and isinstance(outputs.get("choices"), list):
        return [c for c in outputs["choices"] if isinstance(c, dict)]
    return []


def _mlflow_outputs(span: _Span) -> list[Message] | None:
    outputs = _decoded(span.attributes.get("mlflow.spanOutputs"))
    choices = _choices(outputs)
    if choices:
        return _chat_messages([c.get("message") for c in choices if c.get("message")])
    if isinstance(outputs, str):
        return [_message("assistant", outputs)]
    return _chat_messages(outputs)


def _mlflow_finish_reasons(span: _Span) -> list[str] | None:
    outputs = _decoded(span.attributes.get("mlflow.spanOutputs"))
    reasons = [str(c["finish_reason"]) for c in _choices(outputs) if c.get("finish_reason")]
    return reasons or None


def _openinference_finish_reasons(span: _Span) -> list[str] | None:
    groups = _indexed(span.attributes, "llm.output_messages.")
    reasons = [
        str(group["message.finish_reason"])
        for _, group in sorted(groups.items())
        if group.get("message.finish_reason")
    ]
    return reasons or None


def _langfuse_messages(name: str) -> Callable[[_Span], Any]:
    def read(span: _Span) -> list[Message] | None:
        value = _decoded(span.attributes.get(name))
        if isinstance(value, Mapping) and "messages" in value:
            value = value["messages"]
        if isinstance(value, str):
            role = "assistant" if name.endswith("output") else "user"
            return [_message(role, value)]
        return _chat_messages(value)

    return read


def _usd_to_nano(read: Callable[[_Span], Any]) -> Callable[[_Span], Any]:
    def convert(span: _Span) -> Any:
        value = read(span)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return None
        return round(value * _NANO)

    return convert


# --- the table -------------------------------------------------------------------------------

_OPENINFERENCE_KINDS = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "RETRIEVER": "retrieval",
    "RERANKER": "rerank",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluate",
}
_MLFLOW_TYPES = {
    "CHAT_MODEL": "chat",
    "LLM": "text_completion",
    "EMBEDDING": "embeddings",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "RETRIEVER": "retrieval",
    "RERANKER": "rerank",
}
_LANGFUSE_TYPES = {
    "GENERATION": "chat",
    "EMBEDDING": "embeddings",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "RETRIEVER": "retrieval",
    "EVALUATOR": "evaluate",
    "GUARDRAIL": "guardrail",
}


def _s(dialect: Dialect, read: Callable[[_Span], Any], needs: str | None = None) -> Source:
    return Source(dialect, read, needs)


def _k(dialect: Dialect, name: str) -> Source:
    return Source(dialect, _key(name), name)


_MODEL_TAIL = (
    _k("openinference", "llm.model_name"),
    _k("mlflow", "mlflow.llm.model"),
    _k("langfuse", "langfuse.observation.model.name"),
)

FIELD_SOURCES: Mapping[str, tuple[Source, ...]] = {
    "operation": (
        _k("semconv", "gen_ai.operation.name"),
        _s(
            "openinference",
            _mapped(_key("openinference.span.kind"), _OPENINFERENCE_KINDS),
            "openinference.span.kind",
        ),
        _s("mlflow", _mapped(_key("mlflow.spanType"), _MLFLOW_TYPES), "mlflow.spanType"),
        _s(
            "langfuse",
            _mapped(_key("langfuse.observation.type"), _LANGFUSE_TYPES),
            "langfuse.observation.type",
        ),
    ),
    "provider": (
        _k("semconv", "gen_ai.provider.name"),
        _k("semconv_legacy", "gen_ai.system"),
        _k("openinference", "llm.provider"),
        _k("openinference", "llm.system"),
        _k("mlflow", "mlflow.llm.provider"),
        _k("langfuse", "langfuse.observation.model.provider"),
    ),
    "request_model": (_k("semconv", "gen_ai.request.model"), *_MODEL_TAIL),
    "response_model": (_k("semconv", "gen_ai.response.model"), *_MODEL_TAIL),
    "finish_reasons": (
        _k("semconv", "gen_ai.response.finish_reasons"),
        _s("openinference", _openinference_finish_reasons),
        _s("mlflow", _mlflow_finish_reasons, "mlflow.spanOutputs"),
    ),
    "input_tokens": (
        _k("semconv", "gen_ai.usage.input_tokens"),
        _k("semconv_legacy", "gen_ai.usage.prompt_tokens"),
        _k("openinference", "llm.token_count.prompt"),
        _s("mlflow", _path("mlflow.chat.tokenUsage", "input_tokens"), "mlflow.chat.tokenUsage"),
        _s(
            "langfuse",
            _path("langfuse.observation.usage_details", "input"),
            "langfuse.observation.usage_details",
        ),
    ),
    "output_tokens": (
        _k("semconv", "gen_ai.usage.output_tokens"),
        _k("semconv_legacy", "gen_ai.usage.completion_tokens"),
        _k("openinference", "llm.token_count.completion"),
        _s("mlflow", _path("mlflow.chat.tokenUsage", "output_tokens"), "mlflow.chat.tokenUsage"),
        _s(
            "langfuse",
            _path("langfuse.observation.usage_details", "output"),
            "langfuse.observation.usage_details",
        ),
    ),
    "cache_read_tokens": (
        _k("semconv", "gen_ai.usage.cache_read.input_tokens"),
        _k("semconv_legacy", "gen_ai.usage.cache_read_input_tokens"),
        _k("openinference", "llm.token_count.prompt_details.cache_read"),
        _s(
            "mlflow",
            _path("mlflow.chat.tokenUsage", "cache_read_input_tokens"),
            "mlflow.chat.tokenUsage",
        ),
        _s(
            "langfuse",
            _path("langfuse.observation.usage_details", "cache_read_input_tokens"),
            "langfuse.observation.usage_details",
        ),
    ),
    "cache_creation_tokens": (
        _k("semconv", "gen_ai.usage.cache_creation.input_tokens"),
        _k("semconv_legacy", "gen_ai.usage.cache_creation_input_tokens"),
        _k("openinference", "llm.token_count.prompt_details.cache_write"),
        _s(
            "mlflow",
            _path("mlflow.chat.tokenUsage", "cache_creation_input_tokens"),
            "mlflow.chat.tokenUsage",
        ),
        _s(
            "langfuse",
            _path("langfuse.observation.usage_details", "cache_creation_input_tokens"),
            "langfuse.observation.usage_details",
        ),
    ),
    "reasoning_tokens": (
        _k("semconv", "gen_ai.usage.reasoning.output_tokens"),
        _k("semconv_legacy", "gen_ai.usage.reasoning_tokens"),
        _k("openinference", "llm.token_count.completion_details.reasoning"),
        _s(
            "langfuse",
            _path("langfuse.observation.usage_details", "reasoning_tokens"),
            "langfuse.observation.usage_details",
        ),
    ),
    "ttft_ms": (
        _s(
            "semconv",
            _seconds_to_ms(_key("gen_ai.response.time_to_first_chunk")),
            "gen_ai.response.time_to_first_chunk",
        ),
        _s("langfuse", _langfuse_ttft, "langfuse.observation.completion_start_time"),
    ),
    "prompt_name": (
        _k("warden", "warden.prompt.name"),
        _k("openinference", "llm.prompt_template.name"),
        _s("mlflow", _first_linked_prompt("name"), "mlflow.linkedPrompts"),
        _k("langfuse", "langfuse.observation.prompt.name"),
    ),
    "prompt_version": (
        _k("warden", "warden.prompt.version"),
        _k("openinference", "llm.prompt_template.version"),
        _s("mlflow", _first_linked_prompt("version"), "mlflow.linkedPrompts"),
        _k("langfuse", "langfuse.observation.prompt.version"),
    ),
    "session_id": (
        _k("semconv", "gen_ai.conversation.id"),
        _k("openinference", "session.id"),
        _k("mlflow", "mlflow.trace.session"),
        _k("langfuse", "langfuse.session.id"),
    ),
    "user_id": (
        _k("semconv", "user.id"),
        _k("semconv_legacy", "enduser.id"),
        _k("mlflow", "mlflow.trace.user"),
        _k("langfuse", "langfuse.user.id"),
    ),
    "cost_nano_usd": (
        _s("semconv", _usd_to_nano(_key("gen_ai.usage.cost")), "gen_ai.usage.cost"),
        _s("openinference", _usd_to_nano(_key("llm.cost.total")), "llm.cost.total"),
        _s("mlflow", _usd_to_nano(_path("mlflow.llm.cost", "total_cost")), "mlflow.llm.cost"),
        _s(
            "langfuse",
            _usd_to_nano(_path("langfuse.observation.cost_details", "total")),
            "langfuse.observation.cost_details",
        ),
    ),
    "error_type": (_k("semconv", "error.type"),),
    "input_messages": (
        _s(
            "semconv",
            _semconv_messages("gen_ai.input.messages", system=True),
            "gen_ai.input.messages",
        ),
        _s("semconv_legacy", _legacy_indexed("gen_ai.prompt.")),
        _s("semconv_legacy", _legacy_single("gen_ai.prompt", "user"), "gen_ai.prompt"),
        _s("semconv_legacy", _legacy_events(output=False)),
        _s("openinference", _openinference_messages("llm.input_messages.")),
        _s("mlflow", _mlflow_inputs, "mlflow.spanInputs"),
        _s(
            "langfuse",
            _langfuse_messages("langfuse.observation.input"),
            "langfuse.observation.input",
        ),
    ),
    "output_messages": (
        _s(
            "semconv",
            _semconv_messages("gen_ai.output.messages", system=False),
            "gen_ai.output.messages",
        ),
        _s("semconv_legacy", _legacy_indexed("gen_ai.completion.")),
        _s(
            "semconv_legacy",
            _legacy_single("gen_ai.completion", "assistant"),
            "gen_ai.completion",
        ),
        _s("semconv_legacy", _legacy_events(output=True)),
        _s("openinference", _openinference_messages("llm.output_messages.")),
        _s("mlflow", _mlflow_outputs, "mlflow.spanOutputs"),
        _s(
            "langfuse",
            _langfuse_messages("langfuse.observation.output"),
            "langfuse.observation.output",
        ),
    ),
}
"""Field → its sources, best first. The first source that yields a usable value wins."""

_INTEGERS = frozenset(
    {
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "reasoning_tokens",
        "cost_nano_usd",
    }
)
_TEXTS = frozenset(
    {
        "operation",
        "provider",
        "request_model",
        "response_model",
        "prompt_name",
        "prompt_version",
        "session_id",
        "user_id",
        "error_type",
    }
)
_LOWERCASE = frozenset({"operation", "provider"})


def _usable(name: str, value: Any) -> Any:
    """Return ``value`` coerced to the field's type, or ``None`` when it cannot be."""
    if value is None:
        return None
    if name in _INTEGERS:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value if 0 <= value < 2**63 else None
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return None
    if name in _TEXTS:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        text = str(value).strip()
        if not text:
            return None
        return text.lower() if name in _LOWERCASE else text
    if name == "finish_reasons":
        items = value if isinstance(value, list) else [value]
        reasons = [str(item) for item in items if isinstance(item, str | int) and str(item)]
        return reasons or None
    if name == "ttft_ms":
        return float(value) if isinstance(value, int | float) and value >= 0 else None
    if name in ("input_messages", "output_messages"):
        return value if isinstance(value, list) and value else None
    return value


def map_attributes(
    attributes: Attributes, *, events: Sequence[OtlpEvent] = (), start_ns: int = 0
) -> GenAiFields:
    """Read the typed fields of one span from its attributes and events, in any dialect."""
    span = _Span(attributes, events, start_ns)
    fields = GenAiFields()
    used: Counter[Dialect] = Counter()
    for name, sources in FIELD_SOURCES.items():
        for source in sources:
            if source.needs is not None and source.needs not in attributes:
                continue
            value = _usable(name, source.read(span))
            if value is not None:
                setattr(fields, name, value)
                if source.dialect != "warden":
                    used[source.dialect] += 1
                break
    if used:
        order = list(_DIALECT_ORDER)
        fields.dialect = max(used, key=lambda d: (used[d], -order.index(d)))
    return fields


_DIALECT_ORDER: tuple[Dialect, ...] = (
    "semconv",
    "semconv_legacy",
    "openinference",
    "mlflow",
    "langfuse",
)

_CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "input.value",
        "output.value",
        "llm.prompt_template.template",
        "llm.prompt_template.variables",
        "llm.tools",
        "tool.parameters",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
        "langfuse.observation.input",
        "langfuse.observation.output",
        "langfuse.trace.input",
        "langfuse.trace.output",
        "content",
        "message",
    }
)
_CONTENT_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.tools.",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "embedding.embeddings.",
)


def is_content_key(key: str) -> bool:
    """Say whether an attribute carries message content (kept apart from the span's metrics)."""
    return key in _CONTENT_KEYS or key.startswith(_CONTENT_PREFIXES)


_MESSAGE_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "input.value",
        "output.value",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
        "langfuse.observation.input",
        "langfuse.observation.output",
        "content",
        "message",
        # Who and which conversation: promoted to the span's columns, not kept twice.
        "user.id",
        "enduser.id",
        "session.id",
        "gen_ai.conversation.id",
        "mlflow.trace.user",
        "mlflow.trace.session",
        "langfuse.user.id",
        "langfuse.session.id",
    }
)
_MESSAGE_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
)


def is_message_key(key: str) -> bool:
    """Say whether an attribute is read into the normalised messages (or the user/session).

    Such attributes are not stored a second time once their content has been read.
    """
    return key in _MESSAGE_KEYS or key.startswith(_MESSAGE_PREFIXES)
