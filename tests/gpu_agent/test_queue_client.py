"""`CloudflareQueueClient` speaks Cloudflare's pull/ack shapes and reports failures."""

from __future__ import annotations

import httpx
import pytest

from gpu_agent.queue_client import CloudflareQueueClient, QueueError

from .conftest import ACCOUNT, CF_BASE, CF_TOKEN, JOB_ID, QUEUE, FakeCloud, pulled


def test_pull_posts_cloudflare_request_and_decodes_messages(
    cloud: FakeCloud, queue: CloudflareQueueClient
) -> None:
    cloud.messages.append(pulled())
    messages = queue.pull(batch_size=1, visibility_timeout_ms=45_000)
    call = cloud.calls[0]
    assert call.url == f"{CF_BASE}/accounts/{ACCOUNT}/queues/{QUEUE}/messages/pull"
    assert call.headers["authorization"] == f"Bearer {CF_TOKEN}"
    assert call.body == {"batch_size": 1, "visibility_timeout_ms": 45_000}
    assert [m.lease_id for m in messages] == ["lease-1"]
    assert messages[0].metadata == {"CF-Content-Type": "json"}
    assert JOB_ID not in messages[0].body  # base64 on the wire


def test_empty_queue_is_an_empty_list(queue: CloudflareQueueClient) -> None:
    assert queue.pull() == []


def test_missing_result_is_an_empty_list(cloud: FakeCloud, queue: CloudflareQueueClient) -> None:
    cloud.replies["pull"] = lambda r, b: httpx.Response(200, json={"success": True, "result": None})
    assert queue.pull() == []


def test_ack_and_retry_bodies(cloud: FakeCloud, queue: CloudflareQueueClient) -> None:
    assert queue.ack(["a", "b"]).ackCount == 2
    assert queue.retry("c", 30).retryCount == 1
    assert queue.retry("d").retryCount == 1
    assert cloud.bodies("ack") == [
        {"acks": [{"lease_id": "a"}, {"lease_id": "b"}], "retries": []},
        {"acks": [], "retries": [{"lease_id": "c", "delay_seconds": 30}]},
        {"acks": [], "retries": [{"lease_id": "d"}]},
    ]
    assert cloud.calls[0].url.endswith(f"/queues/{QUEUE}/messages/ack")


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (
            httpx.Response(
                200,
                json={
                    "success": False,
                    "errors": [{"code": 10000, "message": "Authentication error"}],
                },
            ),
            "10000 Authentication error",
        ),
        (httpx.Response(403, json={"success": False, "errors": []}), "HTTP 403: no error detail"),
        (httpx.Response(429, json={"success": False, "errors": ["slow down"]}), "slow down"),
        (httpx.Response(502, text="<html>bad gateway</html>"), "without a JSON object"),
        (httpx.Response(200, json=[1, 2]), "without a JSON object"),
        (
            httpx.Response(200, json={"success": True, "result": {"messages": [{"id": "x"}]}}),
            "malformed pull result",
        ),
    ],
)
def test_pull_failures_raise_queue_error(
    cloud: FakeCloud, queue: CloudflareQueueClient, response: httpx.Response, match: str
) -> None:
    cloud.replies["pull"] = lambda r, b: response
    with pytest.raises(QueueError, match=match):
        queue.pull()


def test_network_error_raises_queue_error(cloud: FakeCloud, queue: CloudflareQueueClient) -> None:
    def refuse(request: httpx.Request, body: object) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    cloud.replies["ack"] = refuse
    with pytest.raises(QueueError, match="ConnectError") as caught:
        queue.ack(["x"])
    assert caught.value.status_code is None


def test_malformed_ack_result(cloud: FakeCloud, queue: CloudflareQueueClient) -> None:
    cloud.replies["ack"] = lambda r, b: httpx.Response(
        200, json={"success": True, "result": {"ackCount": "many"}}
    )
    with pytest.raises(QueueError, match="malformed ack result"):
        queue.ack(["x"])


def test_ids_are_quoted_into_the_path() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"success": True, "result": {}})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        CloudflareQueueClient(
            client, api_base=CF_BASE + "/", account_id="a/b", queue_id="q 1", api_token="t"
        ).pull()
    assert seen == ["/client/v4/accounts/a%2Fb/queues/q%201/messages/pull"]


@pytest.mark.parametrize(
    ("response", "transient"),
    [
        (httpx.Response(429, json={"success": False, "errors": []}), True),
        (httpx.Response(500, json={"success": False, "errors": []}), True),
        (httpx.Response(502, text="<html>bad gateway</html>"), True),
        (httpx.Response(503, text=""), True),
        (httpx.Response(504, json={"success": False}), True),
        (httpx.Response(400, json={"success": False, "errors": []}), False),
        (httpx.Response(401, json={"success": False, "errors": []}), False),
        (httpx.Response(404, text="no such queue"), False),
        (httpx.Response(200, json={"success": False, "errors": []}), False),
        (httpx.Response(200, json={"success": True, "result": {"messages": [{}]}}), False),
    ],
)
def test_errors_say_whether_a_retry_may_help(
    cloud: FakeCloud, queue: CloudflareQueueClient, response: httpx.Response, transient: bool
) -> None:
    cloud.replies["pull"] = lambda r, b: response
    with pytest.raises(QueueError) as caught:
        queue.pull()
    assert caught.value.transient is transient


def test_pull_is_a_single_try(
    cloud: FakeCloud, queue: CloudflareQueueClient, sleeps: list[float]
) -> None:
    cloud.script("pull", httpx.ConnectError)
    with pytest.raises(QueueError) as caught:
        queue.pull()
    assert caught.value.transient is True  # the pull loop backs off and pulls again
    assert cloud.kinds() == ["pull"] and sleeps == []


def test_ack_and_retry_ride_out_transient_failures(
    cloud: FakeCloud, queue: CloudflareQueueClient, sleeps: list[float]
) -> None:
    cloud.script("ack", httpx.ConnectError, 503, httpx.ReadTimeout, 429)
    assert queue.ack(["a"]).ackCount == 1
    cloud.script("ack", 502)
    assert queue.retry("b", 0).retryCount == 1
    assert cloud.kinds() == ["ack"] * 7
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 1.0]


def test_ack_gives_up_after_six_tries_and_never_retries_final_answers(
    cloud: FakeCloud, queue: CloudflareQueueClient
) -> None:
    cloud.script("ack", *[503] * 6)
    with pytest.raises(QueueError, match="HTTP 503"):
        queue.ack(["a"])
    assert cloud.kinds() == ["ack"] * 6
    cloud.script("ack", 401)
    with pytest.raises(QueueError, match="HTTP 401"):
        queue.ack(["a"])
    assert cloud.kinds() == ["ack"] * 7
