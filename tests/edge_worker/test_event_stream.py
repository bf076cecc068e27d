"""`GET /jobs/{id}/events` and `GET /status/{id}` with `Prefer: wait`, over Litestar's test
client on the real local edge: a second thread moves the job through the agent API while
the stream (or the wait) is open, each step once the watcher has read the one before."""

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from contracts import JobView
from edge_worker.local import LocalRuntime, build_local, local_settings
from tests.edge_worker.conftest import AUTH, ENV, OTHER_AUTH, FakeClock, submit
from tests.edge_worker.test_agent_api import RESULT, VIDEO, claim, post, upload

QUICK = {"JOB_WATCH_POLL_SECONDS": "0.02", "EVENT_STREAM_MAX_SECONDS": "30"}


def parse_events(body: str) -> list[dict[str, str]]:
    """Each SSE message as its fields; a comment line becomes {"comment": ...}."""
    messages = []
    for block in body.split("\n\n"):
        if not block:
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            fields["comment" if name == "" else name] = value
        messages.append(fields)
    return messages


def events_of(body: str) -> list[tuple[str, JobView, int]]:
    return [
        (m["event"], JobView.model_validate_json(m["data"]), int(m["id"]))
        for m in parse_events(body)
        if "event" in m
    ]


class Watcher:
    """Records every view the watch reads, so the test can wait for a read of a state."""

    def __init__(self, runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[JobView] = []
        views = runtime.use_cases.views
        read = views.status

        async def recorded(owner: str, job_id: str) -> JobView:
            found = await read(owner, job_id)
            self.seen.append(found)
            return found

        monkeypatch.setattr(views, "status", recorded)

    def wait_for(self, matches: Callable[[JobView], bool]) -> None:
        deadline = time.monotonic() + 10
        while not any(matches(one) for one in list(self.seen)):
            assert time.monotonic() < deadline, [v.stage for v in self.seen]
            time.sleep(0.01)


def quick_runtime(tmp_path: Path, clock: FakeClock, **env: str) -> LocalRuntime:
    settings = local_settings({**ENV, **QUICK, **env}, "testserver.local", 80)
    return build_local(settings, tmp_path / "data", clock)


@pytest.fixture
def quick(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[LocalRuntime, TestClient]]:
    runtime = quick_runtime(tmp_path, clock)
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        yield runtime, client
    runtime.close()


def in_background(steps: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=steps)
    thread.start()
    return thread


def drive_to_completion(client: TestClient, job_id: str, watcher: Watcher) -> None:
    """pending -> processing (downloading) -> generating 40% -> 60% -> completed."""
    watcher.wait_for(lambda v: v.status == "pending")
    grant = claim(client, job_id)
    token = grant["claim_token"]
    watcher.wait_for(lambda v: v.stage == "downloading")
    for progress in (40, 60):
        body = {"claim_token": token, "progress": progress, "stage": "generating"}
        assert post(client, job_id, "progress", {**body, "eta_seconds": 100 - progress}).is_success
        watcher.wait_for(lambda v, p=progress: v.progress == p)
    upload(client, grant)
    result = {**RESULT, "size_bytes": len(VIDEO)}
    assert post(client, job_id, "complete", {"claim_token": token, "result": result}).is_success


def test_the_stream_follows_a_job_to_its_end(
    quick: tuple[LocalRuntime, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, client = quick
    job_id = submit(client)["job_id"]
    watcher = Watcher(runtime, monkeypatch)
    driver = in_background(lambda: drive_to_completion(client, job_id, watcher))
    response = client.get(f"/jobs/{job_id}/events", headers=AUTH)
    driver.join()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events = events_of(response.text)
    assert [(kind, v.status, v.stage, v.progress) for kind, v, _ in events] == [
        ("status", "pending", "queued", 0),
        ("status", "processing", "downloading", 0),
        ("status", "processing", "generating", 40),
        ("progress", "processing", "generating", 60),
        ("status", "completed", "done", 100),
    ]
    ids = [event_id for _, _, event_id in events]
    assert ids == sorted(set(ids))
    assert events[2][1].eta_seconds == 60 and events[0][1].queue_position == 0
    # The data is the job's view, as GET /status sends it (a result link is signed afresh).
    status = client.get(f"/status/{job_id}", headers=AUTH).json()
    final = events[-1][1].model_dump(mode="json")
    assert final.pop("result_url").startswith("http") and status.pop("result_url")
    assert final == status
    assert parse_events(response.text)[-1]["event"] == "status"  # nothing after the end


def test_a_finished_job_gets_its_one_event_and_the_stream_closes(client: TestClient) -> None:
    """The default settings: a stream that did not close would run for five minutes."""
    job_id = submit(client)["job_id"]
    assert client.delete(f"/jobs/{job_id}", headers=AUTH).is_success
    response = client.get(f"/jobs/{job_id}/events", headers=AUTH)
    ((kind, view, _),) = events_of(response.text)
    assert (kind, view.status, view.stage) == ("status", "cancelled", "cancelled")


def test_last_event_id_resumes_without_repeats(tmp_path: Path, clock: FakeClock) -> None:
    runtime = quick_runtime(tmp_path, clock, EVENT_STREAM_MAX_SECONDS="0.2")
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        job_id = submit(client)["job_id"]
        url = f"/jobs/{job_id}/events"
        ((kind, view, first_id),) = events_of(client.get(url, headers=AUTH).text)
        assert (kind, view.status) == ("status", "pending")
        # The lifetime ended; the client resumes and, nothing having changed, gets nothing.
        resumed = client.get(url, headers={**AUTH, "Last-Event-ID": str(first_id)})
        assert (resumed.status_code, events_of(resumed.text)) == (200, [])
        assert client.delete(f"/jobs/{job_id}", headers=AUTH).is_success
        again = client.get(url, headers={**AUTH, "Last-Event-ID": str(first_id)})
        ((kind, view, next_id),) = events_of(again.text)
        assert (kind, view.status, next_id > first_id) == ("status", "cancelled", True)
        final = client.get(url, headers={**AUTH, "Last-Event-ID": str(next_id)})
        assert final.text == ""  # the client has the end: the stream closes at once
    runtime.close()


def test_a_quiet_stream_sends_keepalives_until_its_lifetime_ends(
    tmp_path: Path, clock: FakeClock
) -> None:
    env = {"EVENT_KEEPALIVE_SECONDS": "0.05", "EVENT_STREAM_MAX_SECONDS": "0.4"}
    runtime = quick_runtime(tmp_path, clock, **env)
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        job_id = submit(client)["job_id"]
        started = time.monotonic()
        response = client.get(f"/jobs/{job_id}/events", headers=AUTH)
        assert 0.4 <= time.monotonic() - started < 5
    runtime.close()
    messages = parse_events(response.text)
    assert messages[0]["event"] == "status"
    assert messages[1:] and all(m == {"comment": "keepalive"} for m in messages[1:])
    assert ": keepalive\n\n" in response.text


def test_the_stream_is_authenticated_and_404s_like_status(client: TestClient) -> None:
    job_id = submit(client)["job_id"]
    for path in (f"/jobs/{job_id}/events", f"/status/{job_id}"):
        assert client.get(path).status_code == 401
        for headers, job in ((AUTH, "no-such-job"), (OTHER_AUTH, job_id)):
            response = client.get(path.replace(job_id, job), headers=headers)
            assert response.status_code == 404
            assert response.json()["error"] == {
                "code": "JOB_NOT_FOUND",
                "message": f"no job {job}",
                "details": {"job_id": job},
            }


def test_prefer_wait_answers_when_the_job_changes(
    quick: tuple[LocalRuntime, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, client = quick
    job_id = submit(client)["job_id"]
    watcher = Watcher(runtime, monkeypatch)

    def start() -> None:
        watcher.wait_for(lambda v: v.status == "pending")
        claim(client, job_id)

    driver = in_background(start)
    started = time.monotonic()
    response = client.get(f"/status/{job_id}", headers={**AUTH, "Prefer": "wait=30"})
    driver.join()
    assert time.monotonic() - started < 10
    assert response.headers["preference-applied"] == "wait=30"
    assert (response.json()["status"], response.json()["stage"]) == ("processing", "downloading")


def test_prefer_wait_answers_after_n_seconds_without_a_change(client: TestClient) -> None:
    job_id = submit(client)["job_id"]
    started = time.monotonic()
    response = client.get(f"/status/{job_id}", headers={**AUTH, "Prefer": "wait=1"})
    assert 1 <= time.monotonic() - started < 5
    assert response.headers["preference-applied"] == "wait=1"
    assert response.json()["status"] == "pending"


def status_with(client: TestClient, job_id: str, prefer: str) -> tuple[Any, float]:
    started = time.monotonic()
    response = client.get(f"/status/{job_id}", headers={**AUTH, "Prefer": prefer})
    assert response.status_code == 200
    return response, time.monotonic() - started


def test_prefer_wait_is_clamped_ignored_when_malformed_and_moot_for_finished_jobs(
    client: TestClient,
) -> None:
    pending = submit(client)["job_id"]
    response, elapsed = status_with(client, pending, "wait=soon")
    assert "preference-applied" not in response.headers and elapsed < 1
    cancelled = submit(client)["job_id"]
    assert client.delete(f"/jobs/{cancelled}", headers=AUTH).is_success
    response, elapsed = status_with(client, cancelled, "respond-async, wait=3600")
    assert response.headers["preference-applied"] == "wait=60" and elapsed < 1
    assert response.json()["status"] == "cancelled"
    missing = client.get("/status/nope", headers={**AUTH, "Prefer": "wait=5"})
    assert missing.status_code == 404 and "preference-applied" not in missing.headers
