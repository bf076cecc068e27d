"""`avatar-admin pool` through the admin API of the real local app (in-process, over ASGI)
with the pool controller driving the fake RunPod: the text view and `--json`."""

import io
import json
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from edge_worker import admin_cli
from tests.conftest import run
from tests.edge_worker.conftest import AGENT_TOKEN, FakeClock
from tests.edge_worker.test_cancel_and_maintenance import sweep
from tests.edge_worker.test_pool import (  # noqa: F401 (fixtures)
    ADMIN_TOKEN,
    QUEUE_SECRET,
    heartbeat,
    make_runtime,
    pool,
    pool_env,
    runpod,
)
from tests.fake_runpod import API_KEY, FakeRunPod

BASE_URL = "http://testserver.local:80"


def avatar_admin_pool(app: Any, *flags: str) -> str:
    """`avatar-admin --url ... pool` on the app itself: the command's code, ASGI transport."""
    args = admin_cli.parser().parse_args(["--url", BASE_URL, "pool", *flags])
    api = admin_cli.AdminApi(BASE_URL, ADMIN_TOKEN, transport=httpx.ASGITransport(app=app))
    out = io.StringIO()
    run(admin_cli.run_pool(api, args, out))
    return out.getvalue()


def steady(view: dict[str, Any]) -> dict[str, Any]:
    """The view without its uptimes: the test clock ticks at every reading."""
    pods = [{k: v for k, v in pod.items() if k != "uptime_seconds"} for pod in view["pods"]]
    return {**view, "pods": pods}


def test_the_pool_view_lists_pods_decision_cost_and_errors(
    runpod: FakeRunPod,  # noqa: F811
    make_runtime: Any,  # noqa: F811
    clock: FakeClock,
) -> None:
    runtime = make_runtime(pool_env(runpod, POOL_MIN_PODS="2"))
    with TestClient(runtime.app, base_url=BASE_URL) as client:
        runpod.fail_next("GET", 429)
        sweep(runtime)
        sweep(runtime)
        seen, silent = runpod.running()
        heartbeat(client, seen, "agent-seen")
        clock.advance(seconds=900.5)  # just past the grace
        heartbeat(client, seen, "agent-seen")
        sweep(runtime)  # the silent pod is stopped after its grace, and replaced
        (replacement,) = set(runpod.running()) - {seen}
        view = pool(client)

        assert steady(json.loads(avatar_admin_pool(runtime.app, "--json"))) == steady(view)
        text = avatar_admin_pool(runtime.app)
    head, decision, counts, blank, header, *rows = text.splitlines()
    assert head == "pool on: 2 pods at least, at most 3; 2 up, $5.00 an hour; 30 GPU-s per video-s"
    assert decision == f"last decision: {view['last_decision']} ({view['last_decision_at'][:19]}Z)"
    assert counts == (
        "pods started 3, stopped 1 (1 without a heartbeat); "
        "RunPod errors: 1 rate limited, 0 server, 0 unreachable, 0 refused"
    )
    assert blank == ""
    assert header.split("  ")[0] == "POD" and "GPU-S/VIDEO-S" in header
    by_pod = {row.split()[0]: row.split() for row in rows}
    assert by_pod.keys() == {seen, silent, replacement}
    assert by_pod[seen][1:7] == [
        "idle",
        "15m00s",
        "0",
        "0.0",
        "-",
        view["pods"][0]["last_heartbeat_at"][:19] + "Z",
    ]
    assert by_pod[replacement][1:3] == ["starting", "0s"]
    assert by_pod[replacement][6:] == ["-", "-"]
    assert by_pod[silent][1:3] == ["stopped", "15m00s"]
    stopped = next(pod for pod in view["pods"] if pod["pod_id"] == silent)
    reason = f"{stopped['stopped_at'][:19]}Z no heartbeat within the 900 s startup grace"
    assert by_pod[silent][-9:] == reason.split()
    for secret in (AGENT_TOKEN, QUEUE_SECRET, API_KEY):
        assert secret not in text


def test_the_pool_needs_an_edge(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        admin_cli.main(["pool"], {})
    assert refused.value.code == 2
    assert "pass --url" in capsys.readouterr().err
