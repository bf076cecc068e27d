"""`Idempotency-Key` rules, plain Python: what a repeated `POST /generate` gets.

Same key + same request -> the job the first request created. Same key + a different
request -> refused. Same key while the first request is still being created -> 409, unless
that attempt is so old it must have died, in which case this request takes over.
Keys are scoped per API key and kept for `KEY_TTL`. The same table holds the server's own
records (an upload taken by a job), so each kind of key has its namespace and a client's
header can never name one of the server's records.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from contracts import Quality
from contracts.jobs import Parallel

KEY_TTL = timedelta(hours=24)
CREATION_TIMEOUT = timedelta(minutes=5)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotencyRecord:
    owner: str
    key: str
    fingerprint: str
    job_id: str | None
    created_at: datetime
    expires_at: datetime


class Decision(StrEnum):
    CREATE = "create"  # no usable record: create the job
    REPLAY = "replay"  # return the job the first request made
    MISMATCH = "mismatch"  # the key was used for a different request
    IN_PROGRESS = "in_progress"  # the first request is still creating its job
    TAKE_OVER = "take_over"  # the first request died half-way, or the record expired


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable() and key.isascii()


def client_key(header: str) -> str:
    """The record key of an `Idempotency-Key` header."""
    return f"client:{header}"


def upload_key(storage_key: str) -> str:
    """The record key that marks an uploaded object as taken by a job."""
    return f"upload:{storage_key}"


def fingerprint(parts: Iterable[str]) -> str:
    """A digest of everything that defines the request (fields and content hashes)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def request_fingerprint(
    kind: str, *parts: str, quality: Quality, parallel: Parallel = "off"
) -> str:
    """The fingerprint of a `POST /generate`. A standard job adds nothing for its quality,
    nor an unsplit one for `parallel`, so keys recorded before those options existed still
    match their retries."""
    extra = [] if quality is Quality.STANDARD else [quality.value]
    if parallel != "off":
        extra.append(f"parallel={parallel}")
    return fingerprint([kind, *parts, *extra])


def new_record(owner: str, key: str, print_: str, now: datetime) -> IdempotencyRecord:
    return IdempotencyRecord(owner, key, print_, None, now, now + KEY_TTL)


def decide(existing: IdempotencyRecord | None, print_: str, now: datetime) -> Decision:
    if existing is None:
        return Decision.CREATE
    if existing.expires_at <= now:
        return Decision.TAKE_OVER
    if existing.fingerprint != print_:
        return Decision.MISMATCH
    if existing.job_id is not None:
        return Decision.REPLAY
    if now - existing.created_at > CREATION_TIMEOUT:
        return Decision.TAKE_OVER
    return Decision.IN_PROGRESS
