"""The bridge Worker for the tests here, shared with tests/contracts_ports (one per session)."""

import pytest

from tests.cf_bridge.bridge import RunningBridge, reset_d1, shared_bridge


@pytest.fixture(scope="session")
def bridge() -> RunningBridge:
    return shared_bridge()


@pytest.fixture
def clean_bridge(bridge: RunningBridge) -> RunningBridge:
    reset_d1(bridge.url)
    return bridge
