"""`Range: bytes=...` of a signed blob GET: the one range a browser's `<video>` asks for when
it seeks (RFC 9110 section 14). Several ranges in one request are not served: like a
malformed header, they are ignored and the whole object is sent."""

import re
from dataclasses import dataclass

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(Exception):
    """The range starts past the end of the object (answered 416)."""


@dataclass(frozen=True)
class ByteRange:
    first: int
    last: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.first}-{self.last}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to send of an object of `size` bytes; None to send it whole."""
    match = _SINGLE_RANGE.fullmatch((header or "").strip())
    if match is None or match.groups() == ("", ""):
        return None
    first_text, last_text = match.groups()
    if not first_text:  # bytes=-n: the last n bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise Unsatisfiable
    return ByteRange(first, min(int(last_text), size - 1) if last_text else size - 1)
