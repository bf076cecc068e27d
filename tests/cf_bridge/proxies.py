"""Python stand-ins for `env.DB`, `env.BUCKET` and `env.JOBS` that call the real local
bindings through the bridge Worker, so the Cloudflare adapters run unmodified.

They copy the shapes the Worker sees through workers-runtime-sdk's binding wrapper (the
compatibility date in wrangler.toml makes that the runtime's behaviour): keyword arguments
become the options object, plain results are dicts, an `R2Object` has attributes, an
`arrayBuffer()` is a memoryview, and an error from the binding raises. Only the calls the
adapters make are modelled.
"""

import json
from dataclasses import dataclass, field
from typing import Any

import httpx


class BindingError(RuntimeError):
    """What a failing binding call raises (a JsException in the Worker)."""


async def _call(url: str, path: str, payload: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.post(path, json=payload)
    return _result(response)


def _result(response: httpx.Response) -> Any:
    body = response.json()
    if response.status_code >= 500:
        raise BindingError(body["error"])
    return body["result"]


# --- D1 -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class D1Statement:
    url: str
    sql: str
    params: tuple[Any, ...] = ()

    def bind(self, *params: Any) -> "D1Statement":
        return D1Statement(self.url, self.sql, params)

    async def _execute(self, method: str) -> Any:
        payload = {"sql": self.sql, "params": list(self.params), "method": method}
        return await _call(self.url, "/d1", payload)

    async def run(self) -> dict[str, Any]:
        return await self._execute("run")

    async def all(self) -> dict[str, Any]:
        return await self._execute("all")

    async def first(self) -> dict[str, Any] | None:
        return await self._execute("first")


@dataclass(frozen=True)
class D1Database:
    url: str

    def prepare(self, sql: str) -> D1Statement:
        return D1Statement(self.url, sql)


# --- R2 -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class R2Object:
    key: str
    size: int
    etag: str
    uploaded: str
    httpMetadata: dict[str, str] = field(default_factory=dict)  # the JS name


@dataclass(frozen=True)
class R2ObjectBody(R2Object):
    data: bytes = b""

    async def arrayBuffer(self) -> memoryview:  # the JS name
        return memoryview(self.data)


@dataclass(frozen=True)
class R2Bucket:
    url: str

    async def put(self, key: str, value: bytes, **options: Any) -> R2Object:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            response = await client.put(
                "/r2/object",
                params={"key": key},
                content=value,
                headers={"x-r2-options": json.dumps(options)},
            )
        return R2Object(**_result(response))

    async def head(self, key: str) -> R2Object | None:
        found = await _call(self.url, "/r2/head", {"key": key})
        return None if found is None else R2Object(**found)

    async def get(self, key: str, **options: Any) -> R2ObjectBody | None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            response = await client.post("/r2/get", json={"key": key, "options": options})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise BindingError(response.json()["error"])
        info = json.loads(response.headers["x-r2-object"])
        return R2ObjectBody(**info, data=response.content)

    async def delete(self, keys: str | list[str]) -> None:
        await _call(self.url, "/r2/delete", {"keys": keys})

    async def list(self, **options: Any) -> dict[str, Any]:
        listed = await _call(self.url, "/r2/list", {"options": options})
        return {**listed, "objects": [R2Object(**info) for info in listed["objects"]]}


# --- Queues -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queue:
    url: str

    async def send(self, body: Any, **options: Any) -> None:
        await _call(self.url, "/queue/send", {"body": body, "options": options})


def received_messages(url: str) -> list[dict[str, Any]]:
    """What the bridge's own consumer has taken off the queue so far, oldest first."""
    return httpx.get(f"{url}/queue/received", timeout=10).json()["result"]
