"""Resident mode: the agent's model worker loads upstream once and serves every job."""

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from contracts import Capability, ClaimResponse, Quality, SpeakerMode, Stage
from gpu_agent.edge_client import EdgeClient
from gpu_agent.job_log import JobLog
from gpu_agent.pipeline import Pipeline, SegmentsQueued
from gpu_agent.progress import CancelSignal
from infinitetalk.engine import CancelledError
from infinitetalk.factory import start_infinitetalk
from infinitetalk.upstream.engine import UpstreamEngine
from infinitetalk.upstream.resident_mode import ResidentBackend
from tests.gpu_agent.conftest import FakeCloud
from tests.gpu_agent.test_fanout_tasks import grants
from tests.infinitetalk.test_fanout_media import bursts
from tests.upstream_smoke.conftest import (
    PORTRAIT,
    REPO,
    SMOKE_DIR,
    dubbing_run,
    engine_settings,
    generate,
    once_generating,
    out_of_memory_failure,
    two_chunk_run,
    two_speaker_run,
    verify_mp4,
)


@pytest.fixture(scope="module")
def engine(upstream_dir: Path, models: Path) -> Iterator[UpstreamEngine[ResidentBackend]]:
    engine = start_infinitetalk(engine_settings("resident", upstream_dir, models))
    assert isinstance(engine, UpstreamEngine) and isinstance(engine.backend, ResidentBackend)
    yield engine
    engine.close()


def frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_two_chunks_stream_into_one_video(
    engine: UpstreamEngine[ResidentBackend],
    speech: dict[str, Path],
    tmp_path: Path,
    summary: dict[str, Any],
) -> None:
    progress = two_chunk_run("resident", engine, speech["two_chunks"], tmp_path, summary)
    percents = [p for p, _ in progress]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert {Stage.GENERATING, Stage.ENCODING} <= {stage for _, stage in progress}


def test_short_audio_is_padded_for_upstream_then_trimmed_back(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    result, _ = generate(engine, speech["short"], tmp_path)
    verify_mp4(result.path, 2.0)


def test_fast_profile_merges_the_lora_and_takes_it_out_again(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    """Same seed and inputs: fast differs from standard, and standard after fast is as before."""
    before, _ = generate(engine, speech["short"], tmp_path / "before")
    fast, _ = generate(engine, speech["short"], tmp_path / "fast", quality=Quality.FAST)
    after, _ = generate(engine, speech["short"], tmp_path / "after")
    verify_mp4(fast.path, 2.0)
    standard = frames(before.path).astype(np.int16)
    assert np.abs(frames(fast.path) - standard).mean() > 1.0
    assert np.abs(frames(after.path) - standard).mean() < 0.5
    assert engine.backend.worker.reloads == 0


def test_cancel_stops_generation_and_the_worker_serves_the_next_job(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(CancelledError):
        generate(engine, speech["long"], tmp_path / "cancelled", cancel_when=once_generating)
    assert time.monotonic() - started < 60
    assert engine.backend.worker.reloads == 0
    result, _ = generate(engine, speech["short"], tmp_path / "next")
    verify_mp4(result.path, 2.0)


def test_an_out_of_memory_error_in_upstream_is_reported_as_such(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    failure = out_of_memory_failure(engine, speech["short"], tmp_path)
    assert not failure.retryable
    assert engine.backend.worker.reloads == 0


def test_int8_quantised_model_with_teacache(
    upstream_dir: Path, models: Path, speech: dict[str, Path], tmp_path: Path
) -> None:
    """optimum-quanto's int8 DiT and T5, read back by upstream's `requantize`; TeaCache on."""
    settings = engine_settings(
        "resident",
        upstream_dir,
        models,
        INFINITETALK_QUANT="int8",
        INFINITETALK_TEACACHE="1",
    )
    engine = start_infinitetalk(settings)
    try:
        assert engine.quality_unavailable(Quality.FAST) is not None  # no LoRA on int8
        result, _ = generate(engine, speech["short"], tmp_path)
    finally:
        engine.close()
    verify_mp4(result.path, 2.0)


def test_a_parallel_job_plans_renders_two_segments_and_stitches_them(
    engine: UpstreamEngine[ResidentBackend], tmp_path: Path, summary: dict[str, Any]
) -> None:
    """The agent's pipeline for a parallel job, with upstream in the resident worker: the
    plan cuts at the pause and uploads the segments' audio and the AAC track, each segment
    runs as its own task (under one chunk each, so padded, at the fast profile's 4 steps), and
    the stitch joins them under the planner's track and checks every seam."""
    audio = bursts(tmp_path / "phrases.wav", [(1.8, True), (0.6, False), (1.8, True)])
    audio_seconds = 4.2
    cloud = FakeCloud(
        blobs={"/inputs/image.png": PORTRAIT.read_bytes(), "/blobs/audio.wav": audio.read_bytes()}
    )
    cloud.replies["segments"] = lambda r, b: httpx.Response(
        200, json={**grants(r, b).json(), "audio_track_upload_url": "/blobs/track.m4a?sig=t"}
    )
    cloud.replies["commit"] = lambda r, b: httpx.Response(200, json={"ok": True})
    base = cloud.claim_body()
    base["settings"]["quality"] = "fast"  # 4 steps: the path is the point, not the samples

    with cloud.client() as http:
        pipeline = Pipeline(
            edge=EdgeClient(http, base_url="http://edge.test", token="smoke-agent-token"),
            transfers=http,
            engine=engine,
        )

        def run(task: str, **claim: Any) -> Any:
            body = ClaimResponse.model_validate({**base, "task": task, **claim})
            workdir = tmp_path / f"{task}-{len(cloud.calls)}"
            workdir.mkdir()
            log = JobLog(logging.getLogger("smoke"), {"task": task})
            return pipeline.run(body, workdir, CancelSignal(), lambda _: None, log)

        started = time.monotonic()
        plan = {"max_segments": 2, "min_seconds": 1.0, "max_seconds": 3.0, "agents_seen": 2}
        assert run("plan", plan=plan) == SegmentsQueued(2)
        pipeline.tracks.wait(60)
        cloud.blobs.update(cloud.uploads)
        (registered,) = cloud.bodies("segments")
        spans = [(s["start_seconds"], s["end_seconds"]) for s in registered["segments"]]
        assert 1.8 <= spans[0][1] <= 2.4 and spans[1][1] == pytest.approx(audio_seconds)
        for index, (start, end) in enumerate(spans):
            inputs = {**base["inputs"], "audio_url": f"/blobs/seg-{index}.wav?sig=s"}
            output = {"upload_url": f"/blobs/s{index}.mp4?sig=p", "key": f"s{index}.mp4"}
            segment = {
                "parent_job_id": base["job_id"],
                "index": index,
                "count": 2,
                "start_seconds": start,
                "end_seconds": end,
            }
            result = run("segment", inputs=inputs, output=output, segment=segment)
            assert result.engine == "infinitetalk"
            cloud.blobs[f"/blobs/s{index}.mp4"] = cloud.uploads[f"/blobs/s{index}.mp4"]
        stitch = {
            "parent_job_id": base["job_id"],
            "segment_urls": ["/blobs/s0.mp4?sig=g", "/blobs/s1.mp4?sig=g"],
            "segment_seconds": spans,
            "audio_seconds": audio_seconds,
            "audio_track_url": "/blobs/track.m4a?sig=g",
        }
        output = {"upload_url": "/blobs/stitched.mp4?sig=p", "key": "stitched.mp4"}
        result = run("stitch", stitch=stitch, output=output)
    seconds = time.monotonic() - started
    stitched = SMOKE_DIR / "parallel.mp4"
    stitched.write_bytes(cloud.uploads["/blobs/stitched.mp4"])
    fetched = [call.url.split("?")[0] for call in cloud.calls if call.kind == "get"]
    assert "http://edge.test/blobs/track.m4a" in fetched  # the stitch only remuxed it
    summary["parallel"] = {
        "frames": verify_mp4(stitched, audio_seconds),
        "segments": [list(span) for span in spans],
        "seconds": round(seconds, 1),
        "size_bytes": result.size_bytes,
        "output": str(stitched.relative_to(REPO)),
    }


def test_a_video_is_dubbed(engine: UpstreamEngine[ResidentBackend], tmp_path: Path) -> None:
    dubbing_run(engine, tmp_path)


def test_two_speakers_one_after_the_other_on_the_multi_weights(
    engine: UpstreamEngine[ResidentBackend], tmp_path: Path
) -> None:
    assert Capability.TWO_SPEAKERS in engine.capabilities()
    two_speaker_run(engine, SpeakerMode.SEQUENTIAL, tmp_path)


def test_two_speakers_at_once_then_one_speaker_on_the_single_weights(
    engine: UpstreamEngine[ResidentBackend], speech: dict[str, Path], tmp_path: Path
) -> None:
    """`para` on two tracks of different lengths (padded to one), then a one-speaker job:
    the worker swaps the audio weights in place both ways, never reloading the model."""
    two_speaker_run(engine, SpeakerMode.SIMULTANEOUS, tmp_path / "two")
    result, _ = generate(engine, speech["short"], tmp_path / "one")
    verify_mp4(result.path, 2.0)
    assert engine.backend.worker.reloads == 0
