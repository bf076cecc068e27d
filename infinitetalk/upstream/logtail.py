"""The last lines of upstream's output, kept for the agent's log when a run fails."""

import logging
from collections import deque

TAIL_LINES = 40


class LogTail:
    """Collects text as it streams in; a tqdm redraw (carriage returns) keeps its last state."""

    def __init__(
        self, logger: logging.Logger, level: int = logging.DEBUG, maxlen: int = TAIL_LINES
    ) -> None:
        self._logger = logger
        self._level = level
        self._lines: deque[str] = deque(maxlen=maxlen)
        self._partial = ""

    def feed(self, text: str) -> None:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self.add(_last_redraw(line))

    def add(self, line: str) -> None:
        if line.strip():
            self._lines.append(line)
            self._logger.log(self._level, line)

    def lines(self) -> list[str]:
        pending = _last_redraw(self._partial)
        return [*self._lines, pending] if pending.strip() else list(self._lines)


def _last_redraw(line: str) -> str:
    redraws = [part for part in line.split("\r") if part.strip()]
    return redraws[-1].rstrip() if redraws else ""
