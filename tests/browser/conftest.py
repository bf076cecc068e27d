"""The live local stack of tests/e2e, for the playground in a real browser."""

from tests.e2e.conftest import stack_factory as stack_factory  # the same fixture
