"""`EdgeClient`: the /agent API calls and how their errors are classified."""

from __future__ import annotations

import httpx
import pytest

from contracts import (
    AgentFailRequest,
    CompleteRequest,
    FailureCode,
    ProgressRequest,
    ResultMetadata,
    Stage,
)
from contracts.agent import AgentHeartbeat
from gpu_agent.edge_client import ClaimConflict, EdgeClient, EdgeError, JobGone

from .conftest import AGENT_TOKEN, EDGE_URL, JOB_ID, FakeCloud, envelope


def test_claim_returns_the_claim(cloud: FakeCloud, edge: EdgeClient) -> None:
    claim = edge.claim(JOB_ID, agent_id="agent-1", lease_id="lease-9")
    assert claim.claim_token == "claim-tok"
    assert claim.settings.heartbeat_interval_seconds == 15.0
    call = cloud.calls[0]
    assert call.headers["authorization"] == f"Bearer {AGENT_TOKEN}"
    assert call.headers["content-type"] == "application/json"
    assert call.body == {"agent_id": "agent-1", "lease_id": "lease-9", "capabilities": ["image"]}


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (envelope(409, "CONFLICT"), ClaimConflict),
        (httpx.Response(409), ClaimConflict),
        (envelope(404, "JOB_NOT_FOUND"), JobGone),
        (envelope(404, "NOT_FOUND"), EdgeError),
        (httpx.Response(404, text="not found"), EdgeError),
        (envelope(401, "UNAUTHORIZED"), EdgeError),
        (envelope(500, "INTERNAL_ERROR"), EdgeError),
        (httpx.Response(200, json={"claim_token": "x"}), EdgeError),
        (httpx.Response(200, text="not json"), EdgeError),
    ],
)
def test_claim_errors_are_classified(
    cloud: FakeCloud, edge: EdgeClient, response: httpx.Response, error: type[EdgeError]
) -> None:
    cloud.replies["claim"] = lambda r, b: response
    with pytest.raises(EdgeError) as caught:
        edge.claim(JOB_ID, agent_id="a", lease_id=None)
    assert type(caught.value) is error


def test_error_keeps_code_status_and_request_id(cloud: FakeCloud, edge: EdgeClient) -> None:
    response = envelope(409, "CONFLICT", "already claimed")
    response.headers["X-Request-ID"] = "req-1"
    cloud.replies["claim"] = lambda r, b: response
    with pytest.raises(ClaimConflict) as caught:
        edge.claim(JOB_ID, agent_id="a", lease_id=None)
    assert (caught.value.status_code, caught.value.code, caught.value.request_id) == (
        409,
        "CONFLICT",
        "req-1",
    )
    assert "already claimed" in str(caught.value)


def test_claim_for_another_job_is_refused(cloud: FakeCloud, edge: EdgeClient) -> None:
    body = {**cloud.claim_body(), "job_id": "other"}
    cloud.replies["claim"] = lambda r, b: httpx.Response(200, json=body)
    with pytest.raises(EdgeError, match="answered for job other"):
        edge.claim(JOB_ID, agent_id="a", lease_id=None)


def test_network_error_is_an_edge_error(cloud: FakeCloud, edge: EdgeClient) -> None:
    def refuse(request: httpx.Request, body: object) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    cloud.replies["progress"] = refuse
    with pytest.raises(EdgeError, match="ReadTimeout") as caught:
        edge.progress(JOB_ID, ProgressRequest(claim_token="t", progress=1, stage=Stage.GENERATING))
    assert type(caught.value) is EdgeError


def test_progress_complete_and_fail(cloud: FakeCloud, edge: EdgeClient) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(200, json={"cancel_requested": True})
    reply = edge.progress(
        JOB_ID,
        ProgressRequest(claim_token="t", progress=12.5, stage=Stage.GENERATING, eta_seconds=3),
    )
    assert reply.cancel_requested is True
    result = ResultMetadata(size_bytes=1, duration_seconds=1, width=2, height=2, engine="preview")
    edge.complete(JOB_ID, CompleteRequest(claim_token="t", result=result))
    edge.fail(
        JOB_ID,
        AgentFailRequest(claim_token="t", code=FailureCode.TIMEOUT, message="m", retryable=True),
    )
    assert [c.url.rsplit("/", 1)[-1] for c in cloud.calls] == ["progress", "complete", "fail"]
    assert cloud.bodies("progress") == [
        {
            "claim_token": "t",
            "progress": 12.5,
            "stage": "generating",
            "eta_seconds": 3.0,
            "speakers": None,
        }
    ]
    assert cloud.bodies("fail") == [
        {"claim_token": "t", "code": "TIMEOUT", "message": "m", "retryable": True}
    ]


def test_job_id_is_quoted_into_the_path() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"cancel_requested": False})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        EdgeClient(client, base_url="http://e/", token="t").progress(
            "../admin", ProgressRequest(claim_token="t", progress=0, stage=Stage.DOWNLOADING)
        )
    assert seen == ["/agent/jobs/..%2Fadmin/progress"]


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        ("http://edge.test", "/blobs/a?sig=1", "http://edge.test/blobs/a?sig=1"),
        ("http://edge.test/", "https://r2.example/x?y=1", "https://r2.example/x?y=1"),
        ("http://edge.test/api", "blobs/a", "http://edge.test/api/blobs/a"),
    ],
)
def test_resolve_signed_urls(base: str, url: str, expected: str) -> None:
    with httpx.Client() as client:
        assert EdgeClient(client, base_url=base, token="t").resolve(url) == expected


@pytest.mark.parametrize(
    ("response", "transient"),
    [
        (envelope(429, "RATE_LIMITED"), True),
        (envelope(500, "INTERNAL_ERROR"), True),
        (httpx.Response(502, text="bad gateway"), True),
        (envelope(503, "STORAGE_ERROR"), True),
        (httpx.Response(504), True),
        (envelope(400, "INVALID_INPUT"), False),
        (envelope(401, "UNAUTHORIZED"), False),
        (envelope(404, "JOB_NOT_FOUND"), False),
        (envelope(409, "CONFLICT"), False),
        (envelope(413, "PAYLOAD_TOO_LARGE"), False),
        (httpx.Response(422), False),
        (httpx.Response(200, text="not json"), False),
    ],
)
def test_errors_say_whether_a_retry_may_help(
    cloud: FakeCloud, edge: EdgeClient, response: httpx.Response, transient: bool
) -> None:
    cloud.replies["progress"] = lambda r, b: response
    with pytest.raises(EdgeError) as caught:
        edge.progress(JOB_ID, ProgressRequest(claim_token="t", progress=1, stage=Stage.GENERATING))
    assert caught.value.transient is transient


def test_claim_complete_and_fail_ride_out_an_edge_restart(
    cloud: FakeCloud, edge: EdgeClient, sleeps: list[float]
) -> None:
    cloud.script("claim", httpx.ConnectError, 503, httpx.ReadTimeout)
    assert edge.claim(JOB_ID, agent_id="a", lease_id=None).claim_token == "claim-tok"
    result = ResultMetadata(size_bytes=1, duration_seconds=1, width=2, height=2, engine="preview")
    cloud.script("complete", httpx.RemoteProtocolError)
    edge.complete(JOB_ID, CompleteRequest(claim_token="t", result=result))
    cloud.script("fail", 502)
    edge.fail(JOB_ID, AgentFailRequest(claim_token="t", code=FailureCode.TIMEOUT, message="m"))
    assert cloud.kinds() == ["claim"] * 4 + ["complete"] * 2 + ["fail"] * 2
    assert sleeps == [1.0, 2.0, 4.0, 1.0, 1.0]


def test_final_answers_are_not_retried(cloud: FakeCloud, edge: EdgeClient) -> None:
    cloud.script("claim", envelope(409, "CONFLICT"))
    with pytest.raises(ClaimConflict):
        edge.claim(JOB_ID, agent_id="a", lease_id=None)
    body = {**cloud.claim_body(), "job_id": "other"}
    cloud.replies["claim"] = lambda r, b: httpx.Response(200, json=body)
    with pytest.raises(EdgeError, match="answered for job other") as caught:
        edge.claim(JOB_ID, agent_id="a", lease_id=None)
    assert caught.value.transient is False
    assert cloud.kinds() == ["claim", "claim"]


def test_retries_run_out_with_the_last_error(cloud: FakeCloud, edge: EdgeClient) -> None:
    cloud.replies["complete"] = lambda r, b: envelope(503, "STORAGE_ERROR")
    result = ResultMetadata(size_bytes=1, duration_seconds=1, width=2, height=2, engine="preview")
    with pytest.raises(EdgeError, match="HTTP 503") as caught:
        edge.complete(JOB_ID, CompleteRequest(claim_token="t", result=result))
    assert caught.value.transient is True
    assert cloud.kinds() == ["complete"] * 6


def test_progress_is_a_single_try(cloud: FakeCloud, edge: EdgeClient, sleeps: list[float]) -> None:
    cloud.script("progress", httpx.ConnectError)
    with pytest.raises(EdgeError) as caught:
        edge.progress(JOB_ID, ProgressRequest(claim_token="t", progress=1, stage=Stage.GENERATING))
    assert caught.value.transient is True  # the heartbeat thread schedules the next try
    assert cloud.kinds() == ["progress"] and sleeps == []


def test_heartbeat_is_one_try_and_reads_the_drain(cloud: FakeCloud, edge: EdgeClient) -> None:
    cloud.replies["heartbeat"] = lambda request, body: httpx.Response(200, json={"drain": True})
    beat = AgentHeartbeat(agent_id="a1", pod_id="pod-1")
    assert edge.heartbeat(beat).drain is True
    assert cloud.calls[-1].url == f"{EDGE_URL}/agent/heartbeat"
    cloud.script("heartbeat", 503)
    with pytest.raises(EdgeError) as failed:
        edge.heartbeat(beat)
    assert failed.value.status_code == 503 and failed.value.transient
    assert cloud.kinds().count("heartbeat") == 2
