"""`Problem`: what went wrong for the client, as a code, a message and details.

Raised by the rules and use cases; only the HTTP layer (`edge_worker.http.errors`) turns it
into a response, with the status each `ErrorCode` carries (docs/API.md#errors).
"""

from pydantic import BaseModel

from contracts import ErrorCode
from contracts.errors import FieldError, FieldErrors, details_of


class Problem(Exception):
    def __init__(self, code: ErrorCode, message: str, details: BaseModel | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details_of(code, details)


def invalid_input(message: str, field: str | None = None) -> Problem:
    """`INVALID_INPUT` about one field (None: the request as a whole)."""
    return invalid_fields([FieldError(field=field, message=message)], message)


def invalid_fields(errors: list[FieldError], message: str | None = None) -> Problem:
    """`INVALID_INPUT` listing every problem a validator found; the message names the first."""
    if message is None:
        first = errors[0]
        message = f"{first.field}: {first.message}" if first.field else first.message
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
    return Problem(ErrorCode.INVALID_INPUT, message, FieldErrors(errors=errors))
