"""API keys as records: how a key is made, hashed, shown, and when it stops being accepted."""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

KEY_PREFIX = "sk_live_"
SHOWN_CHARS = len(KEY_PREFIX) + 4
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class KeyLimits:
    """Per-key limits; None means the deployment's default applies."""

    rate_limit_per_minute: int | None = None
    max_active_jobs: int | None = None
    daily_video_seconds: float | None = None


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    owner: str
    key_hash: str
    prefix: str
    created_at: datetime
    limits: KeyLimits = KeyLimits()
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


def key_hash(secret: str, pepper: str) -> str:
    """What is stored instead of the key: without the pepper a leaked table checks no guess."""
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def shown_prefix(secret: str) -> str:
    """Enough of the key to recognise it in a list, far too little to guess the rest."""
    return secret[:SHOWN_CHARS]


def new_key(
    name: str,
    secret: str,
    pepper: str,
    now: datetime,
    expires_at: datetime | None = None,
    limits: KeyLimits = KeyLimits(),
) -> ApiKey:
    """A fresh record with its own owner: the tenant's identity, kept across rotations."""
    return ApiKey(
        id=f"key_{uuid.uuid4().hex}",
        name=name,
        owner=uuid.uuid4().hex,
        key_hash=key_hash(secret, pepper),
        prefix=shown_prefix(secret),
        created_at=now,
        limits=limits,
        expires_at=expires_at,
    )


def rotated(key: ApiKey, secret: str, pepper: str) -> ApiKey:
    """Same record and owner, a new secret: the old secret's hash is gone with the write."""
    return replace(key, key_hash=key_hash(secret, pepper), prefix=shown_prefix(secret))


def refusal(key: ApiKey, now: datetime) -> str | None:
    """Why `key` is no longer accepted at `now`, or None while it is."""
    if key.revoked_at is not None:
        return "API key revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "API key expired"
    return None


def needs_touch(key: ApiKey, now: datetime) -> bool:
    """Record a use at most once a minute, so the hot path rarely writes."""
    return key.last_used_at is None or now - key.last_used_at >= TOUCH_INTERVAL
