"""Pick an engine by name, as the agent's `ENGINE` setting names it (DESIGN.md section 7)."""

from collections.abc import Callable

from infinitetalk.engine import Engine
from infinitetalk.preview import PreviewEngine

_ENGINES: dict[str, Callable[[], Engine]] = {PreviewEngine.name: PreviewEngine}


def create_engine(name: str) -> Engine:
    """Build the named engine; an unknown name fails loudly, listing the valid ones."""
    try:
        factory = _ENGINES[name]
    except KeyError:
        valid = ", ".join(sorted(_ENGINES))
        raise ValueError(f"unknown engine {name!r}; valid engines: {valid}") from None
    return factory()
