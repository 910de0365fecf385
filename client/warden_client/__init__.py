"""Log a serving model's inferences and labels to Warden, batched, bounded, retried and spooled.

``WardenClient`` (a background thread) and ``AsyncWardenClient`` (an asyncio task) queue records
in bounded memory, send them in batches, retry with backoff while Warden is down and keep what
cannot be sent in an on-disk spool that the next client re-sends. ``monitored`` wraps a
scikit-learn-style model; ``WardenMiddleware`` logs what an ASGI app answered; ``PromptClient``
fetches the live prompt (cached by ETag) and renders it. Depends on httpx.
"""

from warden_client._async import AsyncWardenClient
from warden_client._middleware import WardenMiddleware
from warden_client._model import InferenceLog, MonitoredModel, monitored
from warden_client._pipeline import Stats
from warden_client._prompts import Prompt, PromptClient
from warden_client._records import new_request_id
from warden_client._sync import WardenClient

__all__ = [
    "AsyncWardenClient",
    "InferenceLog",
    "MonitoredModel",
    "Prompt",
    "PromptClient",
    "Stats",
    "WardenClient",
    "WardenMiddleware",
    "monitored",
    "new_request_id",
]
__version__ = "0.1.0"
