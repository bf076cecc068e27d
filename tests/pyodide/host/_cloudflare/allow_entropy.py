"""Counted grants of randomness while the Worker's top level runs.

Until the first request workerd refuses every read of randomness, except a counted number
that an import patch grants around a module whose import needs one (a Rust hash map's seed,
litestar's generated handler name). The count lives in the host's JS guard
(`_entropy_guard`, registered by worker_host.mjs), which every read of `randomFillSync`
consults, so a grant covers reads from C as well as from Python.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import _entropy_guard  # type: ignore[import-not-found]

EIO = 29


def raise_unless_entropy_allowed() -> None:
    """What `os.urandom` does at the top level: the runtime's refusal, as a Python error."""
    if not _entropy_guard.open and _entropy_guard.allowed <= 0:
        raise OSError(EIO, "Cannot get entropy outside of request context")


@contextmanager
def allow_bad_entropy_calls(count: int) -> Iterator[None]:
    """Grant exactly `count` reads; a grant left unused is an error, as in workerd, so a
    patch that no longer matches its package fails here rather than in production."""
    previous = _entropy_guard.allowed
    _entropy_guard.allowed = count
    yield
    left = _entropy_guard.allowed
    if left > 0:
        raise RuntimeError(f"{left} unexpected leftover getentropy calls")
    _entropy_guard.allowed = previous


_real_urandom = os.urandom


def guarded_urandom(size: int) -> bytes:
    raise_unless_entropy_allowed()
    return _real_urandom(size)


def refuse_urandom() -> None:
    os.urandom = guarded_urandom


def restore_urandom() -> None:
    os.urandom = _real_urandom
