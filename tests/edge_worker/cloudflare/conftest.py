"""Fixtures for the Cloudflare adapters: one fake R2 (moto + R2's URL checks) per session."""

from collections.abc import Iterator

import pytest

from tests.edge_worker.cloudflare.fake_r2 import FakeR2, running_fake_r2


@pytest.fixture(scope="session")
def fake_r2() -> Iterator[FakeR2]:
    with running_fake_r2() as r2:
        yield r2


@pytest.fixture
def bucket(fake_r2: FakeR2) -> str:
    return fake_r2.new_bucket()
