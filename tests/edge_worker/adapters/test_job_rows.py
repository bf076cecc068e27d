"""job_rows: the time text and the list cursor that every SQL store shares."""

import re
from datetime import UTC, datetime, timedelta

from edge_worker.adapters import job_rows
from tests.contracts_ports.test_job_store_contract import make_job

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_format_and_parse_time_keep_microseconds_and_order() -> None:
    stamps = [T0 + timedelta(microseconds=n) for n in (0, 1, 10, 999_999, 1_000_000)]
    texts = [job_rows.format_time(s) for s in stamps]
    assert [job_rows.parse_time(t) for t in texts] == stamps
    assert texts == sorted(texts)
    assert len({len(t) for t in texts}) == 1


def test_cursor_is_opaque_urlsafe_text_naming_the_last_job() -> None:
    job = make_job("job-1", created=T0)
    cursor = job_rows.encode_cursor(job)
    assert re.fullmatch(r"[A-Za-z0-9_=-]+", cursor)
    created, job_id = job_rows.decode_cursor(cursor)
    assert job_id == "job-1"
    assert job_rows.parse_time(created) == T0
