"""`R2BlobStore`: the BlobStore port on an R2 bucket binding.

The binding stores, reads, lists and deletes; it cannot sign URLs, so presigning is handed
to an injected presigner (SigV4 against R2's S3 endpoint, `presign.R2Presigner`).
"""

from datetime import datetime
from typing import IO, Any, Protocol

from edge_worker.adapters.cloudflare.js_values import as_bytes, field
from edge_worker.ports import BlobInfo

DELETE_BATCH = 1000  # R2 deletes at most this many keys per call


class Presigner(Protocol):
    def presign_get(self, key: str, expires_at: datetime) -> str: ...

    def presign_put(self, key: str, expires_at: datetime, content_type: str) -> str: ...

    def presign_upload(
        self, key: str, expires_at: datetime, content_type: str, size_bytes: int
    ) -> str: ...


class R2BlobStore:
    def __init__(self, bucket: Any, presigner: Presigner) -> None:
        self._bucket = bucket
        self._presigner = presigner

    async def put(self, key: str, body: IO[bytes], content_type: str) -> int:
        """Reads `body` into memory: the binding needs a body of known length, and inline
        uploads are capped well below the Worker's memory (`max_inline_request_bytes`)."""
        data = bytes(body.read())
        await self._bucket.put(key, data, httpMetadata={"contentType": content_type})
        return len(data)

    async def head(self, key: str) -> BlobInfo | None:
        found = await self._bucket.head(key)
        if found is None:
            return None
        return BlobInfo(key, int(field(found, "size")), f'"{field(found, "etag")}"')

    async def read_range(self, key: str, length: int) -> bytes:
        """The first `length` bytes. R2 refuses a range on an empty object or of length 0,
        so the size is looked up first."""
        info = await self.head(key)
        if info is None:
            raise FileNotFoundError(key)
        length = min(length, info.size_bytes)
        if length <= 0:
            return b""
        found = await self._bucket.get(key, range={"offset": 0, "length": length})
        if found is None:
            raise FileNotFoundError(key)
        return as_bytes(await found.arrayBuffer())

    async def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            await self._bucket.delete(keys[start : start + DELETE_BATCH])

    async def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        cursor: str | None = None
        while True:
            options: dict[str, Any] = {"prefix": prefix}
            if cursor:
                options["cursor"] = cursor
            listed = await self._bucket.list(**options)
            keys.extend(str(field(item, "key")) for item in field(listed, "objects") or [])
            cursor = field(listed, "cursor")
            if not field(listed, "truncated"):
                return sorted(keys)

    def presign_get(self, key: str, expires_at: datetime) -> str:
        return self._presigner.presign_get(key, expires_at)

    def presign_put(self, key: str, expires_at: datetime, content_type: str) -> str:
        return self._presigner.presign_put(key, expires_at, content_type)

    def presign_upload(
        self, key: str, expires_at: datetime, content_type: str, size_bytes: int
    ) -> str:
        return self._presigner.presign_upload(key, expires_at, content_type, size_bytes)
