"""Bearer-token checks for clients (API keys) and agents (AGENT_TOKEN)."""

import hmac
from collections.abc import Iterable, Mapping

from contracts import ErrorCode
from edge_worker.domain.api_keys import key_hash
from edge_worker.domain.problems import Problem


def owner_id(api_key: str, pepper: str) -> str:
    """The stable identity a job is owned by; the key itself is never stored.

    Keyed with the server's pepper, so a leaked owner id (a database dump, a log line) can
    neither be checked against a guessed key nor linked to a key without the pepper."""
    return key_hash(api_key, pepper)[:32]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def matches_any(token: str, secrets: Iterable[str]) -> bool:
    """Constant-time against every secret: no early exit that would leak which one matched."""
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(token.encode(), secret.encode())
    return found


def client_token(headers: Mapping[str, str]) -> str:
    """The caller's API key, or 401 when there is none."""
    token = bearer_token(headers)
    if token is None:
        raise Problem(ErrorCode.UNAUTHORIZED, "missing bearer API key")
    return token


def bootstrap_owner(token: str, api_keys: Iterable[str], pepper: str) -> str | None:
    """The owner id of a key from API_KEYS, None for any other token."""
    return owner_id(token, pepper) if matches_any(token, api_keys) else None


def authenticate_token(headers: Mapping[str, str], expected: str, what: str) -> None:
    """Single shared-secret check (agent token, queue API token)."""
    token = bearer_token(headers)
    if token is None or not matches_any(token, (expected,)):
        raise Problem(ErrorCode.UNAUTHORIZED, f"missing or invalid {what}")
