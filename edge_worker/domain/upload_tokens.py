"""Direct-to-storage uploads: upload ids that need no database, and what a grant accepts.

An upload id is a signed token naming the kind (image or audio), the storage key and the
declared size, so `POST /generate` can check that the caller owns the object and where it
is without a table. The owner is signed in but not written out: the id does not show it.
Whether the object arrived, its real size and its first bytes are checked against storage
when the job is created.
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts import ErrorCode
from contracts.errors import MediaDetails, TooLargeDetails
from contracts.media import MediaKind
from edge_worker.domain.problems import Problem, invalid_input

UPLOAD_URL_TTL = timedelta(hours=1)
UPLOAD_ID_TTL = timedelta(hours=24)
UPLOAD_PREFIX = "inputs/uploads/"
# The latest time `datetime` can hold: a signed expiry beyond it is refused, not an overflow.
_MAX_TIMESTAMP = 253402300799

ACCEPTED_TYPES: dict[MediaKind, dict[str, str]] = {
    MediaKind.IMAGE: {"image/png": "png", "image/jpeg": "jpg"},
    MediaKind.AUDIO: {
        "audio/wav": "wav",
        "audio/x-wav": "wav",
        "audio/wave": "wav",
        "audio/mpeg": "mp3",
        "audio/mp3": "mp3",
    },
    MediaKind.VIDEO: {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm"},
}


class _TicketClaims(BaseModel):
    """An upload id's payload; read only once its signature is known to be ours."""

    model_config = ConfigDict(extra="forbid", strict=True)

    k: MediaKind
    key: str = Field(max_length=512)
    n: int = Field(gt=0, lt=2**63)
    exp: int = Field(ge=0, le=_MAX_TIMESTAMP)


@dataclass(frozen=True)
class UploadTicket:
    owner: str
    kind: MediaKind
    key: str
    declared_bytes: int
    expires_at: datetime


def new_key(kind: MediaKind, content_type: str, expires_at: datetime) -> str:
    """The key starts with the ticket's expiry, so the sweep can tell from a listing alone
    which uploads can no longer be used (`expiry_of`)."""
    extension = ACCEPTED_TYPES[kind][content_type]
    return f"{UPLOAD_PREFIX}{int(expires_at.timestamp())}-{uuid.uuid4()}/{kind.value}.{extension}"


def expiry_of(key: str) -> datetime | None:
    """When the ticket of an upload key expires; None for a key `new_key` did not make."""
    found = re.match(rf"{re.escape(UPLOAD_PREFIX)}([0-9]{{1,12}})-", key)
    if found is None or int(found.group(1)) > _MAX_TIMESTAMP:
        return None
    return datetime.fromtimestamp(int(found.group(1)), UTC)


def check_declared(
    kind: MediaKind, content_type: str, size_bytes: int, limit: int, field: str | None = None
) -> None:
    """`field`: the request's name for the file (`audio2` is an audio kind), else the kind's."""
    name = field or kind.value
    accepted = ACCEPTED_TYPES[kind]
    if content_type not in accepted:
        raise Problem(
            ErrorCode.UNSUPPORTED_MEDIA,
            f"{name} content_type must be one of {', '.join(accepted)}",
            MediaDetails.model_validate({"field": name}),
        )
    if size_bytes > limit:
        raise Problem(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"{name} is larger than the limit of {limit / (1024 * 1024):g} MiB",
            TooLargeDetails(limit_bytes=limit, field=name),
        )


def _sign(secret: str, owner: str, payload: bytes) -> str:
    """Binds the id to its owner: another owner's signature never matches."""
    signed = f"{owner}\n".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()[:32]


def issue(ticket: UploadTicket, secret: str) -> str:
    payload = json.dumps(
        {
            "k": ticket.kind.value,
            "key": ticket.key,
            "n": ticket.declared_bytes,
            "exp": int(ticket.expires_at.timestamp()),
        },
        separators=(",", ":"),
    ).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"up_{body}.{_sign(secret, ticket.owner, payload)}"


def redeem(
    upload_id: str,
    secret: str,
    owner: str,
    kind: MediaKind,
    now: datetime,
    name: str | None = None,
) -> UploadTicket:
    """The ticket behind an id, or INVALID_INPUT for anything forged, foreign or stale.
    `name`: the request's name for the file (`audio2` redeems an audio upload).

    The signature is checked (in constant time) before any of the payload is parsed, so a
    forged id never reaches the JSON or number parsers."""
    field = f"{name or kind.value}_upload_id"
    unknown = invalid_input(f"{field} is not an upload of yours", field)
    if not upload_id.startswith("up_") or "." not in upload_id:
        raise unknown
    body, _, signature = upload_id[3:].partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise unknown from None
    if not hmac.compare_digest(_sign(secret, owner, payload).encode(), signature.encode()):
        raise unknown
    try:
        claims = _TicketClaims.model_validate_json(payload)
    except ValidationError:
        raise unknown from None
    ticket = UploadTicket(
        owner=owner,
        kind=claims.k,
        key=claims.key,
        declared_bytes=claims.n,
        expires_at=datetime.fromtimestamp(claims.exp, UTC),
    )
    if ticket.kind is not kind or not _is_upload_key(ticket.key, kind):
        raise unknown
    if ticket.expires_at <= now:
        raise invalid_input(f"{field} has expired; upload the file again", field)
    return ticket


def _is_upload_key(key: str, kind: MediaKind) -> bool:
    """Only keys `new_key` makes: an id signed with a stray key never reaches storage."""
    extensions = "|".join(sorted(set(ACCEPTED_TYPES[kind].values())))
    pattern = rf"{re.escape(UPLOAD_PREFIX)}[A-Za-z0-9-]{{1,64}}/{kind.value}\.(?:{extensions})"
    return re.fullmatch(pattern, key) is not None
