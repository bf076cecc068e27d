"""The RunPod pool controller on the local edge (SQLite, a fake clock) against a fake of
RunPod's REST API over real HTTP: scaling with the backlog, draining before stopping,
unresponsive pods, API errors, racing sweeps, and a pod lost mid-job."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from edge_worker.local import LocalRuntime, build_local, local_settings
from tests.edge_worker.conftest import AGENT_AUTH, AGENT_TOKEN, AUTH, ENV, FakeClock, submit
from tests.edge_worker.test_agent_api import RESULT, VIDEO, claim, post, upload
from tests.edge_worker.test_cancel_and_maintenance import drain_queue, status, sweep
from tests.fake_runpod import API_KEY, FakeRunPod, fake_runpod

ADMIN_TOKEN = "test-admin-token-0123456789"
QUEUE_SECRET = "queue-secret-for-the-pods-0123"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def runpod() -> Iterator[FakeRunPod]:
    with fake_runpod() as fake:
        yield fake


def pool_env(runpod: FakeRunPod, **overrides: str) -> dict[str, str]:
    return {
        **ENV,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "RUNPOD_API_KEY": API_KEY,
        "RUNPOD_API_BASE": runpod.url,
        "POOL_MIN_PODS": "1",
        "POOL_MAX_PODS": "3",
        # 0.5 s of audio at 30 GPU-s per video-s is 15 GPU-s: two pods per job for 10 s.
        "POOL_TARGET_WAIT_SECONDS": "10",
        "POOL_IMAGE": "ghcr.io/example/agent:1",
        "POOL_GPU_TYPE_IDS": "NVIDIA H100 80GB HBM3,NVIDIA A100 80GB PCIe",
        "POOL_NETWORK_VOLUME_ID": "vol-weights",
        "POOL_POD_ENV": json.dumps({"CF_API_TOKEN": QUEUE_SECRET, "ENGINE": "infinitetalk"}),
        "POOL_POD_HOURLY_USD": "2.5",
        **overrides,
    }


@pytest.fixture
def make_runtime(tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    built: list[LocalRuntime] = []

    def make(env: dict[str, str]) -> LocalRuntime:
        runtime = build_local(local_settings(env, "testserver.local", 80), tmp_path / "d", clock)
        built.append(runtime)
        return runtime

    yield make
    for runtime in built:
        runtime.close()


def heartbeat(client: TestClient, pod_id: str | None, agent: str) -> bool:
    response = client.post(
        "/agent/heartbeat", json={"agent_id": agent, "pod_id": pod_id}, headers=AGENT_AUTH
    )
    assert response.status_code == 200, response.text
    drain: bool = response.json()["drain"]
    return drain


def pool(client: TestClient) -> dict[str, Any]:
    response = client.get("/pool", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def states(client: TestClient) -> dict[str, str]:
    return {pod["pod_id"]: pod["state"] for pod in pool(client)["pods"]}


def test_scales_up_under_a_burst_drains_before_stopping_and_returns_to_the_floor(
    runpod: FakeRunPod, make_runtime: Any, clock: FakeClock
) -> None:
    runtime = make_runtime(pool_env(runpod))
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        sweep(runtime)
        assert len(runpod.running()) == 1  # the floor, with no work
        (spec,) = runpod.created
        assert spec["name"].startswith("avatar-pool-")
        assert spec["imageName"] == "ghcr.io/example/agent:1"
        assert spec["gpuTypeIds"] == ["NVIDIA H100 80GB HBM3", "NVIDIA A100 80GB PCIe"]
        assert spec["networkVolumeId"] == "vol-weights"
        assert spec["env"] == {
            "EDGE_URL": "http://testserver.local:80",
            "AGENT_TOKEN": AGENT_TOKEN,
            "CF_API_TOKEN": QUEUE_SECRET,
            "ENGINE": "infinitetalk",
        }

        jobs = [submit(client)["job_id"] for _ in range(3)]
        assert sweep(runtime)["pool_acted"] == 1
        assert sweep(runtime)["pool_acted"] == 0
        pods = runpod.running()
        assert len(pods) == 3  # six wanted, never above POOL_MAX_PODS
        assert set(states(client).values()) == {"starting"}
        assert all(not heartbeat(client, pod, f"agent-{pod}") for pod in pods)

        drain_queue(client)
        grant = claim(client, jobs[0], agent=f"agent-{pods[2]}")
        upload(client, grant)
        done = {**RESULT, "size_bytes": len(VIDEO), "gpu_seconds": 12.0}
        reply = post(
            client, jobs[0], "complete", {"claim_token": grant["claim_token"], "result": done}
        )
        assert reply.status_code == 200, reply.text
        for job_id in jobs[1:]:
            assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 200

        clock.advance(seconds=601)
        assert all(not heartbeat(client, pod, f"agent-{pod}") for pod in pods)
        sweep(runtime)
        # The two idle longest are drained; the one that ran a job stays for the floor.
        assert states(client) == {pods[0]: "draining", pods[1]: "draining", pods[2]: "idle"}
        sweep(runtime)
        assert len(runpod.running()) == 3  # nothing stops before its agent heard "drain"

        assert heartbeat(client, pods[0], f"agent-{pods[0]}") is True
        assert heartbeat(client, pods[1], f"agent-{pods[1]}") is True
        sweep(runtime)
        assert runpod.running() == [pods[2]] and sorted(runpod.deleted) == pods[:2]

        view = pool(client)
        by_id = {pod["pod_id"]: pod for pod in view["pods"]}
        assert by_id[pods[0]]["stop_reason"] == "drained: its agent stopped pulling"
        survivor = by_id[pods[2]]
        assert survivor["state"] == "idle" and survivor["jobs_done"] == 1
        assert survivor["gpu_seconds"] == 12.0
        assert survivor["gpu_seconds_per_video_second"] == 24.0
        assert view["gpu_seconds_per_video_second"] == 24.0  # measured, not the default
        assert view["estimated_cost_per_hour_usd"] == 2.5
        assert view["pods_started"] == 3 and view["pods_stopped"] == 2
        assert "stop 2" in view["last_decision"]
        text = client.get("/pool", headers=ADMIN).text
        for secret in (AGENT_TOKEN, QUEUE_SECRET, API_KEY):
            assert secret not in text
        assert client.get("/pool", headers=AGENT_AUTH).status_code == 401


def test_a_pod_that_never_heartbeats_is_stopped_after_the_grace_and_reported(
    runpod: FakeRunPod, make_runtime: Any, clock: FakeClock
) -> None:
    runtime = make_runtime(pool_env(runpod, POOL_STARTUP_GRACE_SECONDS="900"))
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        sweep(runtime)
        (silent,) = runpod.running()
        clock.advance(seconds=899)
        sweep(runtime)
        assert runpod.running() == [silent]
        clock.advance(seconds=2)
        sweep(runtime)
        assert runpod.deleted == [silent]
        assert len(runpod.running()) == 1  # a new pod for the floor
        view = pool(client)
        stopped = next(pod for pod in view["pods"] if pod["pod_id"] == silent)
        assert stopped["state"] == "stopped"
        assert stopped["stop_reason"] == "no heartbeat within the 900 s startup grace"
        assert view["unresponsive_stopped"] == 1


def test_rate_limits_and_server_errors_are_counted_and_retried_next_sweep(
    runpod: FakeRunPod, make_runtime: Any
) -> None:
    runtime = make_runtime(pool_env(runpod))
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        runpod.fail_next("GET", 429)
        report = sweep(runtime)
        assert report["pool_acted"] == 0 and runpod.running() == []
        assert pool(client)["last_decision"].startswith("RunPod unavailable")
        runpod.fail_next("POST", 500)
        sweep(runtime)
        assert runpod.running() == []
        assert "1 RunPod call(s) failed" in pool(client)["last_decision"]
        sweep(runtime)
        assert len(runpod.running()) == 1
        errors = pool(client)["api_errors"]
        assert errors == {"rate_limited": 1, "server_errors": 1, "unreachable": 0, "refused": 0}


def test_two_sweeps_at_once_start_the_pods_once(runpod: FakeRunPod, make_runtime: Any) -> None:
    runtime = make_runtime(pool_env(runpod, POOL_MIN_PODS="2"))
    runpod.create_delay = 0.2  # both passes are in flight together

    async def race() -> list[Any]:
        return list(await asyncio.gather(*(runtime.use_cases.pool.run() for _ in range(2))))

    passes = asyncio.run(race())
    assert sorted(p is None for p in passes) == [False, True]  # one held the lease
    assert len(runpod.created) == 2
    assert asyncio.run(runtime.use_cases.pool.run()) is not None  # the lease was released


def test_a_pod_stopped_mid_job_loses_nothing(
    runpod: FakeRunPod, make_runtime: Any, clock: FakeClock
) -> None:
    runtime = make_runtime(pool_env(runpod, POOL_MIN_PODS="0"))
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        job_id = submit(client)["job_id"]
        sweep(runtime)
        (first,) = runpod.running()  # one job: one pod, whatever its GPU time
        heartbeat(client, first, f"agent-{first}")
        drain_queue(client)
        lost = claim(client, job_id, agent=f"agent-{first}")
        with runpod.lock:  # RunPod takes the pod away (its agent had no time to hand back)
            del runpod.pods[first]
        sweep(runtime)
        assert states(client)[first] == "stopped" and runpod.running() == []
        clock.advance(seconds=121)
        report = sweep(runtime)
        # The sweep requeues the lost job, then starts a pod for it.
        assert report["requeued_lost"] == 1 and report["pool_acted"] == 1
        (second,) = runpod.running()
        drain_queue(client)
        grant = claim(client, job_id, agent=f"agent-{second}")
        upload(client, grant)
        done = {**RESULT, "size_bytes": len(VIDEO)}
        assert (
            post(
                client, job_id, "complete", {"claim_token": grant["claim_token"], "result": done}
            ).status_code
            == 200
        )
        late = post(
            client, job_id, "complete", {"claim_token": lost["claim_token"], "result": done}
        )
        assert late.status_code == 409
        finished = status(client, job_id)
        assert finished["status"] == "completed" and finished["attempts"] == 2


def test_heartbeats_from_pods_the_pool_did_not_start_never_drain(
    runpod: FakeRunPod, make_runtime: Any
) -> None:
    runtime = make_runtime(pool_env(runpod))
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        assert heartbeat(client, "manual-pod", "agent-m") is False
        assert heartbeat(client, None, "agent-laptop") is False
        bad = client.post("/agent/heartbeat", json={"pod_id": "x"}, headers=AGENT_AUTH)
        assert bad.status_code == 400
        assert client.post("/agent/heartbeat", json={"agent_id": "a"}).status_code == 401


def test_the_controller_is_off_without_a_key_or_a_ceiling(client: TestClient) -> None:
    assert asyncio.run(client.app.state.use_cases.pool.run()) is None


def test_lost_pods_are_adopted_and_refusals_and_silence_are_counted(
    runpod: FakeRunPod, make_runtime: Any, clock: FakeClock
) -> None:
    runtime = make_runtime(pool_env(runpod, POOL_MIN_PODS="0"))
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        # A pod a pass started but never recorded (it died in between), and someone else's.
        with runpod.lock:
            runpod.pods["lost1"] = {
                "id": "lost1",
                "name": "avatar-pool-1a2b",
                "desiredStatus": "RUNNING",
            }
            runpod.pods["other"] = {"id": "other", "name": "notebook", "desiredStatus": "RUNNING"}
        sweep(runtime)
        assert states(client) == {"lost1": "starting"}
        clock.advance(seconds=901)  # it never heartbeats; RunPod refuses to delete it
        runpod.fail_next("DELETE", 403)
        sweep(runtime)
        assert states(client) == {"lost1": "starting"} and "lost1" in runpod.running()
        assert pool(client)["api_errors"]["refused"] == 1
        sweep(runtime)  # tried again
        assert states(client) == {"lost1": "stopped"} and runpod.deleted == ["lost1"]
    silent = make_runtime({**pool_env(runpod), "RUNPOD_API_BASE": "http://127.0.0.1:9/v1"})
    with TestClient(silent.app, base_url="http://testserver.local:80") as client:
        sweep(silent)
        assert pool(client)["api_errors"]["unreachable"] == 1
