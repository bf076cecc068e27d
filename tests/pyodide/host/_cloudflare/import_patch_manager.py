"""Run chosen modules' imports inside context managers, and callbacks around the first request.

The runtime SDK registers its patches here by module name: a create patch wraps the
loader's `create_module` (extension modules), an exec patch wraps `exec_module`; a module
that was imported gets its after-snapshot and before-first-request callbacks. The finder
sits first on `sys.meta_path` only while the top level runs, as in workerd.
"""

import importlib.abc
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial, wraps
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

Handler = Callable[[ModuleType], None]
ContextFactory = Callable[[Any], AbstractContextManager[Any]]


@dataclass
class Patch:
    create: ContextFactory = nullcontext
    exec: ContextFactory = nullcontext
    after_snapshot: Handler | None = None
    before_first_request: Handler | None = None


patches: dict[str, Patch] = {}
after_snapshot_handlers: list[Callable[[], None]] = []
before_first_request_handlers: list[Callable[[], None]] = []
blocked: dict[str, ModuleType] = {}  # the originals of the modules block_calls wraps
_state = {"in_request": False}


def _register(slot: str, name: str, value: Any = None) -> Any:
    if value is None:
        return partial(_register, slot, name)
    setattr(patches.setdefault(name, Patch()), slot, value)
    return value


def register_create_patch(name: str, context_manager: ContextFactory | None = None) -> Any:
    return _register("create", name, context_manager)


def register_exec_patch(name: str, context_manager: ContextFactory | None = None) -> Any:
    return _register("exec", name, context_manager)


def register_after_snapshot(name: str, handler: Handler | None = None) -> Any:
    return _register("after_snapshot", name, handler)


def register_before_first_request(name: str, handler: Handler | None = None) -> Any:
    return _register("before_first_request", name, handler)


class _PatchedLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, patch: Patch) -> None:
        self._loader = loader
        self._patch = patch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        with self._patch.create(spec):
            return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if self._patch.after_snapshot is not None:
            after_snapshot_handlers.append(partial(self._patch.after_snapshot, module))
        if self._patch.before_first_request is not None:
            before_first_request_handlers.append(partial(self._patch.before_first_request, module))
        with self._patch.exec(module):
            self._loader.exec_module(module)


class PatchFinder(importlib.abc.MetaPathFinder):
    """Finds a patched module with the other finders and wraps the loader it got."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        patch = patches.get(fullname)
        if patch is None:
            return None
        for finder in _other_finders():
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                spec.loader = _PatchedLoader(spec.loader, patch)
                return spec
        return None


def _other_finders() -> Iterator[Any]:
    return (finder for finder in sys.meta_path if not isinstance(finder, PatchFinder))


def install_import_patch_manager() -> None:
    sys.meta_path.insert(0, PatchFinder())


def remove_import_patch_manager() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, PatchFinder)]
    sys.modules.update(blocked)
    _state["in_request"] = True


class _BlockedModule(ModuleType):
    """A module whose functions refuse to run until the first request (their state was
    seeded from the runtime's stand-in randomness)."""

    def __init__(self, module: ModuleType, allowlist: tuple[str, ...]) -> None:
        super().__init__(module.__name__)
        object.__setattr__(self, "_blocked_module", module)
        object.__setattr__(self, "_blocked_allowlist", allowlist)

    def __getattribute__(self, name: str) -> Any:
        module = object.__getattribute__(self, "_blocked_module")
        value = getattr(module, name)
        allowlist = object.__getattribute__(self, "_blocked_allowlist")
        if _state["in_request"] or not callable(value) or name in allowlist:
            return value

        @wraps(value)
        def refuse(*args: Any, **kwargs: Any) -> Any:
            if not _state["in_request"]:
                raise RuntimeError(
                    f"Cannot use {module.__name__}.{name}() outside of request context"
                )
            return value(*args, **kwargs)

        return refuse

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_blocked_module"), name, value)


def block_calls(module: ModuleType, *, allowlist: tuple[str, ...] = ()) -> None:
    blocked[module.__name__] = module
    sys.modules[module.__name__] = _BlockedModule(module, allowlist)
