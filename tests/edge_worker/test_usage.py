"""`GET /usage` through the real local app, after jobs ran through the agent protocol
(and on the Worker: tests/pyodide/test_api.py collects these too)."""

from datetime import date, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import png_bytes, wav_bytes
from tests.edge_worker.conftest import AUTH, OTHER_AUTH, FakeClock, invalid_fields, submit
from tests.edge_worker.test_agent_api import RESULT, VIDEO, claim, post, upload
from tests.edge_worker.test_uploads import generate, uploaded


def complete(client: TestClient, job_id: str, video_seconds: float, gpu_seconds: float) -> None:
    grant = claim(client, job_id)
    upload(client, grant)
    result = {**RESULT, "size_bytes": len(VIDEO), "duration_seconds": video_seconds}
    body = {"claim_token": grant["claim_token"], "result": {**result, "gpu_seconds": gpu_seconds}}
    response = post(client, job_id, "complete", body)
    assert response.status_code == 200, response.text


def fail(client: TestClient, job_id: str) -> None:
    grant = claim(client, job_id)
    body = {"claim_token": grant["claim_token"], "code": "GENERATION_FAILED", "message": "x"}
    assert post(client, job_id, "fail", body).status_code == 200


def usage(client: TestClient, auth: dict[str, str] = AUTH, **query: str) -> dict[str, Any]:
    response = client.get("/usage", headers=auth, params=query)
    assert response.status_code == 200, response.text
    return response.json()


def test_usage_buckets_the_callers_jobs_by_day_and_quality(client: TestClient) -> None:
    done = submit(client, audio=("speech.wav", wav_bytes(1.5)))["job_id"]
    complete(client, done, video_seconds=1.5, gpu_seconds=12.25)
    fail(client, submit(client)["job_id"])
    grants = uploaded(client, audio=wav_bytes(2.0))
    assert generate(client, grants, quality="fast").status_code == 200
    submit(client, audio=("speech.wav", wav_bytes(3.0)))  # still pending: counted as created
    files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    other_job = client.post("/generate", headers=OTHER_AUTH, files=files, data={"prompt": "hi"})
    assert other_job.status_code == 200, other_job.text

    report = usage(client)
    today = report["last_day"]  # by default: today, and the 29 days before it
    first = date.fromisoformat(today) - timedelta(days=29)
    assert report["first_day"] == first.isoformat()
    assert report["buckets"] == [
        {
            "day": today,
            "quality": "fast",
            "jobs_created": 1,
            "jobs_completed": 0,
            "jobs_failed": 0,
            "audio_seconds": 2.0,  # measured from the uploaded object's header
            "video_seconds": 0.0,
            "gpu_seconds": 0.0,
        },
        {
            "day": today,
            "quality": "standard",
            "jobs_created": 3,
            "jobs_completed": 1,
            "jobs_failed": 1,
            "audio_seconds": 5.0,
            "video_seconds": 1.5,
            "gpu_seconds": 12.25,
        },
    ]
    other = usage(client, OTHER_AUTH)["buckets"]
    assert [(b["jobs_created"], b["audio_seconds"]) for b in other] == [(1, 0.5)]


def test_a_period_has_whole_days_and_leaves_other_days_out(
    client: TestClient, clock: FakeClock
) -> None:
    submit(client)
    yesterday = clock.current.date()
    clock.advance(days=1)
    submit(client)
    submit(client)
    today = clock.current.date()
    report = usage(client, **{"from": yesterday.isoformat(), "to": yesterday.isoformat()})
    assert [b["jobs_created"] for b in report["buckets"]] == [1]
    days = usage(client, **{"from": yesterday.isoformat()})
    assert days["last_day"] == today.isoformat()
    assert [(b["day"], b["jobs_created"]) for b in days["buckets"]] == [
        (yesterday.isoformat(), 1),
        (today.isoformat(), 2),
    ]
    assert usage(client, to=(yesterday - timedelta(days=1)).isoformat())["buckets"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-1-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"to": "\uff12\uff10\uff12\uff16-01-01"}, "to"),  # fullwidth digits
        ({"from": "2026-02-02", "to": "2026-02-01"}, "from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "from"),  # 367 days
    ],
)
def test_bad_periods_are_invalid_input(
    client: TestClient, query: dict[str, str], field: str
) -> None:
    assert invalid_fields(client.get("/usage", headers=AUTH, params=query)) == [field]


def test_a_year_and_a_leap_day_is_the_longest_period(client: TestClient) -> None:
    report = usage(client, **{"from": "2024-01-01", "to": "2024-12-31"})
    assert (report["first_day"], report["buckets"]) == ("2024-01-01", [])


def test_usage_needs_an_api_key(client: TestClient) -> None:
    assert client.get("/usage").status_code == 401
