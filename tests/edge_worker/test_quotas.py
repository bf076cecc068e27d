"""Quotas and fair queueing through the real app: the rate limit of `/generate` and
`/uploads`, the unfinished-job cap, the daily video seconds, and admission at the edge."""

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from contracts import KeyCreateRequest, QueueMessage
from contracts.queue import PulledMessage
from edge_worker.local import LocalRuntime, build_local, local_settings
from tests.conftest import png_bytes, run, wav_bytes
from tests.edge_worker.conftest import AUTH, ENV, OTHER_AUTH, PULL_URL, QUEUE_AUTH, FakeClock
from tests.edge_worker.test_agent_api import RESULT, VIDEO, claim, post, upload

UPLOAD = {"image": {"content_type": "image/png", "size_bytes": 100}}


def edge(tmp_path: Path, clock: FakeClock, **env: str) -> LocalRuntime:
    return build_local(
        local_settings({**ENV, **env}, "testserver.local", 80), tmp_path / "data", clock
    )


@pytest.fixture
def limited(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[LocalRuntime, TestClient]]:
    """An edge with small limits: 3 requests a minute, 2 unfinished and 2 queued jobs a key."""
    runtime = edge(
        tmp_path,
        clock,
        RATE_LIMIT_PER_MINUTE="3",
        MAX_ACTIVE_JOBS_PER_KEY="2",
        QUEUED_JOBS_PER_KEY="2",
    )
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        yield runtime, client
    runtime.close()


def stored_key(runtime: LocalRuntime, **limits: Any) -> dict[str, str]:
    created = run(runtime.use_cases.api_keys.create(KeyCreateRequest(name="tenant", **limits)))
    return {"Authorization": f"Bearer {created.key}"}


def generate(client: TestClient, headers: dict[str, str]) -> Any:
    files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    data = {"prompt": "A person talking", "resolution": "480p"}
    return client.post("/generate", headers=headers, files=files, data=data)


def refusal(response: Any) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "RATE_LIMITED"
    assert int(response.headers["retry-after"]) >= 1
    details: dict[str, Any] = error["details"]
    return details


def test_the_rate_limit_refuses_the_request_over_it_with_headers(
    limited: tuple[LocalRuntime, TestClient], clock: FakeClock
) -> None:
    _, client = limited
    answers = [client.post("/uploads", json=UPLOAD, headers=AUTH) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.headers["ratelimit-policy"] == "3;w=60" for a in answers)
    assert [a.headers["ratelimit"] for a in answers] == [
        "limit=3, remaining=2, reset=20",
        "limit=3, remaining=1, reset=40",
        "limit=3, remaining=0, reset=60",
    ]
    over = client.post("/uploads", json=UPLOAD, headers=AUTH)
    assert refusal(over) == {"limit": "requests_per_minute", "allowed": 3, "used": 3}
    assert over.headers["retry-after"] == "20"
    assert over.headers["ratelimit"] == "limit=3, remaining=0, reset=60"
    assert over.headers["ratelimit-policy"] == "3;w=60"
    # /generate shares the bucket; another key has its own.
    assert refusal(generate(client, AUTH))["limit"] == "requests_per_minute"
    assert client.post("/uploads", json=UPLOAD, headers=OTHER_AUTH).status_code == 200
    # Reads are not limited.
    assert client.get("/jobs", headers=AUTH).status_code == 200
    clock.advance(seconds=20)
    again = client.post("/uploads", json=UPLOAD, headers=AUTH)
    assert again.status_code == 200
    assert again.headers["ratelimit"].startswith("limit=3, remaining=0,")


def test_a_stored_keys_own_rate_limit_overrides_the_default(
    limited: tuple[LocalRuntime, TestClient],
) -> None:
    runtime, client = limited
    headers = stored_key(runtime, rate_limit_per_minute=1)
    first = client.post("/uploads", json=UPLOAD, headers=headers)
    assert first.headers["ratelimit-policy"] == "1;w=60"
    over = client.post("/uploads", json=UPLOAD, headers=headers)
    assert refusal(over) == {"limit": "requests_per_minute", "allowed": 1, "used": 1}
    assert over.headers["retry-after"] == "60"


def test_the_cap_on_unfinished_jobs_frees_up_as_jobs_end(tmp_path: Path, clock: FakeClock) -> None:
    runtime = edge(tmp_path, clock, MAX_ACTIVE_JOBS_PER_KEY="2")
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        first = generate(client, AUTH).json()
        assert generate(client, AUTH).status_code == 200
        over = generate(client, AUTH)
        assert refusal(over) == {"limit": "active_jobs", "allowed": 2, "used": 2}
        assert over.headers["retry-after"] == "30"
        assert over.headers["ratelimit"].startswith("limit=60, remaining=57,")
        assert generate(client, OTHER_AUTH).status_code == 200
        assert client.delete(f"/jobs/{first['job_id']}", headers=AUTH).status_code == 200
        assert generate(client, AUTH).status_code == 200
        stored = stored_key(runtime, max_active_jobs=1)
        assert generate(client, stored).status_code == 200
        assert refusal(generate(client, stored))["allowed"] == 1
    runtime.close()


def test_the_daily_video_quota_counts_completed_video_until_utc_midnight(
    limited: tuple[LocalRuntime, TestClient], clock: FakeClock
) -> None:
    runtime, client = limited
    headers = stored_key(runtime, daily_video_seconds=1.5, rate_limit_per_minute=100)
    job = generate(client, headers).json()
    grant = claim(client, job["job_id"])
    upload(client, grant)
    result = {**RESULT, "size_bytes": len(VIDEO), "duration_seconds": 2.25}
    done = post(
        client, job["job_id"], "complete", {"claim_token": grant["claim_token"], "result": result}
    )
    assert done.status_code == 200, done.text
    over = generate(client, headers)
    assert refusal(over) == {"limit": "daily_video_seconds", "allowed": 1.5, "used": 2.25}
    midnight = datetime.combine(clock.current.date() + timedelta(days=1), datetime.min.time(), UTC)
    wait = int(over.headers["retry-after"])
    assert abs(wait - math.ceil((midnight - clock.current).total_seconds())) <= 1
    # Bootstrap keys have no daily quota.
    assert generate(client, AUTH).status_code == 200
    clock.advance(seconds=wait)
    assert generate(client, headers).status_code == 200


def pulled_ids(client: TestClient) -> list[str]:
    answer = client.post(PULL_URL, json={"batch_size": 100}, headers=QUEUE_AUTH).json()
    return [
        QueueMessage.decode_pulled(PulledMessage.model_validate(message)).job_id
        for message in answer["result"]["messages"]
    ]


def test_one_keys_backlog_does_not_starve_another_keys_job(
    tmp_path: Path, clock: FakeClock
) -> None:
    runtime = edge(tmp_path, clock, RATE_LIMIT_PER_MINUTE="100", MAX_ACTIVE_JOBS_PER_KEY="50")
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        backlog = [generate(client, AUTH).json() for _ in range(30)]
        single = generate(client, OTHER_AUTH).json()
        assert [job["queue_position"] for job in backlog[:6]] == [0, 1, 2, 3, 4, 5]
        assert single["queue_position"] == 4  # behind the first key's 4 queued jobs only
        last = client.get(f"/status/{backlog[-1]['job_id']}", headers=AUTH).json()
        assert last["queue_position"] == 30

        claimed: list[str] = []
        while len(claimed) < 31:
            for job_id in pulled_ids(client):
                grant = claim(client, job_id)
                claimed.append(job_id)
                upload(client, grant)
                result = {**RESULT, "size_bytes": len(VIDEO)}
                post(
                    client,
                    job_id,
                    "complete",
                    {"claim_token": grant["claim_token"], "result": result},
                )
        assert claimed.index(single["job_id"]) == 4
        assert sorted(claimed) == sorted([job["job_id"] for job in backlog] + [single["job_id"]])
        assert claimed[:4] + claimed[5:] == [job["job_id"] for job in backlog]
    runtime.close()


def test_the_sweep_admits_held_jobs_a_claim_did_not(tmp_path: Path, clock: FakeClock) -> None:
    runtime = edge(tmp_path, clock, QUEUED_JOBS_PER_KEY="1")
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        first, second = (generate(client, AUTH).json() for _ in range(2))
        assert pulled_ids(client) == [first["job_id"]]
        assert client.delete(f"/jobs/{first['job_id']}", headers=AUTH).status_code == 200
        report = run(runtime.use_cases.maintenance.sweep())
        assert report.admitted_held == 1
        assert pulled_ids(client) == [second["job_id"]]
        assert run(runtime.use_cases.maintenance.sweep()).admitted_held == 0
    runtime.close()
