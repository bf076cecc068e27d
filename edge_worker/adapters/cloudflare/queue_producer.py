"""`QueueProducer`: the JobQueue port on a Queues producer binding.

Messages go as `json`, so an HTTP pull consumer (the GPU agent) receives the body
base64-encoded with `metadata["CF-Content-Type"] == "json"` (docs/ARCHITECTURE.md, agent flow).
"""

from typing import Any

from contracts import QueueMessage


class QueueProducer:
    def __init__(self, queue: Any) -> None:
        self._queue = queue

    async def send(self, message: QueueMessage, delay_seconds: int = 0) -> None:
        options: dict[str, Any] = {"contentType": "json"}
        if delay_seconds > 0:
            options["delaySeconds"] = delay_seconds
        await self._queue.send(message.model_dump(mode="json"), **options)
