"""`FetchWebhookSender`: the WebhookSender port in the Worker, on the runtime's `fetch()`.

Cloudflare's fetch() cannot reach private networks: a Worker's subrequests leave from
Cloudflare's edge, to the public internet only (docs/SECURITY.md#webhooks), so names are not
resolved and judged here as the local sender does. Redirects are not followed (`manual`), and
`AbortSignal.timeout` bounds each attempt.
"""

from typing import Any

from edge_worker.ports import PostResult


class FetchWebhookSender:
    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout_seconds: float
    ) -> PostResult:
        import js
        from pyodide.ffi import JsException, to_js

        options: Any = to_js(
            {
                "method": "POST",
                "headers": {**headers, "user-agent": "avatar-webhooks"},
                "body": body.decode(),
                "redirect": "manual",
                "signal": js.AbortSignal.timeout(int(timeout_seconds * 1000)),
            },
            dict_converter=js.Object.fromEntries,
        )
        try:
            response = await js.fetch(url, options)
        except JsException as exc:
            if getattr(exc, "name", "") == "TimeoutError" or "TimeoutError" in str(exc):
                return PostResult(None, f"no answer within {timeout_seconds:g} s")
            return PostResult(None, f"fetch failed: {exc}")
        return PostResult(int(response.status))
