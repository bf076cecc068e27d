"""Lets upstream InfiniteTalk import on Python 3.11+, where it was written for 3.10.

`wan/multitalk.py` does `from inspect import ArgSpec` (never used); `inspect.ArgSpec` was
removed in Python 3.11. `install()` puts back the namedtuple it was, before upstream is
imported: the resident worker calls it before `import wan`, and subprocess mode gets it
through `site/sitecustomize.py`. Standard library only, so that file can load
this one by path into any interpreter, even one without this project installed.
"""

import inspect
from collections import namedtuple


def install() -> None:
    """Idempotent; leaves an interpreter that still has `inspect.ArgSpec` untouched."""
    if not hasattr(inspect, "ArgSpec"):
        inspect.ArgSpec = namedtuple(  # type: ignore[attr-defined,misc]
            "ArgSpec", ["args", "varargs", "keywords", "defaults"]
        )
