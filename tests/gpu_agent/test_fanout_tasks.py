"""A parallel job's plan and stitch tasks on a real agent, with real media, over the fakes."""

from __future__ import annotations

import io
import logging
import threading
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.sleep_engine import SleepEngine
from contracts import SegmentCommitRequest, SegmentPlanItem, SegmentPlanRequest
from gpu_agent import cli
from gpu_agent.audio_track import AudioTracks
from gpu_agent.edge_client import ClaimConflict, EdgeClient, EdgeError
from gpu_agent.job_log import JobLog
from infinitetalk.media.audio_pass import encode_aac, track_seconds
from infinitetalk.media.segment_audio import SegmentBounds
from tests.conftest import png_bytes
from tests.infinitetalk.test_fanout_media import PATTERN, bursts, render_segments

from .conftest import JOB_ID, FakeCloud, agent_settings, envelope, pulled

PLAN = {"max_segments": None, "min_seconds": 2.0, "max_seconds": 4.0, "agents_seen": 2}


def grants(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "segments": [
                {
                    "index": item["index"],
                    "audio_upload_url": f"/blobs/seg-{item['index']}.wav?sig=s",
                    "audio_key": f"inputs/{JOB_ID}/segments/{item['index']}.wav",
                }
                for item in body["segments"]
            ]
        },
    )


def run_until(cloud: FakeCloud, tmp_path: Path, kinds: tuple[str, ...]) -> None:
    stop = threading.Event()
    cloud.on_call = lambda call: stop.set() if call.kind in kinds else None
    settings = agent_settings(tmp_path / "work")
    assert cli.run_agent(settings, stop, engine=SleepEngine(0.0), transport=cloud.transport()) == 0


def planning_cloud(tmp_path: Path, pattern: list[tuple[float, bool]]) -> FakeCloud:
    audio = bursts(tmp_path / "speech.wav", pattern).read_bytes()
    cloud = FakeCloud(
        messages=[pulled()],
        blobs={"/inputs/image.png": png_bytes((128, 160)), "/blobs/audio.wav": audio},
    )
    body = {**cloud.claim_body(), "task": "plan", "plan": PLAN}
    cloud.replies["claim"] = lambda r, b: httpx.Response(200, json=body)
    cloud.replies["segments"] = grants
    cloud.replies["commit"] = lambda r, b: httpx.Response(200, json={"ok": True})
    return cloud


def test_a_plan_uploads_each_segment_s_audio_then_commits(tmp_path: Path) -> None:
    cloud = planning_cloud(tmp_path, PATTERN)
    run_until(cloud, tmp_path, ("commit", "fail", "complete"))
    (plan,) = cloud.bodies("segments")
    assert plan["claim_token"] == "claim-tok" and plan["audio_seconds"] == pytest.approx(6.4)
    assert [(s["start_seconds"], s["end_seconds"]) for s in plan["segments"]] == [
        (0.0, 3.36),
        (3.36, pytest.approx(6.4)),
    ]
    assert cloud.bodies("commit") == [{"claim_token": "claim-tok"}]
    assert cloud.bodies("fail") == [] and cloud.bodies("complete") == []
    for index, frames in enumerate((84, 76)):
        with wave.open(io.BytesIO(cloud.uploads[f"/blobs/seg-{index}.wav"])) as segment:
            assert segment.getframerate() == 16000
            assert segment.getnframes() == frames * 16000 // 25
    kinds = cloud.kinds()
    assert kinds.index("segments") < kinds.index("put") < kinds.index("commit")
    # The job's progress restarts with its segments: the plan never reports it near done.
    assert all(body["progress"] < 50 for body in cloud.bodies("progress"))


def test_after_the_commit_the_planner_uploads_the_audio_s_aac_track(tmp_path: Path) -> None:
    cloud = planning_cloud(tmp_path, PATTERN)
    cloud.replies["segments"] = lambda r, b: httpx.Response(
        200, json={**grants(r, b).json(), "audio_track_upload_url": "/blobs/track.m4a?sig=t"}
    )
    stop = threading.Event()
    cloud.on_call = lambda call: stop.set() if call.kind == "commit" else None
    settings = agent_settings(tmp_path / "work")
    assert cli.run_agent(settings, stop, engine=SleepEngine(0.0), transport=cloud.transport()) == 0
    track = tmp_path / "track.m4a"
    track.write_bytes(cloud.uploads["/blobs/track.m4a"])  # run_agent waited for it
    assert track_seconds(track) == pytest.approx(6.4, abs=0.001)
    assert cloud.kinds()[-1] == "put" and cloud.bodies("fail") == []
    assert list((tmp_path / "work").iterdir()) == []  # its copy of the audio is gone


def test_a_plan_of_one_segment_runs_the_job_whole(tmp_path: Path) -> None:
    cloud = planning_cloud(tmp_path, [(3.0, True)])
    run_until(cloud, tmp_path, ("complete", "fail"))
    assert cloud.bodies("segments") == [] and cloud.bodies("fail") == []
    (complete,) = cloud.bodies("complete")
    assert complete["result"]["duration_seconds"] == pytest.approx(3.0)


def test_a_stale_claim_at_commit_ends_the_plan_without_a_report(tmp_path: Path) -> None:
    cloud = planning_cloud(tmp_path, PATTERN)
    cloud.replies["commit"] = lambda r, b: envelope(409, "CONFLICT")
    run_until(cloud, tmp_path, ("commit",))
    assert cloud.bodies("fail") == [] and cloud.bodies("complete") == []


def test_an_edge_that_refuses_the_plan_fails_the_job_retryably(tmp_path: Path) -> None:
    cloud = planning_cloud(tmp_path, PATTERN)
    cloud.replies["segments"] = lambda r, b: envelope(422, "INVALID_INPUT", "bad plan")
    run_until(cloud, tmp_path, ("fail",))
    (failed,) = cloud.bodies("fail")
    assert failed["code"] == "INTERNAL_ERROR" and failed["retryable"] is True
    assert "bad plan" in failed["message"]


def segment_videos(tmp_path: Path) -> tuple[bytes, list[bytes]]:
    """The 6.4 s track and its two segments made by the sleep engine."""
    audio, _, videos = render_segments(tmp_path, PATTERN, SegmentBounds(2.0, 4.0, None, 2))
    return audio.read_bytes(), [video.read_bytes() for video in videos]


def stitch_cloud(tmp_path: Path, spans: list[list[float]], **task: Any) -> FakeCloud:
    audio, videos = segment_videos(tmp_path)
    cloud = FakeCloud(
        messages=[pulled()],
        blobs={"/blobs/audio.wav": audio, "/blobs/s0.mp4": videos[0], "/blobs/s1.mp4": videos[1]},
    )
    stitch = {
        "parent_job_id": "parent",
        "segment_urls": ["/blobs/s0.mp4?sig=0", "/blobs/s1.mp4?sig=1"],
        "segment_seconds": spans,
        "crossfade_frames": 0,
        "audio_seconds": 6.4,
        **task,
    }
    body = {**cloud.claim_body(), "task": "stitch", "stitch": stitch}
    cloud.replies["claim"] = lambda r, b: httpx.Response(200, json=body)
    return cloud


def test_a_stitch_uploads_one_checked_video_and_completes(tmp_path: Path) -> None:
    cloud = stitch_cloud(tmp_path, [[0.0, 3.36], [3.36, 6.4]])
    run_until(cloud, tmp_path, ("complete", "fail"))
    (complete,) = cloud.bodies("complete")
    assert complete["result"]["duration_seconds"] == pytest.approx(6.4)
    assert complete["result"]["size_bytes"] == len(cloud.uploads["/videos/out.mp4"])
    progress = [body["progress"] for body in cloud.bodies("progress")]
    assert progress == sorted(progress)


@pytest.mark.parametrize("track_seconds", [6.4, 5.0])
def test_a_stitch_remuxes_the_planner_s_track_when_it_fits(
    tmp_path: Path, track_seconds: float
) -> None:
    spans = [[0.0, 3.36], [3.36, 6.4]]
    cloud = stitch_cloud(tmp_path, spans, audio_track_url="/blobs/track.m4a?sig=t")
    track = encode_aac(
        bursts(tmp_path / "track.wav", [(track_seconds, True)]), tmp_path / "track.m4a"
    )
    cloud.blobs["/blobs/track.m4a"] = track.read_bytes()
    run_until(cloud, tmp_path, ("complete", "fail"))
    (complete,) = cloud.bodies("complete")
    assert complete["result"]["duration_seconds"] == pytest.approx(6.4)
    fetched = [call.url.split("?")[0] for call in cloud.calls if call.kind == "get"]
    assert "http://edge.test/blobs/track.m4a" in fetched
    assert ("http://edge.test/blobs/audio.wav" in fetched) is (track_seconds != 6.4)


def test_a_stitch_whose_segments_do_not_match_the_plan_fails_for_good(tmp_path: Path) -> None:
    cloud = stitch_cloud(tmp_path, [[0.0, 3.2], [3.2, 6.4]])
    run_until(cloud, tmp_path, ("complete", "fail"))
    (failed,) = cloud.bodies("fail")
    assert failed["code"] == "GENERATION_FAILED" and failed["retryable"] is False
    assert "segment 0 (0.00-3.20 s) has 84 frames, not 80" in failed["message"]
    assert "put" not in cloud.kinds()


def test_a_claim_of_a_plan_without_its_block_fails(tmp_path: Path) -> None:
    cloud = planning_cloud(tmp_path, PATTERN)
    body = {**cloud.claim_body(), "task": "plan"}
    cloud.replies["claim"] = lambda r, b: httpx.Response(200, json=body)
    run_until(cloud, tmp_path, ("fail",))
    (failed,) = cloud.bodies("fail")
    assert failed["code"] == "INTERNAL_ERROR" and "no plan block" in failed["message"]


def test_plan_calls_post_to_the_segments_routes(cloud: FakeCloud, edge: EdgeClient) -> None:
    cloud.replies["segments"] = grants
    cloud.replies["commit"] = lambda r, b: httpx.Response(200, json={"ok": True})
    item = SegmentPlanItem(index=0, start_seconds=0.0, end_seconds=1.0)
    reply = edge.plan_segments(
        JOB_ID, SegmentPlanRequest(claim_token="t", audio_seconds=1.0, segments=[item])
    )
    assert reply.segments[0].audio_upload_url == "/blobs/seg-0.wav?sig=s"
    edge.commit_segments(JOB_ID, SegmentCommitRequest(claim_token="t"))
    assert [call.url for call in cloud.calls] == [
        f"http://edge.test/agent/jobs/{JOB_ID}/segments",
        f"http://edge.test/agent/jobs/{JOB_ID}/segments/commit",
    ]
    cloud.replies["commit"] = lambda r, b: envelope(409, "CONFLICT")
    with pytest.raises(ClaimConflict):
        edge.commit_segments(JOB_ID, SegmentCommitRequest(claim_token="t"))
    cloud.replies["segments"] = lambda r, b: httpx.Response(200, json={"nope": 1})
    with pytest.raises(EdgeError, match="malformed"):
        edge.plan_segments(
            JOB_ID, SegmentPlanRequest(claim_token="t", audio_seconds=1.0, segments=[item])
        )


def test_a_track_that_cannot_be_uploaded_is_only_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing waits for the track: the stitch encodes the audio itself."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    source = scratch / "audio.wav"
    source.write_bytes(b"RIFF")

    def encoder(source: Path, destination: Path, max_seconds: float) -> Path:
        destination.write_bytes(b"an AAC track")
        return destination

    refused = httpx.MockTransport(lambda request: httpx.Response(403))
    with httpx.Client(transport=refused) as http:
        tracks = AudioTracks(http, encoder=encoder)
        log = JobLog(logging.getLogger("gpu_agent.test"), {"job_id": JOB_ID})
        with caplog.at_level(logging.INFO, logger="gpu_agent.test"):
            tracks.start(source, "http://blobs.test/track.m4a", 600.0, log, scratch)
            tracks.wait(10)
    assert "audio track not uploaded; the stitch will encode it" in caplog.text
    assert list(tmp_path.iterdir()) == [scratch] and list(scratch.iterdir()) == []
