"""`HttpxPodProvider`: the PodProvider port for the local runtime, on httpx."""

import httpx

from edge_worker.adapters.runpod_rest import RunPodApi
from edge_worker.ports import PodApiError


class HttpxPodProvider(RunPodApi):
    async def send(self, method: str, url: str, body: str | None, what: str) -> tuple[int, str]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds) as http:
                response = await http.request(method, url, content=body, headers=self.headers)
        except httpx.HTTPError as exc:
            raise PodApiError(f"{what}: {type(exc).__name__}: {exc}") from exc
        return response.status_code, response.text
