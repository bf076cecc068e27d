"""RunPod on the Worker under Pyodide: the cron's pool pass drives `FetchPodProvider` on JS
fetch against the fake RunPod REST server (tests/fake_runpod.py) over real HTTP: list,
delete and create, a 429 counted and retried at the next sweep, and an API that does not
answer; the pool's state is written to and read back from D1."""

import json
from datetime import UTC, datetime, timedelta

from edge_worker.adapters.cloudflare.d1_executor import D1Executor
from edge_worker.adapters.sql_pool_store import SqlPoolStore
from edge_worker.ports import PoolCounters
from tests.cf_bridge.bridge import reset_d1
from tests.cf_bridge.proxies import D1Database
from tests.conftest import run
from tests.edge_worker.conftest import AGENT_TOKEN
from tests.fake_runpod import API_KEY, FakeRunPod, fake_runpod
from tests.pyodide.runner import RunningWorker

PODS = "/v1/pods"
SILENT = "pod-silent"


def pool_env(runpod: FakeRunPod) -> dict[str, str]:
    return {
        "RUNPOD_API_KEY": API_KEY,
        "RUNPOD_API_BASE": runpod.url,
        "POOL_MIN_PODS": "1",
        "POOL_MAX_PODS": "2",
        "POOL_IMAGE": "ghcr.io/example/agent:1",
        "POOL_GPU_TYPE_IDS": "NVIDIA H100 80GB HBM3",
        "POOL_POD_ENV": json.dumps({"ENGINE": "infinitetalk"}),
    }


def test_the_cron_lists_deletes_and_creates_pods_over_fetch(worker: RunningWorker) -> None:
    reset_d1(worker.control)
    store = SqlPoolStore(D1Executor(D1Database(worker.control)))
    # A pod the pool started an hour ago whose agent never sent a heartbeat.
    run(store.insert_pod(SILENT, "avatar-pool-silent", datetime.now(UTC) - timedelta(hours=1)))
    with fake_runpod() as runpod:
        with runpod.lock:
            runpod.pods[SILENT] = {
                "id": SILENT,
                "name": "avatar-pool-s",
                "desiredStatus": "RUNNING",
            }
        env = pool_env(runpod)
        runpod.fail_next("POST", 429)
        worker.scheduled(env)  # past the grace: deleted; its replacement is rate limited
        assert runpod.calls == [("GET", PODS), ("DELETE", f"{PODS}/{SILENT}"), ("POST", PODS)]
        assert runpod.deleted == [SILENT] and runpod.running() == []

        worker.scheduled(env)  # asked again at the next sweep
        (spec,) = runpod.created
        assert runpod.running() == ["pod0001"]
        assert spec["imageName"] == "ghcr.io/example/agent:1"
        assert spec["gpuTypeIds"] == ["NVIDIA H100 80GB HBM3"]
        assert spec["env"]["AGENT_TOKEN"] == AGENT_TOKEN
        assert spec["env"]["ENGINE"] == "infinitetalk"
    worker.scheduled(env)  # the fake is gone: nothing answers

    record = run(store.record())
    assert record.counters == PoolCounters(
        rate_limited=1, unreachable=1, pods_started=1, pods_stopped=1, unresponsive_stopped=1
    )
    assert record.decision is not None and record.decision.startswith("RunPod unavailable")
    (stopped, started) = run(store.pods(datetime.now(UTC) - timedelta(days=1)))
    assert (stopped.pod_id, started.pod_id) == (SILENT, "pod0001")
    assert stopped.stop_reason == "no heartbeat within the 900 s startup grace"
