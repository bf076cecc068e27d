"""The agent with the real preview engine and real media probes (no fakes below the HTTP)."""

from __future__ import annotations

import io
import math
import struct
import threading
import wave
from pathlib import Path

from PIL import Image

from gpu_agent import cli

from .conftest import FakeCloud, agent_settings, pulled


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (128, 160), (200, 150, 120)).save(buffer, "PNG")
    return buffer.getvalue()


def _wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (int(8000 * math.sin(i / 10)) for i in range(int(rate * seconds)))
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buffer.getvalue()


def test_preview_job_completes_with_measured_metadata(tmp_path: Path) -> None:
    cloud = FakeCloud(
        messages=[pulled()],
        blobs={"/inputs/image.png": _png(), "/blobs/audio.wav": _wav()},
    )
    stop = threading.Event()
    cloud.on_call = lambda call: stop.set() if call.kind in ("complete", "fail") else None
    settings = agent_settings(tmp_path)
    assert cli.run_agent(settings, stop, transport=cloud.transport()) == 0

    assert cloud.bodies("fail") == []
    (complete,) = cloud.bodies("complete")
    result = complete["result"]
    video = cloud.uploads["/videos/out.mp4"]
    assert result["size_bytes"] == len(video) and video[4:8] == b"ftyp"
    assert abs(result["duration_seconds"] - 1.0) <= 0.04 + 1e-9  # one frame at 25 fps
    assert result["engine"] == "preview"
    assert result["width"] > 0 and result["height"] > 0
    progress = [body["progress"] for body in cloud.bodies("progress")]
    assert progress == sorted(progress)
    assert list(tmp_path.iterdir()) == []
