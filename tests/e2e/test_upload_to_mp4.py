"""The most important test: upload over HTTP -> completed job -> downloaded, playable MP4."""

from pathlib import Path

import av
import httpx

from tests.conftest import png_bytes
from tests.e2e.conftest import EXAMPLES, Stack, submit, terminal, wait_for

PNG_HEADER_BYTES = 33
"""The signature and the IHDR chunk: all the edge reads of a PNG."""


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


def check_mp4(path: Path, expected_seconds: float, short_side: int) -> None:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert video.average_rate == 25
        assert min(video.codec_context.width, video.codec_context.height) == short_side
        assert audio.codec_context.name == "aac"
        frames = sum(1 for _ in container.decode(video))
    assert abs(frames / 25 - expected_seconds) <= 1 / 25 + 1e-6


def test_examples_become_a_playable_mp4(stack: Stack, tmp_path: Path) -> None:
    stack.start_agent()
    audio = EXAMPLES / "speech.wav"
    seen: list[dict] = []
    with stack.client() as client:
        job_id = submit(client, audio)
        final = wait_for(client, job_id, terminal, seen=seen)
        assert final["status"] == "completed", f"{final}\n{stack.logs()}"
        progress = [s["progress"] for s in seen if s["status"] == "processing"]
        assert progress == sorted(progress)
        assert final["engine"] == "preview"
        result = client.get(f"/result/{job_id}").json()
    out = tmp_path / "out.mp4"
    with httpx.stream("GET", result["url"]) as download, out.open("wb") as f:
        assert download.status_code == 200
        for chunk in download.iter_bytes():
            f.write(chunk)
    assert out.stat().st_size == result["size_bytes"]
    check_mp4(out, audio_seconds(audio), 480)


def test_undecodable_image_fails_with_invalid_input_and_is_not_retried(stack: Stack) -> None:
    """The edge judges only the headers; the agent decodes, fails fast, never retries."""
    stack.start_agent()
    fake_png = png_bytes()[:PNG_HEADER_BYTES] + bytes(range(256)) * 64
    with stack.client() as client:
        created = client.post(
            "/generate",
            files={
                "image": ("p.png", fake_png),
                "audio": ("a.wav", (EXAMPLES / "speech.wav").read_bytes()),
            },
            data={"prompt": "x", "resolution": "480p"},
        ).json()
        final = wait_for(client, created["job_id"], terminal)
    assert final["status"] == "failed", f"{final}\n{stack.logs()}"
    assert final["error"]["code"] == "INVALID_INPUT"
    assert final["attempts"] == 1
