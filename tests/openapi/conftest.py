"""The live local stack of tests/e2e, for the OpenAPI document's tests."""

# ruff: noqa: F401 (importing the fixtures is what makes them available here)

from tests.e2e.conftest import stack, stack_factory
