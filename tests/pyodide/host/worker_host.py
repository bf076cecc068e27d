"""The Python half of the host (runs inside Pyodide): import the Worker's main module and
call its `Default` entrypoint the way workerd does, timing both and recording which modules
each request imports for the first time.

workerd imports the main module with the randomness rule in force, then, per event,
constructs `Default(ctx, env)` and calls the handler: `fetch` with its arguments converted
by the SDK's `python_from_rpc` and its result by `python_to_rpc`, extra arguments dropped
(`relaxed_call`); other handlers, such as `scheduled(controller, env, ctx)` and
`queue(batch, env, ctx)`, with the JS values as they are.
"""

import importlib
import sys
import time
from typing import Any

from _cloudflare import rules
from pyodide.code import relaxed_call

_state: dict[str, Any] = {"main": None, "requests": [], "first_request_done": False}


def _module_names() -> set[str]:
    return set(sys.modules)


def import_main(name: str) -> dict[str, Any]:
    """Import the main module under the top-level rule; its timing and what it loaded."""
    before = _module_names()
    started = time.perf_counter()
    main = importlib.import_module(name)
    elapsed = time.perf_counter() - started
    rules.after_snapshot()
    from workers import WorkerEntrypoint

    default = getattr(main, "Default", None)
    if not (isinstance(default, type) and issubclass(default, WorkerEntrypoint)):
        raise TypeError(f"{name} exports no WorkerEntrypoint subclass named Default")
    _state["main"] = main
    return {
        "python": sys.version,
        "import_seconds": elapsed,
        "modules": sorted(_module_names() - before),
    }


async def _handle(call: Any) -> Any:
    if not _state["first_request_done"]:
        rules.before_first_request()
        _state["first_request_done"] = True
    before = _module_names()
    started = time.perf_counter()
    try:
        return await call()
    finally:
        _state["requests"].append(
            {
                "seconds": time.perf_counter() - started,
                "new_modules": sorted(_module_names() - before),
            }
        )


async def fetch(request: Any, env: Any, ctx: Any) -> Any:
    from workers import python_from_rpc, python_to_rpc

    entry = _state["main"].Default(ctx, env)

    async def call() -> Any:
        args = [python_from_rpc(value) for value in (request, env, ctx)]
        return python_to_rpc(await relaxed_call(entry.fetch, *args))

    return await _handle(call)


async def scheduled(controller: Any, env: Any, ctx: Any) -> None:
    entry = _state["main"].Default(ctx, env)

    async def call() -> None:
        await relaxed_call(entry.scheduled, controller, env, ctx)

    await _handle(call)


async def queue(batch: Any, env: Any, ctx: Any) -> None:
    """A queue consumer's event: `Default.queue(batch, env, ctx)` with the JS values as they
    are (the SDK's entrypoint wraps the batch, as in workerd)."""
    entry = _state["main"].Default(ctx, env)

    async def call() -> None:
        await relaxed_call(entry.queue, batch, env, ctx)

    await _handle(call)


def requests() -> list[dict[str, Any]]:
    """Per event so far: its duration and the modules it imported for the first time."""
    return _state["requests"]


def loaded_files() -> list[str]:
    """Every loaded module's file, to tell which bundled packages the Worker used."""
    return sorted(
        {
            path
            for module in list(sys.modules.values())
            if (path := getattr(module, "__file__", None))
        }
    )
