"""Parallel jobs under faults, over real processes: an agent killed mid-segment, a segment's
message delivered twice, a cancel while the segments are being stitched. Short segments
(2-4 s of a 9 s recording) keep each run to seconds with the preview engine."""

import asyncio
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx

from contracts import QueueMessage
from edge_worker.adapters.local.sqlite_queue import SqliteQueue
from tests.e2e.conftest import EXAMPLES, Stack, terminal, wait_for
from tests.faults.conftest import FAST_RECOVERY, agent_index, job_rows

StackFactory = Callable[..., Stack]
SHORT_SEGMENTS = {**FAST_RECOVERY, "SEGMENT_MIN_SECONDS": "2", "SEGMENT_MAX_SECONDS": "4"}


def submit_parallel(client: httpx.Client, audio: Path) -> str:
    with (EXAMPLES / "portrait.png").open("rb") as img, audio.open("rb") as wav:
        response = client.post(
            "/generate",
            files={"image": ("portrait.png", img), "audio": (audio.name, wav)},
            data={"prompt": "A presenter talking", "resolution": "480p", "parallel": "auto"},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def split(status: dict) -> bool:
    return status["segments"] is not None or terminal(status)


def children(stack: Stack, parent_id: str, task: str) -> list:
    rows = [row for row in job_rows(stack).values() if row["parent_id"] == parent_id]
    return sorted((r for r in rows if r["task"] == task), key=lambda r: r["segment_index"])


def poll(holds: Callable[[], bool], within_s: float = 60, every_s: float = 0.02) -> None:
    deadline = time.monotonic() + within_s
    while not holds():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every_s)


def test_an_agent_killed_mid_segment_is_replaced_and_the_job_completes_once(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**SHORT_SEGMENTS)
    stack.start_agent()
    stack.start_agent()
    with stack.client() as client:
        job_id = submit_parallel(client, speech(9))
        view = wait_for(client, job_id, split)
        assert view["segments"] and len(view["segments"]) >= 2, f"{view}\n{stack.logs()}"

        def running() -> list:
            return [s for s in children(stack, job_id, "segment") if s["status"] == "processing"]

        poll(lambda: bool(running()))
        victim_row = running()[0]
        stack.agents[agent_index(victim_row["agent_id"])].send_signal(signal.SIGKILL)
        stack.start_agent()
        final = wait_for(client, job_id, terminal, timeout=120)
    assert final["status"] == "completed", f"{final}\n{stack.logs()}"
    retried = next(s for s in final["segments"] if s["index"] == victim_row["segment_index"])
    assert retried["attempts"] == 2
    (stitch,) = children(stack, job_id, "stitch")
    assert stitch["status"] == "completed"
    assert job_rows(stack)[job_id]["result_key"] == stitch["result_key"]


def test_a_segment_delivered_twice_is_rendered_once(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**SHORT_SEGMENTS)
    stack.start_agent()
    with stack.client() as client:
        job_id = submit_parallel(client, speech(9))
        wait_for(client, job_id, split)
        first = children(stack, job_id, "segment")[0]["id"]
        queue = SqliteQueue(stack.data_dir / "queue.sqlite3")
        asyncio.run(queue.send(QueueMessage(job_id=first, enqueued_at=datetime.now().astimezone())))
        queue.close()
        stack.start_agent()
        final = wait_for(client, job_id, terminal, timeout=120)
    assert final["status"] == "completed", f"{final}\n{stack.logs()}"
    assert [s["attempts"] for s in final["segments"]] == [1] * len(final["segments"])
    renders = stack.data_dir / "blobs" / "videos" / job_id / "segments" / "0"
    assert [p.name for p in renders.glob("*.mp4")] == ["1.mp4"]


def test_a_cancel_while_stitching_cancels_the_stitch_and_publishes_nothing(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**SHORT_SEGMENTS)
    stack.start_agent()
    stack.start_agent()
    with stack.client() as client:
        job_id = submit_parallel(client, speech(9))
        wait_for(client, job_id, split)
        poll(lambda: bool(children(stack, job_id, "stitch")), within_s=120)
        for agent in stack.agents:  # hold the stitch where it is, whoever has it
            agent.send_signal(signal.SIGSTOP)
        (stitch,) = children(stack, job_id, "stitch")
        assert stitch["status"] in ("pending", "processing"), "stitched before the freeze"
        cancelled = client.delete(f"/jobs/{job_id}")
        for agent in stack.agents:
            agent.send_signal(signal.SIGCONT)
        assert cancelled.json()["status"] == "cancelled", cancelled.text
        time.sleep(1)  # two heartbeats: the stitcher is told, or its complete refused
        final = client.get(f"/status/{job_id}").json()
        result = client.get(f"/result/{job_id}")
    assert final["status"] == "cancelled"
    assert result.json()["error"]["code"] == "RESULT_NOT_READY"
    (stitch,) = children(stack, job_id, "stitch")
    assert stitch["status"] == "cancelled"
    assert job_rows(stack)[job_id]["result_key"] is None
