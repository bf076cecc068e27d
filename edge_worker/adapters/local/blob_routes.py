"""`/blobs/{key}`: GET and PUT through HMAC-signed URLs, the local stand-in for R2 presigning."""

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from litestar import Request, Router, get, put
from litestar.params import FromPath
from litestar.response import File

from contracts import ErrorCode
from contracts.errors import TooLargeDetails
from edge_worker.adapters.local.fs_blobs import CONTENT_TYPES, FsBlobStore, InvalidKey
from edge_worker.domain.problems import Problem, invalid_input


def _verify(store: FsBlobStore, method: str, key: str, request: Request[Any, Any, Any]) -> int:
    """Returns the signed size limit; raises 401 for anything unsigned, tampered or expired."""
    query = request.query_params
    try:
        expires = int(query.get("expires", ""))
        max_bytes = int(query.get("max_bytes", "0"))
        store.path_of(key)
    except (ValueError, InvalidKey):
        raise Problem(ErrorCode.UNAUTHORIZED, "invalid signed URL") from None
    content_type = query.get("content_type", "") if method == "PUT" else ""
    if not store.signer.verify(
        method, key, expires, content_type, max_bytes, query.get("sig", ""), int(time.time())
    ):
        raise Problem(ErrorCode.UNAUTHORIZED, "signed URL is invalid or expired")
    if method == "PUT" and request.headers.get("content-type", "") != content_type:
        raise invalid_input(f"Content-Type must be {content_type}, as signed", "Content-Type")
    return max_bytes


def blob_routes(store: FsBlobStore) -> Router:
    @get("/{key:path}", include_in_schema=False)
    async def read_blob(key: FromPath[str], request: Request[Any, Any, Any]) -> File:
        key = key.lstrip("/")
        _verify(store, "GET", key, request)
        path = store.path_of(key)
        if not path.is_file():
            raise Problem(ErrorCode.NOT_FOUND, "no such object")
        return File(path, media_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

    @put("/{key:path}", include_in_schema=False, request_max_body_size=None, status_code=200)
    async def write_blob(key: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        key = key.lstrip("/")
        max_bytes = _verify(store, "PUT", key, request)
        target = store.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_bytes:
                        raise Problem(
                            ErrorCode.PAYLOAD_TOO_LARGE,
                            f"object is larger than the signed limit of {max_bytes} bytes",
                            TooLargeDetails(limit_bytes=max_bytes),
                        )
                    out.write(chunk)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return {"key": key, "size_bytes": size}

    return Router(path="/blobs", route_handlers=[read_blob, write_blob], include_in_schema=False)
