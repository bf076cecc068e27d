"""Plain-text tables for the command lines (`avatar webhooks deliveries`, `avatar-admin
pool`): left-aligned columns two spaces apart; an empty cell shows `-`, so that a missing
value reads as missing rather than as a shifted column."""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

EMPTY = "-"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [list(header), *([cell or EMPTY for cell in row] for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]


def timestamp(at: datetime | None) -> str:
    """To the second, in UTC, as one word (a row still splits on spaces); empty for None."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else ""
