"""A logger that tags every record with the message's and the job's fields."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any


class JobLog(logging.LoggerAdapter[logging.Logger]):
    """Adds job fields to every record, merged with the call's own `extra`.

    The standard adapter replaces a call's `extra` instead of merging it (until 3.13).
    """

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs

    def with_fields(self, **fields: object) -> JobLog:
        """A logger with these fields added, for the next phase of the same message."""
        return JobLog(self.logger, {**(self.extra or {}), **fields})
