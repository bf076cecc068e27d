"""Fixtures for the Cloudflare adapters on the session's fake R2 (tests/conftest.py)."""

import pytest

from tests.edge_worker.cloudflare.fake_r2 import FakeR2


@pytest.fixture
def bucket(fake_r2: FakeR2) -> str:
    return fake_r2.new_bucket()
