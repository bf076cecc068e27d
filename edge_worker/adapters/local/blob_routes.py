"""`/blobs/{key}`: GET, HEAD and PUT through HMAC-signed URLs, the local stand-in for R2
presigning. GET serves one byte range and HEAD the headers alone, so a browser's `<video>`
can seek in a result."""

import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from litestar import Request, Response, Router, get, head, put
from litestar.params import FromPath
from litestar.response import File, Stream

from contracts import ErrorCode
from contracts.errors import TooLargeDetails
from edge_worker.adapters.local.byte_ranges import ByteRange, Unsatisfiable, parse_range
from edge_worker.adapters.local.fs_blobs import CONTENT_TYPES, FsBlobStore, InvalidKey, etag_of
from edge_worker.domain.problems import Problem, invalid_input

ACCEPT_RANGES = {"Accept-Ranges": "bytes"}
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class SignedPut:
    max_bytes: int
    size_bytes: int  # 0 for a result's PUT; else an upload's exact size, written once


def _verify(
    store: FsBlobStore, method: str, key: str, request: Request[Any, Any, Any]
) -> SignedPut:
    """What the URL signs; raises 401 for anything unsigned, tampered or expired."""
    query = request.query_params
    try:
        expires = int(query.get("expires", ""))
        max_bytes = int(query.get("max_bytes", "0"))
        size_bytes = int(query.get("size_bytes", "0"))
        store.path_of(key)
    except (ValueError, InvalidKey):
        raise Problem(ErrorCode.UNAUTHORIZED, "invalid signed URL") from None
    content_type = query.get("content_type", "") if method == "PUT" else ""
    sig = query.get("sig", "")
    now = int(time.time())
    if not store.signer.verify(method, key, expires, content_type, max_bytes, sig, now, size_bytes):
        raise Problem(ErrorCode.UNAUTHORIZED, "signed URL is invalid or expired")
    if method == "PUT" and request.headers.get("content-type", "") != content_type:
        raise invalid_input(f"Content-Type must be {content_type}, as signed", "Content-Type")
    return SignedPut(max_bytes, size_bytes)


def _too_large(limit: int) -> Problem:
    return Problem(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"object is larger than the signed limit of {limit} bytes",
        TooLargeDetails(limit_bytes=limit),
    )


def _used_once() -> Problem:
    return Problem(
        ErrorCode.CONFLICT, "this upload URL was used already; ask POST /uploads for another"
    )


def _check_upload(request: Request[Any, Any, Any], target: Path, size_bytes: int) -> None:
    """An upload URL is for one body of the declared size, sent before the object exists,
    as R2 holds its presigned uploads to the signed `Content-Length` and `If-None-Match: *`."""
    declared = request.headers.get("content-length", "")
    if not declared.isascii() or not declared.isdigit():
        raise invalid_input(
            f"send Content-Length: {size_bytes}, the size declared to POST /uploads",
            "Content-Length",
        )
    if int(declared) > size_bytes:
        raise _too_large(size_bytes)
    if int(declared) != size_bytes:
        raise invalid_input(
            f"Content-Length must be {size_bytes}, the size declared to POST /uploads",
            "Content-Length",
        )
    if target.exists():
        raise _used_once()


def blob_routes(store: FsBlobStore) -> Router:
    def stored(key: str, request: Request[Any, Any, Any]) -> Path:
        """A signed GET's (or HEAD's) object; HEAD is checked against GET's signature."""
        key = key.lstrip("/")
        _verify(store, "GET", key, request)
        path = store.path_of(key)
        if not path.is_file():
            raise Problem(ErrorCode.NOT_FOUND, "no such object")
        return path

    def identity(path: Path) -> dict[str, str]:
        """The ETag `head` reports, as R2 sends it: agents compare it with the one
        recorded at /generate."""
        return {**ACCEPT_RANGES, "ETag": etag_of(path)}

    def media_type(path: Path) -> str:
        return CONTENT_TYPES.get(path.suffix, "application/octet-stream")

    @get("/{key:path}", include_in_schema=False)
    async def read_blob(key: FromPath[str], request: Request[Any, Any, Any]) -> Response[Any]:
        path = stored(key, request)
        size = path.stat().st_size
        try:
            wanted = parse_range(request.headers.get("range"), size)
        except Unsatisfiable:
            return Response(
                b"",
                status_code=416,
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
        if wanted is None:
            return File(path, media_type=media_type(path), headers=identity(path))
        return Stream(
            _read_slice(path, wanted),
            status_code=206,
            media_type=media_type(path),
            headers={
                **identity(path),
                "Content-Range": wanted.content_range(size),
                "Content-Length": str(wanted.length),
            },
        )

    @head("/{key:path}", include_in_schema=False)
    async def describe_blob(key: FromPath[str], request: Request[Any, Any, Any]) -> File:
        path = stored(key, request)
        return File(path, media_type=media_type(path), headers=identity(path))

    @put("/{key:path}", include_in_schema=False, request_max_body_size=None, status_code=200)
    async def write_blob(key: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        key = key.lstrip("/")
        signed = _verify(store, "PUT", key, request)
        target = store.path_of(key)
        if signed.size_bytes:
            _check_upload(request, target, signed.size_bytes)
        limit = signed.size_bytes or signed.max_bytes
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    out.write(chunk)
            if not signed.size_bytes:
                os.replace(tmp, target)
            elif size != signed.size_bytes:
                raise invalid_input(
                    f"the body ended after {size} of the {signed.size_bytes} bytes declared",
                    "Content-Length",
                )
            else:
                _create(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return {"key": key, "size_bytes": size}

    return Router(
        path="/blobs",
        route_handlers=[read_blob, describe_blob, write_blob],
        include_in_schema=False,
    )


def _create(tmp: str, target: Path) -> None:
    """Link rather than rename: the link fails if the object exists, even when two PUTs of
    one upload URL race, so the first one wins and the object is never replaced."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _used_once() from None


async def _read_slice(path: Path, wanted: ByteRange) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as source:
        await source.seek(wanted.first)
        left = wanted.length
        while left > 0:
            chunk = await source.read(min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
