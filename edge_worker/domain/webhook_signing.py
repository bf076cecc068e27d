"""Standard Webhooks signing (https://www.standardwebhooks.com): `webhook-signature` is
`v1,` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), the key being the base64 part
of a `whsec_` secret. Several signatures, space-separated, let a receiver verify with either
of two secrets while a rotation settles."""

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not one
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(signing: list[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The request headers of one attempt, signed with each of `signing` (newest first)."""
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, webhook_id, timestamp, body) for secret in signing
        ),
    }
