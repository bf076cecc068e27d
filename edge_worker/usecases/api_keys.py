"""API keys as data: the client-auth lookup and key management (admin API, `avatar-admin`).

No cache: every request reads its key's record (one indexed lookup by hash), so a revoked
or rotated key is refused on its very next request."""

from collections.abc import Mapping
from datetime import timedelta

from contracts import ErrorCode, KeyCreated, KeyCreateRequest, KeyList, KeyView
from contracts.errors import ConflictDetails
from edge_worker.auth import bootstrap_owner, client_token
from edge_worker.domain import api_keys
from edge_worker.domain.api_keys import ApiKey, KeyLimits
from edge_worker.domain.problems import Problem
from edge_worker.domain.quotas import Caller
from edge_worker.ports import Clock, KeyStore


def key_view(key: ApiKey) -> KeyView:
    return KeyView(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        owner=key.owner,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        rate_limit_per_minute=key.limits.rate_limit_per_minute,
        max_active_jobs=key.limits.max_active_jobs,
        daily_video_seconds=key.limits.daily_video_seconds,
    )


def _created(key: ApiKey, secret: str) -> KeyCreated:
    return KeyCreated(**key_view(key).model_dump(), key=secret)


def _unknown(key_id: str) -> Problem:
    return Problem(ErrorCode.NOT_FOUND, f"no API key {key_id!r}")


class ApiKeys:
    """Built around the key store alone, so `avatar-admin` can run it on the local database
    without the rest of the edge."""

    def __init__(
        self, store: KeyStore, pepper: str, clock: Clock, bootstrap_keys: tuple[str, ...] = ()
    ) -> None:
        self._store = store
        self._pepper = pepper
        self._clock = clock
        self._bootstrap = bootstrap_keys

    async def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """The caller: API_KEYS first (no read; the deployment's limits), else the stored
        key's owner and limits."""
        token = client_token(headers)
        owner = bootstrap_owner(token, self._bootstrap, self._pepper)
        if owner is not None:
            return Caller(owner)
        found = await self._store.find_by_hash(api_keys.key_hash(token, self._pepper))
        if found is None:
            raise Problem(ErrorCode.UNAUTHORIZED, "invalid API key")
        now = self._clock.now()
        refused = api_keys.refusal(found, now)
        if refused is not None:
            raise Problem(ErrorCode.UNAUTHORIZED, refused)
        if api_keys.needs_touch(found, now):
            await self._store.touch(found.id, now, now - api_keys.TOUCH_INTERVAL)
        return Caller(found.owner, found.limits)

    async def create(self, request: KeyCreateRequest) -> KeyCreated:
        now = self._clock.now()
        days = request.expires_in_days
        secret = api_keys.new_secret()
        key = api_keys.new_key(
            request.name,
            secret,
            self._pepper,
            now,
            expires_at=now + timedelta(days=days) if days is not None else None,
            limits=KeyLimits(
                rate_limit_per_minute=request.rate_limit_per_minute,
                max_active_jobs=request.max_active_jobs,
                daily_video_seconds=request.daily_video_seconds,
            ),
        )
        await self._store.insert(key)
        return _created(key, secret)

    async def list(self) -> KeyList:
        return KeyList(keys=[key_view(key) for key in await self._store.list_all()])

    async def revoke(self, key_id: str) -> KeyView:
        """Idempotent: revoking a revoked key answers its record unchanged."""
        if not await self._store.revoke(key_id, self._clock.now()):
            found = await self._store.get(key_id)
            if found is None:
                raise _unknown(key_id)
            return key_view(found)
        return key_view(await self._existing(key_id))

    async def rotate(self, key_id: str) -> KeyCreated:
        """A new secret for the same record and owner; the old secret stops working at once."""
        key = await self._existing(key_id)
        secret = api_keys.new_secret()
        new = api_keys.rotated(key, secret, self._pepper)
        if not await self._store.set_secret(new):
            raise Problem(
                ErrorCode.CONFLICT,
                f"API key {key_id!r} is revoked",
                ConflictDetails(status="revoked"),
            )
        return _created(new, secret)

    async def _existing(self, key_id: str) -> ApiKey:
        found = await self._store.get(key_id)
        if found is None:
            raise _unknown(key_id)
        return found
