"""The demo's banking-support assistant: an LLM application as a team would write it.

It fetches the live prompt from Warden with ``warden-client``'s :class:`PromptClient` (an ETag
``304`` on every call after the first, until a promotion or rollback changes the version),
calls an OpenAI-compatible chat-completions endpoint, and traces each call with the stock
OpenTelemetry SDK — GenAI semantic-convention attributes, the prompt version's
``warden.prompt.*`` attributes — exported over OTLP/HTTP to Warden's ``/v1/traces`` with the
application's own API key. Warden sees only what any application would send it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = ["SupportAssistant"]

_PROMPT = "support"


class SupportAssistant:
    """Answer customer questions with the live prompt; trace every call to Warden over OTLP."""

    def __init__(
        self,
        *,
        warden_url: str,
        project: str,
        deployment: str,
        api_key: str,
        llm_base_url: str,
        llm_api_key: str | None,
    ) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from warden_client import PromptClient

        resource = Resource.create(
            {
                "service.name": deployment,
                "warden.project": project,
                "deployment.environment.name": "production",
            }
        )
        self.provider = TracerProvider(resource=resource)
        exporter = OTLPSpanExporter(
            endpoint=f"{warden_url}/v1/traces",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=60,
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(exporter, max_export_batch_size=256, schedule_delay_millis=500)
        )
        self.tracer = self.provider.get_tracer("warden-demo.support-assistant")
        self.prompts = PromptClient(warden_url, project, api_key=api_key, timeout=30)
        headers = {"Authorization": f"Bearer {llm_api_key}"} if llm_api_key else {}
        self.llm = httpx.Client(base_url=llm_base_url.rstrip("/"), headers=headers, timeout=120)
        self.versions: dict[str, int] = {}
        """How many questions each prompt version answered."""

    def answer(self, question: str) -> str:
        """Answer one question with the prompt live now; the call is traced."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        prompt = self.prompts.get(_PROMPT)
        rendered = prompt.render(question=question)
        messages = (
            rendered if isinstance(rendered, list) else [{"role": "user", "content": rendered}]
        )
        config = prompt.model
        model = str(config.get("name"))
        body: dict[str, Any] = {"model": model, "messages": messages}
        for option in ("temperature", "max_tokens"):
            if config.get(option) is not None:
                body[option] = config[option]
        self.versions[prompt.version] = self.versions.get(prompt.version, 0) + 1
        with self.tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": str(config.get("provider")),
                    "gen_ai.request.model": model,
                    "gen_ai.input.messages": json.dumps(
                        [
                            {
                                "role": m["role"],
                                "parts": [{"type": "text", "content": m["content"]}],
                            }
                            for m in messages
                        ]
                    ),
                    **prompt.span_attributes(),
                }
            )
            reply = self.llm.post("/chat/completions", json=body)
            if reply.status_code != 200:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {reply.status_code}"))
                span.set_attribute("error.type", str(reply.status_code))
                return ""
            data = reply.json()
            choice = data["choices"][0]
            text = str(choice["message"].get("content") or "")
            usage = data.get("usage") or {}
            finish = str(choice.get("finish_reason") or "stop")
            span.set_attributes(
                {
                    "gen_ai.response.model": str(data.get("model") or model),
                    "gen_ai.response.finish_reasons": [finish],
                    "gen_ai.usage.input_tokens": int(usage.get("prompt_tokens") or 0),
                    "gen_ai.usage.output_tokens": int(usage.get("completion_tokens") or 0),
                    "gen_ai.output.messages": json.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [{"type": "text", "content": text}],
                                "finish_reason": finish,
                            }
                        ]
                    ),
                }
            )
        return text

    def flush(self) -> bool:
        """Export every span ended so far; say whether the exporter finished in time."""
        return bool(self.provider.force_flush(60_000))

    def close(self) -> None:
        """Flush and stop the tracer, close the HTTP clients."""
        self.provider.shutdown()
        self.prompts.close()
        self.llm.close()
