"""The job's event stream on the Worker under Pyodide: the ASGI bridge streams Litestar's
response through a TransformStream as it is written (the host passes each chunk on as
workerd does), while the Worker polls D1 at its own interval. Each event is read before
the agent API changes the job, so a buffered response would never deliver the first."""

from collections.abc import Iterator

import httpx

from contracts import JobView
from tests.edge_worker.conftest import AUTH, submit
from tests.edge_worker.test_agent_api import RESULT, VIDEO, claim, post, upload


def next_event(lines: Iterator[str]) -> tuple[str, JobView]:
    """The next event's kind and job, past keepalive comments."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "" and "event" in fields:
            return fields["event"], JobView.model_validate_json(fields["data"])
        name, _, value = line.partition(": ")
        if name:
            fields[name] = value
    raise AssertionError(f"the stream ended before an event: {fields}")


def test_the_worker_streams_a_jobs_events_until_it_ends(client: httpx.Client) -> None:
    job_id = submit(client)["job_id"]
    with client.stream("GET", f"/jobs/{job_id}/events", headers=AUTH, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        kind, view = next_event(lines)
        assert (kind, view.status, view.queue_position) == ("status", "pending", 0)
        grant = claim(client, job_id)
        kind, view = next_event(lines)
        assert (kind, view.status, view.stage) == ("status", "processing", "downloading")
        token = grant["claim_token"]
        body = {"claim_token": token, "progress": 50, "stage": "downloading", "eta_seconds": 4}
        assert post(client, job_id, "progress", body).is_success
        kind, view = next_event(lines)
        assert (kind, view.progress, view.eta_seconds) == ("progress", 50, 4)
        upload(client, grant)
        result = {**RESULT, "size_bytes": len(VIDEO)}
        assert post(client, job_id, "complete", {"claim_token": token, "result": result}).is_success
        kind, view = next_event(lines)
        assert (kind, view.status, view.stage) == ("status", "completed", "done")
        assert [line for line in lines if line and not line.startswith(":")] == []
