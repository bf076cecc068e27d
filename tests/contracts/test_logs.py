"""JSON log lines: one object per record, extras included, secrets redacted."""

from __future__ import annotations

import io
import json
import logging

import pytest

from contracts.logs import REDACTED, configure_logging


@pytest.fixture
def restore_root() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_records_are_json_lines_with_extras_and_no_secrets(restore_root: object) -> None:
    stream = io.StringIO()
    configure_logging("INFO", secrets=["tok-123", 'q"uote', ""], stream=stream)
    log = logging.getLogger("gpu_agent.test")
    log.info("claimed %s", "job", extra={"job_id": "j1", "attempt": 2, "header": "Bearer tok-123"})
    log.debug("hidden")
    try:
        raise ValueError('boom q"uote')
    except ValueError:
        log.exception("crashed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert {k: first[k] for k in ("level", "logger", "msg", "job_id", "attempt")} == {
        "level": "INFO",
        "logger": "gpu_agent.test",
        "msg": "claimed job",
        "job_id": "j1",
        "attempt": 2,
    }
    assert first["ts"].endswith("+00:00")
    assert first["header"] == f"Bearer {REDACTED}"
    second = json.loads(lines[1])
    assert "ValueError" in second["exc"] and "uote" not in second["exc"]
    assert logging.getLogger("httpx").level == logging.WARNING
