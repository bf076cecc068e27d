"""Structured logs for the edge and the agent: one JSON object per line, secrets redacted.

Log collectors (RunPod, Docker) parse lines, so every record is self-contained:
`ts`, `level`, `logger`, `msg`, the record's `extra` fields and, for errors, `exc`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)
REDACTED = "[REDACTED]"
# Libraries whose INFO lines print full URLs, i.e. the signatures of signed URLs.
_QUIET_LOGGERS = ("httpx", "httpcore")


def _json(value: object) -> str:
    """Compact JSON (UTF-8, not ASCII-escaped); what msgspec cannot encode is written as str().

    msgspec rather than json.dumps: the edge logs every request, and this is its cost."""
    return msgspec.json.encode(value, enc_hook=str).decode()


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line and blanks out any known secret value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Also the JSON-escaped spelling, which is what appears in the line.
        forms = {form for s in secrets if s for form in (s, _json(s)[1:-1])}
        self._secrets = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        line = _json(entry)
        for secret in self._secrets:
            line = line.replace(secret, REDACTED)
        return line


def configure_logging(
    level: int | str, *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler:
    """Replace the root handlers with one JSON handler; returns it (tests remove it)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
