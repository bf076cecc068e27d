"""`FetchPodProvider`: the PodProvider port in the Worker, on the runtime's `fetch()`.
`AbortSignal.timeout` bounds each call, as for webhooks; a call that gets no answer raises
`PodApiError` with no status, like the local adapter."""

from typing import Any

from edge_worker.adapters.runpod_rest import RunPodApi
from edge_worker.ports import PodApiError


class FetchPodProvider(RunPodApi):
    async def send(self, method: str, url: str, body: str | None, what: str) -> tuple[int, str]:
        import js
        from pyodide.ffi import JsException, to_js

        init: dict[str, Any] = {
            "method": method,
            "headers": self.headers,
            "signal": js.AbortSignal.timeout(int(self.timeout_seconds * 1000)),
        }
        if body is not None:
            init["body"] = body
        options: Any = to_js(init, dict_converter=js.Object.fromEntries)
        try:
            response = await js.fetch(url, options)
            text = str(await response.text())
        except JsException as exc:
            raise PodApiError(f"{what}: fetch failed: {exc}") from exc
        return int(response.status), text
