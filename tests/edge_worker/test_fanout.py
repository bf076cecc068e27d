"""Segment fan-out on the edge over HTTP (the real local edge, in process): the `parallel`
option, planning, the segments and the stitch as jobs of their own, the parent's view, and
what failures, cancels, lost agents and repeated calls do to a split job."""

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from litestar.testing import TestClient

from edge_worker.domain import jobs, segments
from edge_worker.domain.jobs import SegmentPlan
from edge_worker.local import LocalRuntime
from tests.conftest import png_bytes, wav_bytes
from tests.edge_worker.conftest import (
    AGENT_AUTH,
    AUTH,
    PULL_URL,
    QUEUE_AUTH,
    FakeClock,
    invalid_fields,
)
from tests.edge_worker.test_agent_api import RESULT, VIDEO, claim, post
from tests.edge_worker.test_uploads import generate, uploaded

BOUNDS = [(0.0, 20.0), (20.0, 40.0), (40.0, 60.0)]
SEGMENT_AUDIO = wav_bytes(0.25)


def submit(client: TestClient, parallel: str = "auto") -> str:
    files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    data = {"prompt": "A person talking", "parallel": parallel}
    response = client.post("/generate", headers=AUTH, files=files, data=data)
    assert response.status_code == 200, response.text
    assert response.json()["parallel"] == (int(parallel) if parallel.isdigit() else parallel)
    return str(response.json()["job_id"])


def register(
    client: TestClient, job_id: str, token: str, bounds: list[tuple[float, float]] = BOUNDS
) -> Any:
    items = [{"index": i, "start_seconds": s, "end_seconds": e} for i, (s, e) in enumerate(bounds)]
    body = {"claim_token": token, "audio_seconds": bounds[-1][1], "segments": items}
    return post(client, job_id, "segments", body)


def split(
    client: TestClient, job_id: str, agent: str = "planner", track: bytes | None = None
) -> None:
    """Claim the job as its planner, register BOUNDS, upload each segment's audio, commit,
    then upload `track` as the audio track if given."""
    grant = claim(client, job_id, agent)
    assert grant["task"] == "plan"
    reply = register(client, job_id, grant["claim_token"])
    assert reply.status_code == 200, reply.text
    for item in reply.json()["segments"]:
        put = client.put(
            item["audio_upload_url"], content=SEGMENT_AUDIO, headers={"Content-Type": "audio/wav"}
        )
        assert put.status_code == 200, put.text
    committed = post(client, job_id, "segments/commit", {"claim_token": grant["claim_token"]})
    assert committed.status_code == 200, committed.text
    if track is not None:
        put = client.put(
            reply.json()["audio_track_upload_url"],
            content=track,
            headers={"Content-Type": "audio/mp4"},
        )
        assert put.status_code == 200, put.text


def finish(client: TestClient, grant: dict[str, Any], gpu_seconds: float = 10.0) -> Any:
    """Upload a video for a claimed task and complete it."""
    put = client.put(
        grant["output"]["upload_url"], content=VIDEO, headers={"Content-Type": "video/mp4"}
    )
    assert put.status_code == 200, put.text
    result = {**RESULT, "size_bytes": len(VIDEO), "gpu_seconds": gpu_seconds}
    return post(
        client, grant["job_id"], "complete", {"claim_token": grant["claim_token"], "result": result}
    )


def status(client: TestClient, job_id: str) -> dict[str, Any]:
    response = client.get(f"/status/{job_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


def queued_ids(client: TestClient) -> list[str]:
    pulled = client.post(PULL_URL, json={"batch_size": 50}, headers=QUEUE_AUTH).json()
    from contracts import PulledMessage, QueueMessage

    return [
        QueueMessage.decode_pulled(PulledMessage.model_validate(m)).job_id
        for m in pulled["result"]["messages"]
    ]


def sweep(runtime: LocalRuntime) -> dict[str, int]:
    return vars(asyncio.run(runtime.use_cases.maintenance.sweep()))


# --- the option ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "33", "0", "many", "04x", "-2", "2.5"])
def test_parallel_refuses_anything_but_off_auto_or_2_to_32(client: TestClient, value: str) -> None:
    files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    data = {"prompt": "A person talking", "parallel": value}
    assert invalid_fields(client.post("/generate", headers=AUTH, files=files, data=data)) == [
        "parallel"
    ]


def test_parallel_is_stored_and_shown_off_by_default(client: TestClient) -> None:
    plain = client.post(
        "/generate",
        headers=AUTH,
        files={"image": ("f.png", png_bytes()), "audio": ("s.wav", wav_bytes())},
        data={"prompt": "A person talking"},
    ).json()
    assert (plain["parallel"], plain["segments"]) == ("off", None)
    assert claim(client, plain["job_id"])["task"] == "job"
    for value in ("auto", "2", "32"):
        job_id = submit(client, value)
        assert status(client, job_id)["parallel"] == (int(value) if value.isdigit() else value)


def test_json_generate_takes_parallel(client: TestClient) -> None:
    bad = generate(client, uploaded(client), parallel=1)
    assert invalid_fields(bad) == ["parallel"]
    job = generate(client, uploaded(client), parallel=8).json()
    assert job["parallel"] == 8
    grant = claim(client, job["job_id"])
    assert (grant["task"], grant["plan"]["max_segments"], grant["settings"]["parallel"]) == (
        "plan",
        8,
        8,
    )
    assert generate(client, uploaded(client), parallel="auto").json()["parallel"] == "auto"


# --- planning -----------------------------------------------------------------------------


def test_the_first_claim_plans_with_the_settings_and_the_agents_seen(client: TestClient) -> None:
    other = client.post(
        "/generate",
        headers=AUTH,
        files={"image": ("f.png", png_bytes()), "audio": ("s.wav", wav_bytes())},
        data={"prompt": "A person talking"},
    ).json()
    claim(client, other["job_id"], "agent-elsewhere")
    grant = claim(client, submit(client), "planner")
    assert grant["task"] == "plan"
    assert grant["plan"] == {
        "max_segments": None,
        "min_seconds": 20.0,
        "max_seconds": 120.0,
        "agents_seen": 2,
    }
    assert (grant["segment"], grant["stitch"]) == (None, None)


@pytest.mark.parametrize(
    ("bounds", "field"),
    [
        ([(0.0, 20.0), (20.5, 60.0)], "segments.1"),  # a gap
        ([(0.0, 10.0), (10.0, 60.0)], "segments.0"),  # under the shortest length
        ([(0.0, 30.0), (30.0, 30.0)], "segments.1"),  # empty
        ([(1.0, 30.0), (30.0, 60.0)], "segments.0"),  # not from the start
    ],
)
def test_a_plan_must_be_contiguous_and_segments_not_too_short(
    client: TestClient, bounds: list[tuple[float, float]], field: str
) -> None:
    job_id = submit(client)
    token = claim(client, job_id)["claim_token"]
    assert invalid_fields(register(client, job_id, token, bounds)) == [field]


def test_a_plan_is_numbered_covers_the_audio_and_respects_the_cap(client: TestClient) -> None:
    job_id = submit(client, "2")
    token = claim(client, job_id)["claim_token"]
    assert invalid_fields(register(client, job_id, token)) == ["segments"]  # 3 > 2
    items = [{"index": 1, "start_seconds": 0.0, "end_seconds": 30.0}]
    body = {"claim_token": token, "audio_seconds": 30.0, "segments": items}
    assert invalid_fields(post(client, job_id, "segments", body)) == ["segments.0"]
    items = [{"index": 0, "start_seconds": 0.0, "end_seconds": 30.0}]
    short = {"claim_token": token, "audio_seconds": 40.0, "segments": items}
    assert invalid_fields(post(client, job_id, "segments", short)) == ["segments"]
    too_long = {**short, "audio_seconds": 900.0}
    assert invalid_fields(post(client, job_id, "segments", too_long)) == ["audio_seconds"]
    # Past the longest length: the planner found no pause in time, and cut at the next one.
    long_plan = register(client, job_id, token, [(0.0, 130.0), (130.0, 150.0)])
    assert long_plan.status_code == 200, long_plan.text
    # One segment of any length: the planner found nowhere to cut.
    one = {
        "claim_token": token,
        "audio_seconds": 300.0,
        "segments": [{**items[0], "end_seconds": 300.0}],
    }
    assert post(client, job_id, "segments", one).status_code == 200
    stale = register(client, job_id, "not-the-token", [(0.0, 30.0), (30.0, 60.0)])
    assert stale.status_code == 409
    plain = client.post(
        "/generate",
        headers=AUTH,
        files={"image": ("f.png", png_bytes()), "audio": ("s.wav", wav_bytes())},
        data={"prompt": "A person talking"},
    ).json()["job_id"]
    plain_token = claim(client, plain)["claim_token"]
    assert register(client, plain, plain_token).status_code == 409  # not a parallel job
    assert register(client, "no-such-job", "t").status_code == 404


def test_commit_needs_a_plan_and_every_segments_audio(client: TestClient) -> None:
    job_id = submit(client)
    token = claim(client, job_id)["claim_token"]
    early = post(client, job_id, "segments/commit", {"claim_token": token})
    assert (early.status_code, early.json()["error"]["code"]) == (409, "CONFLICT")
    grants = register(client, job_id, token).json()["segments"]
    assert [g["audio_key"] for g in grants] == [f"videos/{job_id}/plan-1/{i}.wav" for i in range(3)]
    client.put(
        grants[0]["audio_upload_url"], content=SEGMENT_AUDIO, headers={"Content-Type": "audio/wav"}
    )
    missing = post(client, job_id, "segments/commit", {"claim_token": token})
    assert missing.status_code == 503
    assert missing.json()["error"]["details"]["key"] == grants[1]["audio_key"]
    assert status(client, job_id)["segments"] is None


def test_commit_splits_the_job_once(client: TestClient, runtime: LocalRuntime) -> None:
    job_id = submit(client)
    assert queued_ids(client) == [job_id]
    split(client, job_id)
    view = status(client, job_id)
    assert (view["status"], view["stage"], view["progress"]) == ("processing", "generating", 0)
    assert [
        (s["index"], s["status"], s["start_seconds"], s["end_seconds"]) for s in view["segments"]
    ] == [(i, "pending", s, e) for i, (s, e) in enumerate(BOUNDS)]
    assert view["queue_position"] == 0
    children = [segments.segment_id(job_id, i) for i in range(3)]
    assert queued_ids(client) == children
    # The planner let go: its heartbeat is refused, and a repeated commit changes nothing.
    parent = asyncio.run(runtime.store.get(job_id))
    assert parent is not None and parent.claim_token is None and parent.agent_id is None
    again = post(client, job_id, "segments/commit", {"claim_token": "whatever"})
    assert again.status_code == 200
    assert queued_ids(client) == []
    assert len(asyncio.run(runtime.store.children(job_id))) == 3
    # Children are not the client's jobs.
    assert client.get(f"/status/{children[0]}", headers=AUTH).status_code == 404
    assert client.delete(f"/jobs/{children[0]}", headers=AUTH).status_code == 404
    assert [j["job_id"] for j in client.get("/jobs", headers=AUTH).json()["jobs"]] == [job_id]


def test_a_second_planner_after_a_lost_one_never_doubles_the_segments(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    job_id = submit(client)
    first = claim(client, job_id, "planner-1")
    assert register(client, job_id, first["claim_token"]).status_code == 200
    clock.advance(seconds=600)
    assert sweep(runtime)["requeued_lost"] == 1
    split(client, job_id, "planner-2")
    late = post(client, job_id, "segments/commit", {"claim_token": first["claim_token"]})
    assert late.status_code == 200  # the job is split already: nothing more happens
    late_plan = register(client, job_id, first["claim_token"])
    assert late_plan.status_code == 409
    assert len(asyncio.run(runtime.store.children(job_id))) == 3
    assert status(client, job_id)["attempts"] == 2


# --- segments and the stitch --------------------------------------------------------------


def test_segments_and_the_stitch_run_as_jobs_and_the_parent_completes_once(
    client: TestClient, runtime: LocalRuntime
) -> None:
    job_id = submit(client)
    split(client, job_id)
    assert len(queued_ids(client)) == 4  # the job's own message, then its segments'
    grants = [claim(client, segments.segment_id(job_id, i), f"agent-{i}") for i in range(3)]
    first = grants[0]
    assert first["task"] == "segment"
    assert first["segment"] == {
        "parent_job_id": job_id,
        "index": 0,
        "count": 3,
        "start_seconds": 0.0,
        "end_seconds": 20.0,
    }
    assert client.get(first["inputs"]["audio_url"]).content == SEGMENT_AUDIO
    assert client.get(first["inputs"]["image_url"]).content.startswith(b"\x89PNG")
    assert first["output"]["key"] == f"videos/{job_id}/segments/0/1.mp4"
    assert first["prompt"] == "A person talking"

    progress = {"claim_token": first["claim_token"], "progress": 50, "stage": "generating"}
    assert (
        post(client, first["job_id"], "progress", {**progress, "eta_seconds": 10}).status_code
        == 200
    )
    view = status(client, job_id)
    # 50 % of a third of the audio, the segments standing for 95 % of the job.
    assert view["progress"] == pytest.approx(50 / 3 * 0.95, abs=0.01)
    assert view["eta_seconds"] == 10
    assert view["segments"][0]["progress"] == 50

    assert finish(client, grants[0]).status_code == 200
    assert finish(client, grants[1]).status_code == 200
    assert queued_ids(client) == []
    assert finish(client, grants[2]).status_code == 200
    stitch_id = segments.stitch_id(job_id)
    assert queued_ids(client) == [stitch_id]
    view = status(client, job_id)
    assert (view["stage"], view["progress"]) == ("encoding", 95)

    stitch = claim(client, stitch_id, "stitcher")
    assert stitch["task"] == "stitch"
    assert stitch["stitch"]["segment_seconds"] == [list(b) for b in BOUNDS]
    assert (stitch["stitch"]["audio_seconds"], stitch["stitch"]["crossfade_frames"]) == (60.0, 0)
    assert [client.get(u).content for u in stitch["stitch"]["segment_urls"]] == [VIDEO] * 3
    assert client.get(stitch["inputs"]["audio_url"]).content == wav_bytes()
    assert stitch["stitch"]["audio_track_url"] is None  # the planner uploaded none
    assert stitch["output"]["key"] == f"videos/{job_id}/stitch/1.mp4"

    assert finish(client, stitch, gpu_seconds=2.0).status_code == 200
    view = status(client, job_id)
    assert (view["status"], view["stage"], view["progress"]) == ("completed", "done", 100)
    assert client.get(view["result_url"]).content == VIDEO
    assert [s["status"] for s in view["segments"]] == ["completed"] * 3
    parent = asyncio.run(runtime.store.get(job_id))
    assert parent is not None and parent.gpu_seconds == 32.0  # 3 x 10 + the stitch's 2
    # A repeated complete is answered; the job completed once.
    assert finish(client, stitch).status_code == 200
    assert asyncio.run(runtime.store.get(job_id)) == parent
    assert client.get(f"/result/{job_id}", headers=AUTH).json()["size_bytes"] == len(VIDEO)


def test_the_stitch_gets_the_planner_s_audio_track_to_remux(client: TestClient) -> None:
    job_id = submit(client)
    split(client, job_id, track=b"an AAC track")
    for index in range(3):
        finish(client, claim(client, segments.segment_id(job_id, index)))
    stitch = claim(client, segments.stitch_id(job_id))
    assert client.get(stitch["stitch"]["audio_track_url"]).content == b"an AAC track"


def test_two_last_segments_at_once_create_one_stitch(
    client: TestClient, runtime: LocalRuntime
) -> None:
    job_id = submit(client)
    split(client, job_id)
    grants = [claim(client, segments.segment_id(job_id, i)) for i in range(3)]
    finish(client, grants[0])
    queued_ids(client)
    protocol = runtime.use_cases.agent_protocol
    from contracts import CompleteRequest, ResultMetadata

    for grant in grants[1:]:
        client.put(
            grant["output"]["upload_url"], content=VIDEO, headers={"Content-Type": "video/mp4"}
        )

    async def both() -> None:
        result = ResultMetadata.model_validate({**RESULT, "size_bytes": len(VIDEO)})
        await asyncio.gather(
            *(
                protocol.complete(
                    g["job_id"], CompleteRequest(claim_token=g["claim_token"], result=result)
                )
                for g in grants[1:]
            ),
            runtime.use_cases.fanout.advance(job_id),
        )

    asyncio.run(both())
    asyncio.run(runtime.use_cases.fanout.advance(job_id))
    assert queued_ids(client) == [segments.stitch_id(job_id)]
    stitches = [c for c in asyncio.run(runtime.store.children(job_id)) if c.task == "stitch"]
    assert len(stitches) == 1


# --- faults -------------------------------------------------------------------------------


def test_a_segment_that_fails_for_good_fails_the_job_naming_it(client: TestClient) -> None:
    job_id = submit(client)
    split(client, job_id)
    grants = [claim(client, segments.segment_id(job_id, i)) for i in range(3)]
    failed = post(
        client,
        grants[1]["job_id"],
        "fail",
        {"claim_token": grants[1]["claim_token"], "code": "GPU_OUT_OF_MEMORY", "message": "OOM"},
    )
    assert failed.status_code == 200
    view = status(client, job_id)
    assert view["status"] == "failed"
    assert view["error"] == {
        "code": "GPU_OUT_OF_MEMORY",
        "message": "segment 2 of 3 (20.0\u201340.0 s): OOM",
    }
    assert [s["status"] for s in view["segments"]] == ["cancelled", "failed", "cancelled"]
    heartbeat = {"claim_token": grants[0]["claim_token"], "progress": 5, "stage": "generating"}
    assert post(client, grants[0]["job_id"], "progress", heartbeat).json() == {
        "cancel_requested": True
    }
    assert finish(client, grants[2]).status_code == 409


def test_a_retryable_segment_failure_retries_the_segment_only(client: TestClient) -> None:
    job_id = submit(client)
    split(client, job_id)
    child = segments.segment_id(job_id, 0)
    queued_ids(client)
    grant = claim(client, child)
    body = {
        "claim_token": grant["claim_token"],
        "code": "TIMEOUT",
        "message": "t",
        "retryable": True,
    }
    assert post(client, child, "fail", body).status_code == 200
    assert queued_ids(client) == [child]
    view = status(client, job_id)
    assert view["status"] == "processing"
    assert (view["segments"][0]["status"], view["segments"][0]["attempts"]) == ("pending", 1)
    assert claim(client, child, "agent-2")["attempt"] == 2


def test_cancel_cascades_to_running_segments(client: TestClient, runtime: LocalRuntime) -> None:
    job_id = submit(client)
    split(client, job_id)
    grant = claim(client, segments.segment_id(job_id, 0))
    cancelled = client.delete(f"/jobs/{job_id}", headers=AUTH)
    assert cancelled.json()["status"] == "cancelled"
    assert {s["status"] for s in cancelled.json()["segments"]} == {"cancelled"}
    heartbeat = {"claim_token": grant["claim_token"], "progress": 5, "stage": "generating"}
    assert post(client, grant["job_id"], "progress", heartbeat).json() == {"cancel_requested": True}
    assert finish(client, grant).status_code == 409
    # A segment that appears after the cancel (a commit racing it) never reaches an agent.
    parent = asyncio.run(runtime.store.get(job_id))
    assert parent is not None
    late = dataclasses.replace(
        segments.new_segments(parent, [1], ["k0", "k1"], parent.created_at)[0],
        id="late",
        segment_index=7,
    )
    asyncio.run(runtime.store.insert(late))
    refused = client.post("/agent/jobs/late/claim", json={"agent_id": "a"}, headers=AGENT_AUTH)
    assert refused.status_code == 409
    got = asyncio.run(runtime.store.get("late"))
    assert got is not None and got.status.value == "cancelled"


def test_cancel_during_stitching_cancels_the_stitch(client: TestClient) -> None:
    job_id = submit(client)
    split(client, job_id)
    for i in range(3):
        finish(client, claim(client, segments.segment_id(job_id, i)))
    stitch = claim(client, segments.stitch_id(job_id))
    assert status(client, job_id)["stage"] == "encoding"
    assert client.delete(f"/jobs/{job_id}", headers=AUTH).json()["status"] == "cancelled"
    heartbeat = {"claim_token": stitch["claim_token"], "progress": 50, "stage": "encoding"}
    assert post(client, stitch["job_id"], "progress", heartbeat).json() == {
        "cancel_requested": True
    }
    assert finish(client, stitch).status_code == 409
    view = status(client, job_id)
    assert (view["status"], view["result_url"]) == ("cancelled", None)


def test_a_duplicate_delivery_of_a_segment_is_refused(client: TestClient) -> None:
    job_id = submit(client)
    split(client, job_id)
    child = segments.segment_id(job_id, 0)
    grant = claim(client, child, "agent-1")
    again = client.post(
        f"/agent/jobs/{child}/claim", json={"agent_id": "agent-2"}, headers=AGENT_AUTH
    )
    assert again.status_code == 409
    # The holder's own repeat (its reply was lost) gets its claim back.
    assert claim(client, child, "agent-1")["claim_token"] == grant["claim_token"]


def test_a_lost_agent_mid_segment_is_replaced_and_the_job_completes_once(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    job_id = submit(client)
    split(client, job_id)
    queued_ids(client)
    lost = claim(client, segments.segment_id(job_id, 1), "agent-lost")
    others = [claim(client, segments.segment_id(job_id, i)) for i in (0, 2)]
    clock.advance(seconds=600)
    report = sweep(runtime)
    assert report["requeued_lost"] == 3 and report["split_checked"] == 1
    assert status(client, job_id)["status"] == "processing"  # the parent itself is not lost
    assert sorted(queued_ids(client)) == sorted(segments.segment_id(job_id, i) for i in range(3))
    assert finish(client, lost).status_code == 409  # the lost agent's late upload is fenced
    for i in range(3):
        finish(client, claim(client, segments.segment_id(job_id, i), "agent-new"))
    assert [o["attempt"] for o in others] == [1, 1]
    finish(client, claim(client, segments.stitch_id(job_id)))
    view = status(client, job_id)
    assert view["status"] == "completed"
    assert [s["attempts"] for s in view["segments"]] == [2, 2, 2]


def test_the_sweep_finishes_a_split_that_an_edge_crash_interrupted(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    job_id = submit(client)
    token = claim(client, job_id)["claim_token"]
    plan = SegmentPlan(attempt=1, audio_seconds=60.0, bounds=tuple(BOUNDS))
    transition = runtime.use_cases.transitions.transition
    now = clock.now()
    asyncio.run(
        transition(job_id, lambda j: jobs.record_plan(j, claim_token=token, plan=plan, now=now))
    )
    # Split, then the edge died before it created the children.
    asyncio.run(transition(job_id, lambda j: jobs.split(j, claim_token=token, now=now)))
    assert asyncio.run(runtime.store.children(job_id)) == []
    clock.advance(seconds=600)
    assert sweep(runtime)["split_checked"] == 1
    assert len(asyncio.run(runtime.store.children(job_id))) == 3


def test_webhooks_report_the_parent_and_never_its_segments(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    data = {
        "prompt": "A person talking",
        "parallel": "auto",
        "webhook_url": "https://hooks.example.com/avatar",
        "webhook_events": "job.progress,job.completed",
    }
    response = client.post("/generate", headers=AUTH, files=files, data=data)
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    split(client, job_id)
    grants = [claim(client, segments.segment_id(job_id, i), f"agent-{i}") for i in range(3)]
    for grant in grants[:2]:
        clock.advance(seconds=10)  # past the progress events' 5 s throttle
        body = {"claim_token": grant["claim_token"], "progress": 50, "stage": "generating"}
        assert post(client, grant["job_id"], "progress", body).status_code == 200
    for grant in grants:
        assert finish(client, grant).status_code == 200
    assert finish(client, claim(client, segments.stitch_id(job_id), "stitcher")).status_code == 200

    store = runtime.use_cases.webhooks.context.webhooks
    events = asyncio.run(store.job_events(job_id))
    assert events[-1].type == "job.completed"
    bodies = [json.loads(event.payload) for event in events]
    assert all(body["data"]["job_id"] == job_id for body in bodies)
    progress = [body["data"]["progress"] for body in bodies if body["type"] == "job.progress"]
    assert len(progress) >= 2 and progress == sorted(progress) and progress[-1] > 30
    assert bodies[-1]["data"]["status"] == "completed"
    children = [*(segments.segment_id(job_id, i) for i in range(3)), segments.stitch_id(job_id)]
    for child_id in children:
        child = asyncio.run(runtime.store.get(child_id))
        assert child is not None and child.webhook_url is None
        assert asyncio.run(store.job_events(child_id)) == []
