"""Binding results as Python values, whatever shape the runtime hands them back in.

From compatibility date 2026-04-21 the Worker runs the vendored workers-runtime-sdk, whose
binding wrapper converts arguments to JS and results to Python: plain JS objects arrive as
dicts, runtime objects (an `R2Object`) as wrappers with attribute access, JS null as None.
Without that wrapper the same results are raw `JsProxy` objects that need `.to_py()`, and a
newer Pyodide can hand back `jsnull` rather than None. These helpers accept every form, so
the adapters read results the same way whichever the runtime produced.
"""

from collections.abc import Mapping
from typing import Any

try:
    from pyodide.ffi import jsnull as _JSNULL
except ImportError:  # CPython, or a Pyodide that turns JS null into None itself
    _JSNULL = None


def to_py(value: Any) -> Any:
    """`value` as Python data: JsProxy objects converted, JS null as None, rest unchanged."""
    if value is _JSNULL:
        return None
    convert = getattr(value, "to_py", None)
    return convert() if callable(convert) else value


def field(value: Any, name: str) -> Any:
    """`value[name]` of a dict-like result, `value.name` of an object-like one; None when
    the result has no such field."""
    value = to_py(value)
    if isinstance(value, Mapping):
        return to_py(value.get(name))
    return to_py(getattr(value, name, None))


def row(value: Any) -> dict[str, Any]:
    """One result row as a plain dict with None for SQL NULL."""
    return {key: to_py(item) for key, item in to_py(value).items()}


def as_bytes(value: Any) -> bytes:
    """An `arrayBuffer()` result: a memoryview through the wrapper, a JsProxy without it."""
    to_bytes = getattr(value, "to_bytes", None)
    return to_bytes() if callable(to_bytes) else bytes(value)
