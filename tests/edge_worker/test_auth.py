"""Bearer auth for clients and agents."""

import hashlib

import pytest

from contracts import ErrorCode
from edge_worker.auth import (
    authenticate_token,
    bearer_token,
    bootstrap_owner,
    client_token,
    matches_any,
    owner_id,
)
from edge_worker.domain.problems import Problem

KEYS = ("key-one-0123456789", "key-two-0123456789")
PEPPER = "pepper-0123456789"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer ", None),
        ("", None),
        ("abc", None),
    ],
)
def test_bearer_token_parsing(header: str, expected: str | None) -> None:
    assert bearer_token({"authorization": header}) == expected


def test_matches_any_checks_every_key() -> None:
    assert matches_any(KEYS[1], KEYS)
    assert not matches_any("nope", KEYS)
    assert not matches_any("x", ())


def test_client_gets_a_stable_owner_id_that_is_not_the_key() -> None:
    owner = bootstrap_owner(client_token({"authorization": f"Bearer {KEYS[0]}"}), KEYS, PEPPER)
    assert owner == owner_id(KEYS[0], PEPPER)
    assert len(owner) == 32
    assert KEYS[0] not in owner
    assert owner != owner_id(KEYS[1], PEPPER)


def test_the_owner_id_is_keyed_by_the_pepper() -> None:
    """Without the pepper an owner id cannot be recomputed from a guessed key."""
    assert owner_id(KEYS[0], PEPPER) != hashlib.sha256(KEYS[0].encode()).hexdigest()[:32]
    assert owner_id(KEYS[0], PEPPER) != owner_id(KEYS[0], "another-pepper-0123")


def test_a_client_without_a_key_is_unauthorized() -> None:
    with pytest.raises(Problem) as err:
        client_token({})
    assert err.value.code is ErrorCode.UNAUTHORIZED


def test_a_key_not_in_api_keys_has_no_bootstrap_owner() -> None:
    """The key store decides for every other token."""
    assert bootstrap_owner("wrong-key-000000", KEYS, PEPPER) is None


def test_shared_token_check() -> None:
    authenticate_token({"authorization": "Bearer agent-secret"}, "agent-secret", "agent token")
    for headers in ({}, {"authorization": "Bearer client-key"}):
        with pytest.raises(Problem) as err:
            authenticate_token(headers, "agent-secret", "agent token")
        assert "agent token" in err.value.message
