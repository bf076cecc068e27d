"""`HttpxWebhookSender`: the WebhookSender port for the local runtime, on httpx.

The URL's host is resolved here, each address judged by the SSRF rule, and the request made
to the address that was judged (Host header and TLS server name kept), so a name that
resolves to a public address when checked cannot switch to a private one for the connection
(DNS rebinding). `allow_private` (WEBHOOK_ALLOW_PRIVATE) skips the judgement, not the pinning.
"""

import asyncio
import socket
from urllib.parse import urlsplit, urlunsplit

import httpx

from edge_worker.domain.webhook_targets import forbidden_addresses
from edge_worker.ports import PostResult

DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpxWebhookSender:
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout_seconds: float
    ) -> PostResult:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                timeout_seconds,
            )
        except (OSError, TimeoutError) as exc:
            return PostResult(None, f"cannot resolve {host}: {exc or 'timed out'}")
        addresses = [str(info[4][0]) for info in infos]
        refused = [] if self.allow_private else forbidden_addresses(addresses)
        if refused:
            return PostResult(None, f"refused: {host} resolves to non-public {refused[0]}")
        pinned = addresses[0]
        netloc = f"[{pinned}]:{port}" if ":" in pinned else f"{pinned}:{port}"
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = parts.netloc.rpartition("@")[2]
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        auth = _basic_auth(parts.username, parts.password)
        try:
            async with httpx.AsyncClient(
                timeout=timeout_seconds, follow_redirects=False, auth=auth
            ) as http:
                response = await http.post(
                    target,
                    content=body,
                    headers={**headers, "host": host_header, "user-agent": "avatar-webhooks"},
                    extensions=extensions,
                )
        except httpx.TimeoutException:
            return PostResult(None, f"no answer within {timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return PostResult(None, f"{type(exc).__name__}: {exc}")
        return PostResult(response.status_code)


def _basic_auth(username: str | None, password: str | None) -> httpx.BasicAuth | None:
    """Credentials in the URL (`https://user:pass@host/`) go as HTTP Basic auth."""
    if username is None:
        return None
    return httpx.BasicAuth(username, password or "")
