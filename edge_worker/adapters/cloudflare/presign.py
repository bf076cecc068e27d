"""Presigned R2 URLs: AWS Signature Version 4 in the query string, on the standard library.

The Worker runs under Pyodide, where boto3 is far too heavy for one HMAC chain, so this
module builds the canonical request itself. R2 checks it exactly as S3 does: path-style
`/<bucket>/<key>` on `https://<account>.r2.cloudflarestorage.com`, region `auto`, service
`s3`, `UNSIGNED-PAYLOAD`, at most 7 days. Tests hold the output byte for byte to botocore's
`generate_presigned_url`, so any client that works with an SDK URL works with ours.

References: AWS S3 API reference, "Authenticating Requests: Using Query Parameters (AWS
Signature Version 4)"; Cloudflare R2 docs, "Presigned URLs"
(developers.cloudflare.com/r2/api/s3/presigned-urls).
"""

import hashlib
import hmac
from datetime import UTC, datetime
from math import ceil
from typing import Annotated
from urllib.parse import quote, urlsplit

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contracts.settings import CODE_ONLY, EnvSettings
from edge_worker.ports import Clock

REGION = "auto"
SERVICE = "s3"
ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_EXPIRES_SECONDS = 7 * 24 * 3600
METHODS = frozenset({"GET", "PUT"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def r2_endpoint(account_id: str) -> str:
    return f"https://{account_id}.r2.cloudflarestorage.com"


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    """Percent-encode the UTF-8 bytes of `value` the way SigV4 requires: only RFC 3986
    unreserved characters (A-Z a-z 0-9 - . _ ~) stay, plus `/` in an object key."""
    return quote(value, safe="/" if keep_slash else "")


def _origin(endpoint: str) -> tuple[str, str]:
    """(URL prefix, Host header value): lowercase host, port only when not the default."""
    parts = urlsplit(endpoint)
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ValueError(f"endpoint must look like https://host[:port], not {endpoint!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{parts.netloc}", host


def _canonical_path(bucket: str, key: str) -> str:
    """`/<bucket>/<key>`, which S3 signs as sent (no normalisation). HTTP clients collapse
    `.` and `..` segments before sending, so such keys could never verify: refuse them."""
    if not bucket or "/" in bucket:
        raise ValueError(f"invalid bucket name {bucket!r}")
    if not key or any(segment in (".", "..") for segment in key.split("/")):
        raise ValueError(f"object key {key!r} cannot be presigned")
    return f"/{uri_encode(bucket)}/{uri_encode(key, keep_slash=True)}"


def _header_value(value: str) -> str:
    """SigV4's Trimall: outer whitespace dropped, inner runs collapsed to one space."""
    if any(not (" " <= ch <= "~" or ch == "\t") for ch in value):
        raise ValueError(f"header value {value!r} must be printable ASCII")
    trimmed = " ".join(value.split())
    if not trimmed:
        raise ValueError("an empty content type cannot be signed")
    return trimmed


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _signing_key(secret_access_key: str, day: str) -> bytes:
    key = _hmac(f"AWS4{secret_access_key}".encode(), day)
    for part in (REGION, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    return key


def presign(
    method: str,
    bucket: str,
    key: str,
    *,
    account_id: str,
    access_key_id: str,
    secret_access_key: str,
    expires_in: int,
    now: datetime,
    content_type: str | None = None,
    content_length: int | None = None,
    create_only: bool = False,
    endpoint: str | None = None,
) -> str:
    """A URL that lets its holder `method` one object from `now` for `expires_in` seconds.

    With `content_type` (PUT only) the type becomes a signed header, as botocore does for
    `Params={"ContentType": ...}`: the uploader must send exactly that `Content-Type`, so
    a grant for `image/png` cannot store an object that R2 will serve as something else.
    (botocore drops just one type, `application/x-www-form-urlencoded; charset=utf-8`,
    which it sets by itself on query-protocol calls; here every given type is bound.)

    `content_length` (PUT only) signs the `Content-Length` header, so R2 refuses a body of
    any other size; `create_only` signs `If-None-Match: *`, so R2 refuses to overwrite an
    object (R2 docs, "S3 API: Conditional operations"): together a link writes one object,
    once, of the size it was granted for.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, not {method!r}")
    if not 1 <= expires_in <= MAX_EXPIRES_SECONDS:
        raise ValueError(f"expires_in={expires_in} is outside 1..{MAX_EXPIRES_SECONDS} seconds")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if method != "PUT" and (content_type is not None or content_length is not None or create_only):
        raise ValueError("only a PUT can bind a content type, a length or If-None-Match")
    if content_length is not None and content_length < 0:
        raise ValueError(f"content_length={content_length} is negative")
    base, host = _origin(endpoint or r2_endpoint(account_id))
    path = _canonical_path(bucket, key)

    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{stamp[:8]}/{REGION}/{SERVICE}/aws4_request"
    headers = {"host": host}
    if content_type is not None:
        headers["content-type"] = _header_value(content_type)
    if content_length is not None:
        headers["content-length"] = str(content_length)
    if create_only:
        headers["if-none-match"] = "*"
    signed_headers = ";".join(sorted(headers))
    params = {
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{access_key_id}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(expires_in),
        "X-Amz-SignedHeaders": signed_headers,
    }
    query = "&".join(
        f"{name}={value}"
        for name, value in sorted((uri_encode(k), uri_encode(v)) for k, v in params.items())
    )
    canonical_request = "\n".join(
        [
            method,
            path,
            query,
            "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
            signed_headers,
            UNSIGNED_PAYLOAD,
        ]
    )
    string_to_sign = "\n".join(
        [ALGORITHM, stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signature = hmac.new(
        _signing_key(secret_access_key, stamp[:8]), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    return f"{base}{path}?{query}&X-Amz-Signature={signature}"


class R2Settings(EnvSettings):
    """R2's S3 credentials and bucket, from the R2_* variables (README.md, Configuration);
    `endpoint` overrides the account URL (tests, the bucket tool's --endpoint)."""

    label = "R2"
    model_config = SettingsConfigDict(env_prefix="R2_")

    account_id: str = Field(min_length=1)
    access_key_id: str = Field(min_length=1)
    secret_access_key: str = Field(min_length=1, repr=False)
    bucket_name: str = Field(min_length=1)
    endpoint: Annotated[str | None, CODE_ONLY] = None


ENV_NAMES = tuple(
    R2Settings.env_name(name) for name in R2Settings.model_fields if name != "endpoint"
)


class R2Presigner:
    """The URL half of the BlobStore port on R2 (the binding does put/head/delete/list).

    A URL stays valid until `expires_at`, rounded up to the next whole second.
    """

    def __init__(self, settings: R2Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def _url(
        self,
        method: str,
        key: str,
        expires_at: datetime,
        content_type: str | None = None,
        size_bytes: int | None = None,
    ) -> str:
        now = self._clock.now().replace(microsecond=0)
        s = self._settings
        return presign(
            method,
            s.bucket_name,
            key,
            account_id=s.account_id,
            access_key_id=s.access_key_id,
            secret_access_key=s.secret_access_key,
            expires_in=ceil((expires_at - now).total_seconds()),
            now=now,
            content_type=content_type,
            content_length=size_bytes,
            create_only=size_bytes is not None,
            endpoint=s.endpoint,
        )

    def presign_get(self, key: str, expires_at: datetime) -> str:
        return self._url("GET", key, expires_at)

    def presign_put(self, key: str, expires_at: datetime, content_type: str) -> str:
        return self._url("PUT", key, expires_at, content_type)

    def presign_upload(
        self, key: str, expires_at: datetime, content_type: str, size_bytes: int
    ) -> str:
        return self._url("PUT", key, expires_at, content_type, size_bytes)
