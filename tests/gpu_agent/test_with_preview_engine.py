"""The agent with the real preview engine and real media probes (no fakes below the HTTP)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gpu_agent import cli
from tests.conftest import png_bytes, wav_bytes

from .conftest import FakeCloud, agent_settings, pulled


def test_preview_job_completes_with_measured_metadata(tmp_path: Path) -> None:
    cloud = FakeCloud(
        messages=[pulled()],
        blobs={
            "/inputs/image.png": png_bytes((128, 160)),
            "/blobs/audio.wav": wav_bytes(1.0, tone_hz=250),
        },
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


@pytest.mark.parametrize(
    ("setting", "code"),
    [("MAX_AUDIO_SECONDS", "AUDIO_TOO_LONG"), ("MAX_IMAGE_PIXELS", "IMAGE_TOO_LARGE")],
)
def test_the_agent_s_own_limits_fail_the_job(tmp_path: Path, setting: str, code: str) -> None:
    """What the edge judged by headers, the agent measures again with its own settings."""
    cloud = FakeCloud(
        messages=[pulled()],
        blobs={"/inputs/image.png": png_bytes((128, 160)), "/blobs/audio.wav": wav_bytes(1.0)},
    )
    stop = threading.Event()
    cloud.on_call = lambda call: stop.set() if call.kind in ("complete", "fail") else None
    limit = "0.5" if setting == "MAX_AUDIO_SECONDS" else str(128 * 160 - 1)
    settings = agent_settings(tmp_path, **{setting: limit})
    assert cli.run_agent(settings, stop, transport=cloud.transport()) == 0
    (failed,) = cloud.bodies("fail")
    assert (failed["code"], failed["retryable"]) == (code, False)
    assert cloud.bodies("complete") == []
