"""The agents' idle heartbeat on the Worker under Pyodide: its SQL (an upsert of the agent's
pod, the pod's update, the drain read) runs on D1 through the Worker's bindings."""

import httpx

from tests.edge_worker.conftest import AGENT_AUTH
from tests.pyodide.runner import RunningWorker


def test_heartbeats_are_recorded_on_d1_and_answer_no_drain(
    client: httpx.Client, worker: RunningWorker
) -> None:
    for body in (
        {"agent_id": "agent-w1", "pod_id": "pod-w1"},
        {"agent_id": "agent-w1", "pod_id": "pod-w2", "busy": True},  # moved: upserted
        {"agent_id": "agent-w2"},
    ):
        response = client.post("/agent/heartbeat", json=body, headers=AGENT_AUTH)
        assert response.status_code == 200, response.text
        assert response.json() == {"drain": False}
    assert client.post("/agent/heartbeat", json={"agent_id": "x"}).status_code == 401
