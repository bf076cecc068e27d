"""`FsBlobStore`: the BlobStore port on a directory, with HMAC-signed expiring URLs.

The signed URLs point at the edge itself (`/blobs/...`, served by `blob_routes`), so agents
and clients use them exactly as they use R2 presigned URLs in production.
"""

import asyncio
import hashlib
import hmac
import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from edge_worker.ports import BlobInfo

_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
}


INLINE_PUT_BYTES = 1024 * 1024


class InvalidKey(ValueError):
    pass


def check_key(key: str) -> str:
    """Keys are built by the server, but the blob routes take them from URLs: refuse traversal."""
    if not _KEY.fullmatch(key) or len(key) > 512:
        raise InvalidKey(f"invalid blob key {key!r}")
    return key


def etag_of(path: Path) -> str:
    """The file's identity, as a quoted ETag: every PUT writes a new file (a new inode), so
    a replaced object never keeps the ETag of the one it replaced."""
    found = path.stat()
    return f'"{found.st_ino:x}-{found.st_mtime_ns:x}-{found.st_size:x}"'


def _remaining(body: IO[bytes]) -> int | None:
    """Bytes left to read, or None for a stream whose length is unknown."""
    if not body.seekable():
        return None
    start = body.tell()
    end = body.seek(0, os.SEEK_END)
    body.seek(start)
    return end - start


class UrlSigner:
    """Signs what a URL allows: the method, key and expiry, and for a PUT the content type,
    the size limit and the exact size (0: any size up to the limit, overwrites allowed)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def signature(
        self,
        method: str,
        key: str,
        expires: int,
        content_type: str,
        max_bytes: int,
        size_bytes: int = 0,
    ) -> str:
        payload = f"{method}\n{key}\n{expires}\n{content_type}\n{max_bytes}\n{size_bytes}"
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def verify(
        self,
        method: str,
        key: str,
        expires: int,
        content_type: str,
        max_bytes: int,
        sig: str,
        now: int,
        size_bytes: int = 0,
    ) -> bool:
        expected = self.signature(method, key, expires, content_type, max_bytes, size_bytes)
        return hmac.compare_digest(expected.encode(), sig.encode()) and now <= expires


class FsBlobStore:
    def __init__(self, root: Path, public_url: str, secret: str, max_put_bytes: int) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.public_url = public_url.rstrip("/")
        self.signer = UrlSigner(secret)
        self.max_put_bytes = max_put_bytes

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, key: str, body: IO[bytes]) -> int:
        target = self.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(body, out, 1024 * 1024)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target.stat().st_size

    async def put(self, key: str, body: IO[bytes], content_type: str) -> int:
        """Bodies up to `INLINE_PUT_BYTES` are written on the event loop (into the page cache,
        no fsync): for them the hop to a thread costs more than the write."""
        remaining = _remaining(body)
        if remaining is not None and remaining <= INLINE_PUT_BYTES:
            return self._write(key, body)
        return await asyncio.to_thread(self._write, key, body)

    async def head(self, key: str) -> BlobInfo | None:
        path = self.path_of(key)
        return BlobInfo(key, path.stat().st_size, etag_of(path)) if path.is_file() else None

    async def read_range(self, key: str, length: int) -> bytes:
        with self.path_of(key).open("rb") as f:
            return f.read(length)

    async def delete(self, keys: list[str]) -> None:
        """Delete objects and the folders they leave empty: an object store has no folders."""
        for key in keys:
            path = self.path_of(key)
            path.unlink(missing_ok=True)
            for parent in path.parents:
                if parent == self.root or not parent.is_dir() or any(parent.iterdir()):
                    break
                parent.rmdir()

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys under `prefix`; temp files of uploads in flight are not objects yet."""
        directory, _, name_prefix = prefix.rpartition("/")
        base = self.root / check_key(directory) if directory else self.root
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file()
            and not path.name.startswith(".")
            and path.relative_to(base).as_posix().startswith(name_prefix)
        )

    def _url(
        self,
        method: str,
        key: str,
        expires_at: datetime,
        content_type: str,
        max_bytes: int,
        size_bytes: int = 0,
    ) -> str:
        expires = int(expires_at.timestamp())
        query = {
            "expires": expires,
            "sig": self.signer.signature(method, key, expires, content_type, max_bytes, size_bytes),
        }
        if method == "PUT":
            query.update({"content_type": content_type, "max_bytes": max_bytes})
        if size_bytes:
            query["size_bytes"] = size_bytes
        return f"{self.public_url}/blobs/{quote(check_key(key))}?{urlencode(query)}"

    def presign_get(self, key: str, expires_at: datetime) -> str:
        return self._url("GET", key, expires_at, "", 0)

    def presign_put(self, key: str, expires_at: datetime, content_type: str) -> str:
        return self._url("PUT", key, expires_at, content_type, self.max_put_bytes)

    def presign_upload(
        self, key: str, expires_at: datetime, content_type: str, size_bytes: int
    ) -> str:
        """`blob_routes` holds the body to `size_bytes` and refuses to replace the object."""
        return self._url("PUT", key, expires_at, content_type, size_bytes, size_bytes)
