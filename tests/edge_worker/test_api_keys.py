"""The ApiKeys use case on the real SQL key store (SQLite): auth lookup and key management."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from contracts import ErrorCode, KeyCreateRequest
from edge_worker.adapters.local.sqlite_executor import SqliteExecutor
from edge_worker.adapters.sql_key_store import SqlKeyStore
from edge_worker.auth import owner_id
from edge_worker.domain import api_keys
from edge_worker.domain.problems import Problem
from edge_worker.usecases.api_keys import ApiKeys
from tests.conftest import run
from tests.edge_worker.conftest import FakeClock

PEPPER = "unit-pepper-0123456789"
BOOTSTRAP = "bootstrap-key-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlKeyStore]:
    database = SqliteExecutor(tmp_path / "jobs.sqlite3")
    yield SqlKeyStore(database)
    database.close()


@pytest.fixture
def keys(store: SqlKeyStore, clock: FakeClock) -> ApiKeys:
    return ApiKeys(store, PEPPER, clock, (BOOTSTRAP,))


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def refused(keys: ApiKeys, secret: str) -> str:
    with pytest.raises(Problem) as err:
        run(keys.authenticate(bearer(secret)))
    assert err.value.code is ErrorCode.UNAUTHORIZED
    return err.value.message


def test_a_created_key_is_stored_hashed_and_shown_once(keys: ApiKeys, store: SqlKeyStore) -> None:
    created = run(keys.create(KeyCreateRequest(name="acme", max_active_jobs=5)))
    assert created.key.startswith("sk_live_") and len(created.key) == len("sk_live_") + 43
    assert created.prefix == created.key[:12]
    stored = run(store.get(created.id))
    assert stored is not None
    assert stored.key_hash == api_keys.key_hash(created.key, PEPPER)
    assert created.key not in repr(stored)
    listed = run(keys.list()).keys
    assert [view.id for view in listed] == [created.id]
    assert created.key not in listed[0].model_dump_json()
    assert listed[0].max_active_jobs == 5
    assert listed[0].rate_limit_per_minute is None


def test_bootstrap_keys_need_no_record(keys: ApiKeys) -> None:
    assert run(keys.authenticate(bearer(BOOTSTRAP))).owner == owner_id(BOOTSTRAP, PEPPER)
    assert refused(keys, "sk_live_not-a-stored-key") == "invalid API key"


def test_a_stored_key_authenticates_as_its_owner_and_is_touched_once_a_minute(
    keys: ApiKeys, store: SqlKeyStore, clock: FakeClock
) -> None:
    created = run(keys.create(KeyCreateRequest(name="acme")))
    assert run(keys.authenticate(bearer(created.key))).owner == created.owner
    first = run(store.get(created.id))
    assert first is not None and first.last_used_at is not None
    clock.advance(seconds=30)
    run(keys.authenticate(bearer(created.key)))
    assert run(store.get(created.id)) == first
    clock.advance(seconds=31)
    run(keys.authenticate(bearer(created.key)))
    later = run(store.get(created.id))
    assert later is not None and later.last_used_at is not None
    assert later.last_used_at - first.last_used_at >= timedelta(minutes=1)


def test_rotation_keeps_the_owner_and_refuses_the_old_secret(keys: ApiKeys) -> None:
    created = run(keys.create(KeyCreateRequest(name="acme")))
    rotated = run(keys.rotate(created.id))
    assert (rotated.id, rotated.owner) == (created.id, created.owner)
    assert rotated.key != created.key
    assert refused(keys, created.key) == "invalid API key"
    assert run(keys.authenticate(bearer(rotated.key))).owner == created.owner


def test_revoked_and_expired_keys_are_refused(keys: ApiKeys, clock: FakeClock) -> None:
    revoked = run(keys.create(KeyCreateRequest(name="gone")))
    view = run(keys.revoke(revoked.id))
    assert view.revoked_at is not None
    assert refused(keys, revoked.key) == "API key revoked"
    assert run(keys.revoke(revoked.id)) == view, "revoking twice changes nothing"
    with pytest.raises(Problem) as err:
        run(keys.rotate(revoked.id))
    assert err.value.code is ErrorCode.CONFLICT

    expiring = run(keys.create(KeyCreateRequest(name="trial", expires_in_days=1)))
    assert run(keys.authenticate(bearer(expiring.key))).owner == expiring.owner
    clock.advance(days=1)
    assert refused(keys, expiring.key) == "API key expired"


@pytest.mark.parametrize("action", ["revoke", "rotate"])
def test_unknown_ids_are_not_found(keys: ApiKeys, action: str) -> None:
    with pytest.raises(Problem) as err:
        run(getattr(keys, action)("key_missing"))
    assert err.value.code is ErrorCode.NOT_FOUND


def test_without_bootstrap_keys_only_stored_keys_are_accepted(store: SqlKeyStore) -> None:
    keys = ApiKeys(store, PEPPER, FakeClock(), ())
    created = run(keys.create(KeyCreateRequest(name="only")))
    assert run(keys.authenticate(bearer(created.key))).owner == run(store.get(created.id)).owner
    refused(keys, BOOTSTRAP)
