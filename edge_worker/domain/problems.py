"""`Problem`: what went wrong for the client, as a code, a message and details.

Raised by the rules and use cases; only the HTTP layer (`edge_worker.http.errors`) turns it
into a response, with the status each `ErrorCode` carries (docs/API.md#errors).
"""

from typing import Any

from contracts import ErrorCode


class Problem(Exception):
    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
