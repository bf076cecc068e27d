"""Streaming transfers to and from signed storage URLs.

Inputs can be 50 MiB and outputs much more, so bytes go chunk by chunk between the
socket and a file; nothing here holds a whole file in memory. Signed URLs carry their
credentials in the query string, so logs get `redact_url` of them, never the URL.
Each call is one try that starts from scratch (a new file, or the file re-read from its
first byte), so a caller can repeat it with a `RetryPolicy` when the error is `transient`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx

from gpu_agent.retry import CallError, is_transient_status, is_transient_transport

CHUNK_SIZE = 256 * 1024

TransferProgress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None when unknown)."""

StopCheck = Callable[[], bool]


class TransferError(CallError):
    """A download or upload failed (network, HTTP status); `transient` when a retry may help."""


class PayloadTooLarge(TransferError):
    """The object is bigger than the cap: the input is refused, not retried."""


class InputChanged(Exception):
    """The object's ETag is not the one expected: it was replaced since it was checked."""


class TransferCancelled(Exception):
    """The job was cancelled mid-transfer (not an error: nothing is reported)."""


def redact_url(url: str) -> str:
    """The URL without query or fragment: safe to log (signatures live in the query)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, fragment=None))


def download(
    client: httpx.Client,
    url: str,
    dest: Path,
    max_bytes: int,
    *,
    on_progress: TransferProgress | None = None,
    cancelled: StopCheck | None = None,
    etag: str | None = None,
) -> int:
    """GET `url` into `dest`, refusing more than `max_bytes`; returns the size written.

    With `etag`, the answer must carry that ETag, else `InputChanged`: the ETag comes with
    the bytes in one response, so what is written is what was checked. A partial file is
    removed on any failure.
    """
    written = 0
    try:
        with client.stream("GET", url) as response:
            if not response.is_success:
                raise TransferError(
                    f"download from {redact_url(url)} failed with HTTP {response.status_code}",
                    status_code=response.status_code,
                    transient=is_transient_status(response.status_code),
                )
            if etag is not None and response.headers.get("etag") != etag:
                raise InputChanged(
                    f"{redact_url(url)} has ETag {response.headers.get('etag')}, not {etag}"
                )
            total = _content_length(response)
            if total is not None and total > max_bytes:
                raise PayloadTooLarge(f"input is {total} bytes, more than {max_bytes}")
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    if cancelled is not None and cancelled():
                        raise TransferCancelled("download cancelled")
                    written += len(chunk)
                    if written > max_bytes:
                        raise PayloadTooLarge(f"input is more than {max_bytes} bytes")
                    out.write(chunk)
                    if on_progress is not None:
                        on_progress(written, total)
    except httpx.HTTPError as exc:
        dest.unlink(missing_ok=True)
        raise TransferError(
            f"download from {redact_url(url)} failed: {type(exc).__name__}",
            transient=is_transient_transport(exc),
        ) from exc
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return written


def upload(
    client: httpx.Client,
    url: str,
    path: Path,
    content_type: str,
    *,
    on_progress: TransferProgress | None = None,
    cancelled: StopCheck | None = None,
) -> int:
    """PUT the file at `path` to `url` as a stream with an explicit Content-Length.

    An explicit length keeps httpx from falling back to chunked encoding, which S3/R2
    presigned PUTs refuse.
    """
    size = path.stat().st_size
    headers = {"Content-Type": content_type, "Content-Length": str(size)}
    with path.open("rb") as source:
        body = _file_chunks(source, size, on_progress, cancelled)
        try:
            response = client.put(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransferError(
                f"upload to {redact_url(url)} failed: {type(exc).__name__}",
                transient=is_transient_transport(exc),
            ) from exc
    if not response.is_success:
        raise TransferError(
            f"upload to {redact_url(url)} failed with HTTP {response.status_code}",
            status_code=response.status_code,
            transient=is_transient_status(response.status_code),
        )
    return size


def _file_chunks(
    source: BinaryIO,
    size: int,
    on_progress: TransferProgress | None,
    cancelled: StopCheck | None,
) -> Iterator[bytes]:
    sent = 0
    while chunk := source.read(CHUNK_SIZE):
        if cancelled is not None and cancelled():
            raise TransferCancelled("upload cancelled")
        sent += len(chunk)
        yield chunk
        if on_progress is not None:
            on_progress(sent, size)


def _content_length(response: httpx.Response) -> int | None:
    raw = response.headers.get("content-length")
    if raw is None or response.headers.get("content-encoding"):
        return None  # a compressed body's length says nothing about the decoded size
    try:
        return int(raw)
    except ValueError:
        return None
