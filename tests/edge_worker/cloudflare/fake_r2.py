"""A moto S3 server standing in for R2, with R2's presigned-URL checks in front of it.

moto (5.x) stores and serves objects faithfully but accepts *any* presigned URL: it
verifies neither query signatures nor `X-Amz-Expires` (its IAM check reads only the
`Authorization` header). `QueryAuthGate` adds what R2 enforces, recomputing the
signature with botocore's own signer, so the end-to-end tests check our URLs against an
independent implementation rather than against themselves.
"""

import hmac
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import boto3
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer

ACCESS_KEY_ID = "R2TESTACCESSKEY"
SECRET_ACCESS_KEY = "r2-test-secret-0123456789abcdef"
MAX_EXPIRES = 7 * 24 * 3600

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


class QueryAuthGate:
    """WSGI middleware: refuse a presigned request (403, S3-style XML) whose SigV4 query
    signature or expiry does not hold; let every other request through to moto."""

    def __init__(self, app: WsgiApp, secrets: dict[str, str]) -> None:
        self.app = app
        self.secrets = secrets
        self.enforce = True

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raw_query = environ.get("QUERY_STRING", "")
        if self.enforce and "X-Amz-Signature=" in raw_query:
            refusal = self.refusal(environ, raw_query)
            if refusal is not None:
                code, message = refusal
                body = (
                    f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                    f"<Message>{message}</Message></Error>"
                ).encode()
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
                )
                return [body]
        return self.app(environ, start_response)

    def refusal(self, environ: dict[str, Any], raw_query: str) -> tuple[str, str] | None:
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            return "AuthorizationQueryParametersError", "unsupported algorithm"
        access_key, _, scope = params.get("X-Amz-Credential", "").partition("/")
        secret = self.secrets.get(access_key)
        if secret is None:
            return "InvalidAccessKeyId", "unknown access key"
        day, region, *_ = scope.split("/")
        stamp = params.get("X-Amz-Date", "")
        expires = int(params.get("X-Amz-Expires", "0"))
        if not 1 <= expires <= MAX_EXPIRES or not stamp.startswith(day):
            return "AuthorizationQueryParametersError", "bad expiry or date"
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if datetime.now(UTC) > signed_at + timedelta(seconds=expires):
            return "AccessDenied", "Request has expired"

        names = params["X-Amz-SignedHeaders"].split(";")
        headers = {}
        for name in names:
            # WSGI keeps Content-Type/-Length unprefixed (and "" when absent).
            wsgi_name = name.upper().replace("-", "_")
            value = environ.get(f"HTTP_{wsgi_name}") or environ.get(wsgi_name)
            if not value:
                return "SignatureDoesNotMatch", f"signed header {name} missing"
            headers[name] = value
        unsigned_query = "&".join(
            pair for pair in raw_query.split("&") if not pair.startswith("X-Amz-Signature=")
        )
        path = environ["RAW_URI"].partition("?")[0]
        request = AWSRequest(
            method=environ["REQUEST_METHOD"],
            url=f"http://{headers['host']}{path}?{unsigned_query}",
            headers=headers,
        )
        request.context["timestamp"] = stamp
        signer = S3SigV4QueryAuth(Credentials(access_key, secret), "s3", region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return "SignatureDoesNotMatch", "signature does not match"
        return None


@dataclass
class FakeR2:
    endpoint: str
    gate: QueryAuthGate

    def client(self, region: str = "auto") -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def new_bucket(self) -> str:
        """moto refuses region `auto` for CreateBucket (R2 buckets come from wrangler
        anyway), so buckets are made through a us-east-1 client."""
        name = f"avatar-{uuid.uuid4().hex[:12]}"
        self.client("us-east-1").create_bucket(Bucket=name)
        return name


@contextmanager
def running_fake_r2() -> Iterator[FakeR2]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # The gate wraps the running server's WSGI app: ThreadedMotoServer has no hook for
    # middleware, and nothing has been served before this line.
    gate = QueryAuthGate(server._server.app, {ACCESS_KEY_ID: SECRET_ACCESS_KEY})
    server._server.app = gate
    host, port = server.get_host_and_port()
    try:
        yield FakeR2(f"http://{host}:{port}", gate)
    finally:
        server.stop()
