"""`S3BlobStore`: the BlobStore port on an S3-compatible bucket (R2, AWS S3, MinIO) through
boto3, for the local runtime (`BLOB_STORE=s3`, `avatar serve` on one pod).

boto3 stays out of the Worker, which reaches R2 through its binding and signs with the
pure-Python `cloudflare.presign`. Here boto3 does everything: puts are streamed through
s3transfer (multipart above `MULTIPART_BYTES`, one part in memory per thread, never the whole
body), every call is retried with botocore's standard mode (exponential backoff with jitter
on throttling, 5xx and connection errors), and the presigned URLs are botocore's own.

Upload links keep the guarantees of the R2 ones (docs/ARCHITECTURE.md, Storage): the URL
signs `Content-Length` and `If-None-Match: *`, so the store refuses another size and any
overwrite, and `head` gives the ETag that the agent compares with its GET's.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from math import ceil
from typing import IO, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from edge_worker.ports import BlobInfo, Clock

MiB = 1024 * 1024
MULTIPART_BYTES = 8 * MiB  # S3's smallest part is 5 MiB
MAX_ATTEMPTS = 5  # botocore's standard retry mode: the first try and 4 retries
MAX_EXPIRES_SECONDS = 7 * 24 * 3600  # SigV4's ceiling
DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def s3_client(
    endpoint_url: str | None, region: str, access_key_id: str, secret_access_key: str
) -> Any:
    """A path-style SigV4 client with retries. Checksums only where an operation requires
    one: R2 refused the flexible-checksum headers AWS SDKs began sending by default in
    January 2025 (boto3 1.36), and presigned PUTs must not ask uploaders for one."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
            connect_timeout=10,
            read_timeout=60,
        ),
    )


class _CountingReader:
    """Reads through to `body` and counts the bytes. It has no `seek`, so s3transfer reads
    it part by part instead of re-opening it from the start: `put` stores the body from
    where it stands, as the port says."""

    def __init__(self, body: IO[bytes]) -> None:
        self._body = body
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._body.read(size)
        self.count += len(chunk)
        return chunk


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


@contextmanager
def _not_found_as(key: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        if _missing(exc):
            raise FileNotFoundError(key) from exc
        raise


class S3BlobStore:
    def __init__(
        self,
        client: Any,
        bucket: str,
        clock: Clock,
        transfer: TransferConfig | None = None,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._clock = clock
        self._transfer = transfer or TransferConfig(
            multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES
        )

    def _upload(self, key: str, body: IO[bytes], content_type: str) -> int:
        reader = _CountingReader(body)
        self._client.upload_fileobj(
            reader,
            self._bucket,
            key,
            ExtraArgs={"ContentType": content_type},
            Config=self._transfer,
        )
        return reader.count

    async def put(self, key: str, body: IO[bytes], content_type: str) -> int:
        return await asyncio.to_thread(self._upload, key, body, content_type)

    def _head(self, key: str) -> BlobInfo | None:
        try:
            found = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return BlobInfo(key, int(found["ContentLength"]), str(found["ETag"]))

    async def head(self, key: str) -> BlobInfo | None:
        return await asyncio.to_thread(self._head, key)

    def _read_range(self, key: str, length: int) -> bytes:
        """The first `length` bytes. S3 refuses a range on an empty object (416), and a
        range of length 0 cannot be written, so those ask `head` instead."""
        if length > 0:
            with _not_found_as(key):
                try:
                    found = self._client.get_object(
                        Bucket=self._bucket, Key=key, Range=f"bytes=0-{length - 1}"
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "InvalidRange":
                        raise
                else:
                    return bytes(found["Body"].read())
        if self._head(key) is None:
            raise FileNotFoundError(key)
        return b""

    async def read_range(self, key: str, length: int) -> bytes:
        return await asyncio.to_thread(self._read_range, key, length)

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
            answer = self._client.delete_objects(
                Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if answer.get("Errors"):
                raise OSError(f"S3 did not delete {answer['Errors']}")

    async def delete(self, keys: list[str]) -> None:
        await asyncio.to_thread(self._delete, keys)

    def _list_keys(self, prefix: str) -> list[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix
        )
        return sorted(str(item["Key"]) for page in pages for item in page.get("Contents", []))

    async def list_keys(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._list_keys, prefix)

    def _url(self, operation: str, expires_at: datetime, **params: object) -> str:
        """botocore's presigned URL, valid until `expires_at` rounded up to the second;
        every given parameter of a PUT becomes a header the uploader must send as signed."""
        expires_in = ceil((expires_at - self._clock.now()).total_seconds())
        if not 1 <= expires_in <= MAX_EXPIRES_SECONDS:
            raise ValueError(f"expires_in={expires_in} is outside 1..{MAX_EXPIRES_SECONDS} seconds")
        return str(
            self._client.generate_presigned_url(
                operation,
                Params={"Bucket": self._bucket, **params},
                ExpiresIn=expires_in,
            )
        )

    def presign_get(self, key: str, expires_at: datetime) -> str:
        return self._url("get_object", expires_at, Key=key)

    def presign_put(self, key: str, expires_at: datetime, content_type: str) -> str:
        return self._url("put_object", expires_at, Key=key, ContentType=content_type)

    def presign_upload(
        self, key: str, expires_at: datetime, content_type: str, size_bytes: int
    ) -> str:
        return self._url(
            "put_object",
            expires_at,
            Key=key,
            ContentType=content_type,
            ContentLength=size_bytes,
            IfNoneMatch="*",
        )
