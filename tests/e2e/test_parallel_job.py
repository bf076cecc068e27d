"""A parallel job on the live stack with two preview agents: planned at the audio's pauses,
its segments run side by side, stitched, and the MP4 checked at every seam with PyAV."""

import itertools
import json
import threading
from collections.abc import Callable
from pathlib import Path

import av
import httpx

from tests.e2e.conftest import EXAMPLES, Stack, terminal, wait_for
from tests.infinitetalk.test_fanout_media import bursts

FPS = 25
PHRASES = [(2.4, True), (0.6, False), (2.4, True), (0.6, False), (2.4, True)]  # 8.4 s
"""Speech-like bursts with two real pauses, so the planner has two places to cut."""


def events(client: httpx.Client, job_id: str, into: list[tuple[str, dict]]) -> None:
    """Every event of the job's stream until the edge closes it."""
    with client.stream("GET", f"/jobs/{job_id}/events", timeout=60) as response:
        assert response.status_code == 200
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                into.append((kind, json.loads(line.removeprefix("data: "))))


def timeline(path: Path) -> tuple[list[int], list[int], float, tuple[int, int]]:
    """Decoded frames' indices and mean levels, the audio's length and the video's size."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        indices, levels = [], []
        for frame in container.decode(video):
            assert frame.pts is not None and frame.time_base is not None
            indices.append(round(frame.pts * frame.time_base * FPS))
            levels.append(int(frame.to_ndarray(format="gray").mean()))
        size = (video.width, video.height)
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        assert audio.duration is not None and audio.time_base is not None
        seconds = float(audio.duration * audio.time_base)  # the edit list's: without priming
    return indices, levels, seconds, size


def test_a_parallel_job_runs_its_segments_on_two_agents_and_stitches_them(
    stack_factory: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = stack_factory(SEGMENT_MIN_SECONDS="1.5", SEGMENT_MAX_SECONDS="3.2")
    stack.start_agent()
    stack.start_agent()
    audio = bursts(tmp_path / "phrases.wav", PHRASES)
    audio_seconds = sum(seconds for seconds, _ in PHRASES)
    with stack.client() as client:
        with (EXAMPLES / "portrait.png").open("rb") as img, audio.open("rb") as wav:
            response = client.post(
                "/generate",
                files={"image": ("portrait.png", img), "audio": ("phrases.wav", wav)},
                data={"prompt": "A presenter talking", "resolution": "480p", "parallel": "3"},
            )
        assert response.status_code == 200, response.text
        job_id = response.json()["job_id"]
        streamed: list[tuple[str, dict]] = []
        reader = threading.Thread(target=events, args=(client, job_id, streamed))
        reader.start()
        seen: list[dict] = []
        final = wait_for(client, job_id, terminal, timeout=60, seen=seen)
        reader.join(30)
        assert final["status"] == "completed", stack.logs()
        mp4 = tmp_path / "out.mp4"
        mp4.write_bytes(httpx.get(client.get(f"/result/{job_id}").json()["url"]).content)

    # The status listed the segments with their states while they ran.
    split = [s for s in seen if s["segments"]]
    assert split, seen
    spans = [(s["start_seconds"], s["end_seconds"]) for s in final["segments"]]
    assert 2 <= len(spans) <= 3 and spans[0][0] == 0 and spans[-1][1] == audio_seconds
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    states = {seg["status"] for s in split for seg in s["segments"]}
    assert "processing" in states and {seg["status"] for seg in final["segments"]} == {"completed"}
    # Cuts fall in the pauses, on whole frames.
    for _, end in spans[:-1]:
        assert 2.4 <= end <= 3.0 or 5.4 <= end <= 6.0, spans
        assert round(end * FPS) == end * FPS

    # The stream reported the parent's progress and ended at completed.
    assert not reader.is_alive()
    assert streamed[-1][0] == "status" and streamed[-1][1]["status"] == "completed"
    progress = [data["progress"] for _, data in streamed]
    assert progress == sorted(progress) and len({*progress}) >= 3
    assert any(data["segments"] for _, data in streamed)
    assert {data["job_id"] for _, data in streamed} == {job_id}

    # The seams, checked on the MP4 with PyAV alone.
    indices, levels, seconds, size = timeline(mp4)
    frames = round(audio_seconds * FPS)
    assert len(indices) == frames  # exactly round(audio_seconds x 25)
    assert sorted(indices) == list(range(frames))  # none duplicated, none missing
    assert abs(seconds - audio_seconds) <= 1 / FPS  # the one audio track covers the video
    assert size[1] == 480 or size[0] == 480
    for _, end in spans[:-1]:
        seam = round(end * FPS)
        # In sync: the frame shown at the seam's time is the next segment's first frame,
        # and the pictures on both sides are the portrait (no black or repeated filler).
        assert indices.count(seam - 1) == indices.count(seam) == 1
        assert abs(seam / FPS - end) <= 1 / FPS
        assert levels[seam - 1] > 16 and levels[seam] > 16
