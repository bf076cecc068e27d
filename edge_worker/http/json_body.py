"""JSON request bodies within a nesting limit, measured before any decoder recurses.

msgspec and pydantic decode recursively: a body of a hundred thousand `[` exhausts the
stack (a RecursionError, so a 500) well inside the body size limit. The depth is measured
on the raw bytes first, so deep nesting is a 400 like any other malformed body; the size
limit stays the app's `request_max_body_size` (413).
"""

import re
from typing import Any

from litestar import Request
from litestar.exceptions import ClientException

MAX_JSON_DEPTH = 32

# A whole string (its brackets are text), a bracket, or a quote that opens no whole string.
# Scanning stops at that last one: the body is malformed, and going on would rescan the
# rest of the body from every later quote.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]|"')


def check_depth(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse arrays and objects nested deeper than `max_depth`, in one pass over `body`."""
    depth = 0
    for token in _TOKENS.finditer(body):
        text = token.group()
        if text in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise ClientException(f"JSON body is nested deeper than {max_depth} levels")
        elif text in (b"]", b"}"):
            depth -= 1
        elif text == b'"':
            return


class DepthCheckedRequest(Request[Any, Any, Any]):
    """The app's request class: every JSON body Litestar decodes is depth-checked first."""

    async def json(self) -> Any:
        check_depth(await self.body())
        return await super().json()
