"""The KeyStore contract: the SQL key store behaves alike on SQLite and on real local D1."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from edge_worker.domain import api_keys
from edge_worker.domain.api_keys import ApiKey, KeyLimits
from edge_worker.ports import KeyStore
from tests.conftest import run

T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
PEPPER = "contract-pepper-0123456789"


def make_key(name: str, *, created: datetime = T0) -> tuple[ApiKey, str]:
    secret = api_keys.new_secret()
    return api_keys.new_key(name, secret, PEPPER, created), secret


def every_field_set() -> ApiKey:
    """A key whose every field differs from its default, so no dropped column can hide."""
    key, _ = make_key("every 'field' ✓")
    full = dataclasses.replace(
        key,
        limits=KeyLimits(rate_limit_per_minute=30, max_active_jobs=4, daily_video_seconds=90.5),
        last_used_at=T0 + timedelta(microseconds=1),
        expires_at=T0 + timedelta(days=30, microseconds=2),
        revoked_at=T0 + timedelta(microseconds=3),
    )
    for field in dataclasses.fields(ApiKey):
        if field.default is not dataclasses.MISSING:
            assert getattr(full, field.name) != field.default, field.name
    return full


def test_a_key_round_trips_every_field(key_store: KeyStore) -> None:
    key = every_field_set()
    run(key_store.insert(key))
    assert run(key_store.get(key.id)) == key
    assert run(key_store.find_by_hash(key.key_hash)) == key
    assert run(key_store.get("key_missing")) is None
    assert run(key_store.find_by_hash("0" * 64)) is None


def test_the_hash_is_unique(key_store: KeyStore) -> None:
    key, _ = make_key("one")
    run(key_store.insert(key))
    with pytest.raises(Exception):
        run(key_store.insert(dataclasses.replace(key, id="key_other")))


def test_list_is_oldest_first(key_store: KeyStore) -> None:
    later, _ = make_key("later", created=T0 + timedelta(seconds=1))
    first, _ = make_key("first")
    run(key_store.insert(later))
    run(key_store.insert(first))
    assert [key.name for key in run(key_store.list_all())] == ["first", "later"]


def test_rotation_replaces_the_hash_until_revoked(key_store: KeyStore) -> None:
    key, _ = make_key("rotating")
    run(key_store.insert(key))
    new = api_keys.rotated(key, api_keys.new_secret(), PEPPER)
    assert run(key_store.set_secret(new))
    assert run(key_store.find_by_hash(key.key_hash)) is None
    assert run(key_store.find_by_hash(new.key_hash)) == new

    assert run(key_store.revoke(key.id, T0))
    assert not run(key_store.revoke(key.id, T0 + timedelta(seconds=1))), "already revoked"
    stored = run(key_store.get(key.id))
    assert stored is not None and stored.revoked_at == T0
    again = api_keys.rotated(new, api_keys.new_secret(), PEPPER)
    assert not run(key_store.set_secret(again))
    assert not run(key_store.revoke("key_missing", T0))


def test_touch_writes_only_when_the_last_use_is_older(key_store: KeyStore) -> None:
    key, _ = make_key("busy")
    run(key_store.insert(key))
    run(key_store.touch(key.id, T0, T0 - timedelta(minutes=1)))
    run(key_store.touch(key.id, T0 + timedelta(seconds=30), T0 - timedelta(seconds=30)))
    stored = run(key_store.get(key.id))
    assert stored is not None and stored.last_used_at == T0
    run(key_store.touch(key.id, T0 + timedelta(minutes=1), T0))
    stored = run(key_store.get(key.id))
    assert stored is not None and stored.last_used_at == T0 + timedelta(minutes=1)
