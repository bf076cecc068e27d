"""workerd's top-level randomness rule, around the Worker's import and its first request.

Before the top level: `os.urandom` raises `OSError(29)`, the JS guard refuses every other
read, and the patch finder is installed, so only grants from registered import patches get
through. The standard library's own import-time seeding is allowed as in workerd: `random`
seeds itself (its functions then refuse to run until the first request, when it is seeded
again) and `_random.Random.seed(None)` refuses at the top level instead of aborting.
Before the first request every refusal is lifted and the registered callbacks run.

workerd sets this up before Pyodide's own start-up code runs; here Pyodide has started
already, so modules it imported on the way (`random` among them) get the same treatment
when the top level begins.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from types import ModuleType
from typing import Any

import _entropy_guard  # type: ignore[import-not-found]

from _cloudflare.allow_entropy import raise_unless_entropy_allowed, refuse_urandom, restore_urandom
from _cloudflare.import_patch_manager import (
    after_snapshot_handlers,
    before_first_request_handlers,
    block_calls,
    install_import_patch_manager,
    register_before_first_request,
    register_exec_patch,
    remove_import_patch_manager,
)

# Reads that seeding `random` makes on import (its Mersenne Twister state, 2,496 bytes, in
# reads of at most 256); the guard counts them like any other grant.
RANDOM_SEED_READS = 10


def _block_random(random: ModuleType) -> None:
    block_calls(random, allowlist=("Random", "SystemRandom"))


def _reseed_random(random: ModuleType) -> None:
    random.seed()


@register_exec_patch("random")
@contextmanager
def _random_import(random: ModuleType) -> Iterator[None]:
    _entropy_guard.allowed = RANDOM_SEED_READS
    yield
    _entropy_guard.allowed = 0
    _block_random(random)


register_before_first_request("random", _reseed_random)

_original_seed: dict[str, Any] = {}


def _refuse_unseeded(module: ModuleType) -> None:
    seed = module.Random.seed
    _original_seed["seed"] = seed

    def refusing_seed(self: Any, value: Any = None) -> None:
        if value is None:
            raise_unless_entropy_allowed()
        seed(self, value)

    module.Random.seed = refusing_seed


def _restore_seed(module: ModuleType) -> None:
    module.Random.seed = _original_seed["seed"]


@register_exec_patch("_random")
@contextmanager
def _random_c_import(module: ModuleType) -> Iterator[None]:
    yield
    _refuse_unseeded(module)


register_before_first_request("_random", _restore_seed)


def before_top_level() -> None:
    refuse_urandom()
    install_import_patch_manager()
    if "_random" in sys.modules:
        _refuse_unseeded(sys.modules["_random"])
        before_first_request_handlers.append(partial(_restore_seed, sys.modules["_random"]))
    if "random" in sys.modules:
        random = sys.modules["random"]
        _block_random(random)
        before_first_request_handlers.append(partial(_reseed_random, random))


def after_snapshot() -> None:
    for handler in after_snapshot_handlers:
        handler()


def before_first_request() -> None:
    _entropy_guard.open = True
    restore_urandom()
    remove_import_patch_manager()
    for handler in before_first_request_handlers:
        handler()
