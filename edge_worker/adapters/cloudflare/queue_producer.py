"""`QueueProducer`: the JobQueue and WebhookQueue ports on a Queues producer binding.

Messages go as `json`, so an HTTP pull consumer (the GPU agent) receives the body
base64-encoded with `metadata["CF-Content-Type"] == "json"` (docs/ARCHITECTURE.md, agent flow),
and the Worker's own consumer (webhooks) the object itself. Queues delay in whole seconds.
"""

import math
from typing import Any

from pydantic import BaseModel


class QueueProducer:
    def __init__(self, queue: Any) -> None:
        self._queue = queue

    async def send(self, message: BaseModel, delay_seconds: float = 0) -> None:
        options: dict[str, Any] = {"contentType": "json"}
        if delay_seconds > 0:
            options["delaySeconds"] = math.ceil(delay_seconds)
        await self._queue.send(message.model_dump(mode="json"), **options)
