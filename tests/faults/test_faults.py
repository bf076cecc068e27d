"""Nothing lost: kill, freeze and restart real processes and check every job ends once."""

import itertools
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx

from contracts import QueueMessage
from edge_worker.adapters.local.sqlite_queue import SqliteQueue
from tests.e2e.conftest import Stack, submit, terminal, wait_for
from tests.faults.conftest import FAST_RECOVERY, agent_index, job_rows, read_only, uploads

StackFactory = Callable[..., Stack]


def generating(status: dict) -> bool:
    return status["status"] == "processing" and status["stage"] == "generating"


def test_killed_agent_job_completes_on_another(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**FAST_RECOVERY)
    stack.start_agent()
    stack.start_agent()
    with stack.client() as client:
        job_id = submit(client, speech(20), resolution="720p")
        wait_for(client, job_id, generating)
        victim = stack.agents[agent_index(job_rows(stack)[job_id]["agent_id"])]
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        final = wait_for(client, job_id, terminal, timeout=120)
        recovered_in = time.monotonic() - killed_at
    assert final["status"] == "completed", f"{final}\n{stack.logs()}"
    assert final["attempts"] == 2
    assert job_rows(stack)[job_id]["result_key"].endswith("/2.mp4")
    print(f"recovered {recovered_in:.1f} s after kill -9")


def test_same_message_delivered_twice_gives_one_result(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**FAST_RECOVERY)
    with stack.client() as client:
        job_id = submit(client, speech(3))
        queue = SqliteQueue(stack.data_dir / "queue.sqlite3")
        import asyncio

        asyncio.run(
            queue.send(QueueMessage(job_id=job_id, enqueued_at=datetime.now().astimezone()))
        )
        stack.start_agent()
        stack.start_agent()
        final = wait_for(client, job_id, terminal)
        deadline = time.monotonic() + 30
        while queue.pull(10).message_backlog_count and time.monotonic() < deadline:
            time.sleep(0.2)
        queue.close()
    assert final["status"] == "completed", stack.logs()
    assert final["attempts"] == 1
    assert len(uploads(stack, job_id)) == 1


def queued_messages(stack: Stack) -> int:
    return int(read_only(stack.data_dir / "queue.sqlite3", "SELECT COUNT(*) FROM messages")[0][0])


def test_edge_restart_mid_job_loses_nothing(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**{**FAST_RECOVERY, "HEARTBEAT_TIMEOUT_SECONDS": "30"})
    stack.start_agent()
    with stack.client() as client:
        job_id = submit(client, speech(20), resolution="720p")
        wait_for(client, job_id, generating)
        stack.stop_edge()
        time.sleep(2)
        stack.start_edge()
        final = wait_for(client, job_id, terminal, timeout=120)
    assert final["status"] == "completed", f"{final}\n{stack.logs()}"
    assert final["attempts"] == 1
    assert len(uploads(stack, job_id)) == 1


def test_three_agents_twenty_jobs_each_completed_exactly_once(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**FAST_RECOVERY)
    audio = speech(2)
    for _ in range(3):
        stack.start_agent()
    with stack.client() as client:
        barrier = threading.Barrier(20)
        job_ids: list[str] = []

        def one() -> None:
            with stack.client() as own:
                barrier.wait()
                job_ids.append(submit(own, audio))

        threads = [threading.Thread(target=one) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        history: dict[str, list[dict]] = {job_id: [] for job_id in job_ids}
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            statuses = [client.get(f"/status/{job_id}").json() for job_id in job_ids]
            for status in statuses:
                history[status["job_id"]].append(status)
            if all(terminal(status) for status in statuses):
                break
            time.sleep(0.2)
    rows = job_rows(stack)
    assert len(job_ids) == 20
    for job_id, seen in history.items():
        assert seen[-1]["status"] == "completed", f"{seen[-1]}\n{stack.logs()}"
        assert seen[-1]["attempts"] == 1
        assert len(uploads(stack, job_id)) == 1
        order = {"pending": 0, "processing": 1, "completed": 2}
        steps = [order[s["status"]] for s in seen]
        assert steps == sorted(steps), f"status went backwards for {job_id}"
        progress = [s["progress"] for s in seen if s["status"] == "processing"]
        assert progress == sorted(progress)
        positions = [s["queue_position"] for s in seen if s["status"] == "pending"]
        assert all(p is not None and p >= 0 for p in positions)
    busy: dict[str, list[tuple[str, str]]] = {}
    for job_id in job_ids:
        row = rows[job_id]
        busy.setdefault(row["agent_id"], []).append((row["started_at"], row["completed_at"]))
    assert len(busy) >= 2, "the work was spread over the agents"
    for agent_id, spans in busy.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"{agent_id} ran two jobs at once"


def test_silent_agent_is_replaced_and_its_late_complete_refused(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**FAST_RECOVERY)
    frozen = stack.start_agent()
    with stack.client() as client:
        job_id = submit(client, speech(10))
        wait_for(client, job_id, generating)
        frozen.send_signal(signal.SIGSTOP)
        stack.start_agent()
        final = wait_for(client, job_id, terminal, timeout=120)
        assert final["status"] == "completed", stack.logs()
        first_url = client.get(f"/result/{job_id}").json()["url"]
        published = httpx.get(first_url).content
        frozen.send_signal(signal.SIGCONT)
        refused = re.compile(rf'"path":"/agent/jobs/{job_id}/(progress|complete)","status":409')
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not refused.search(stack.logs()):
            time.sleep(0.5)
        after = client.get(f"/status/{job_id}").json()
        again = httpx.get(client.get(f"/result/{job_id}").json()["url"]).content
    assert refused.search(stack.logs()), "the zombie's late report was not refused"
    assert after["status"] == "completed"
    assert after["attempts"] == 2
    assert again == published
    assert frozen.poll() is None, "the zombie agent survived and keeps pulling"


def test_expiry_with_short_retention_deletes_blobs_and_answers_410(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**FAST_RECOVERY, VIDEO_RETENTION_HOURS="0.0005")
    stack.start_agent()
    with stack.client() as client:
        job_id = submit(client, speech(2))
        completed = wait_for(client, job_id, terminal)
        assert completed["status"] == "completed", stack.logs()
        wait_for(client, job_id, lambda s: s["status"] == "expired", timeout=30)
        response = client.get(f"/result/{job_id}")
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "RESULT_EXPIRED"
    assert not list((stack.data_dir / "blobs").rglob(f"*{job_id}*"))
    assert not list((stack.data_dir / "blobs" / "inputs").rglob("*.*"))


def test_cancelled_processing_job_stops_its_agent_quickly(
    stack_factory: StackFactory, speech: Callable[[float], Path]
) -> None:
    stack = stack_factory(**FAST_RECOVERY)
    stack.start_agent()
    with stack.client() as client:
        long_job = submit(client, speech(60), resolution="720p")
        wait_for(client, long_job, generating)
        cancelled_at = time.monotonic()
        assert client.delete(f"/jobs/{long_job}").json()["status"] == "cancelled"
        next_job = submit(client, speech(2))
        wait_for(client, next_job, lambda s: s["status"] != "pending", timeout=30)
        freed_in = time.monotonic() - cancelled_at
        final = wait_for(client, next_job, terminal)
    assert final["status"] == "completed"
    assert freed_in < 8, f"the agent took {freed_in:.1f} s to drop the cancelled job"
    assert job_rows(stack)[long_job]["status"] == "cancelled"
    assert not uploads(stack, long_job)
    print(f"agent free {freed_in:.1f} s after cancel")
