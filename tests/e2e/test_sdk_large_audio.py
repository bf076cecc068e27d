"""Files above the inline cap: `AvatarClient().run()` with a 50 MiB WAV against an edge with
the Worker's 24 MiB inline cap completes, through `/uploads`, into a playable MP4."""

import time
import wave
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from avatar_client import AvatarClient
from contracts.media import MiB
from tests.e2e.conftest import API_KEY, EXAMPLES, Stack
from tests.e2e.test_upload_to_mp4 import check_mp4

WORKER_INLINE_CAP = 24 * MiB
# The most bytes per second of audio the preview engine takes (8 channels of 32-bit samples
# at 192 kHz, 6 MiB/s): 50 MiB is about 8.5 s, and its cost follows the duration.
RATE, CHANNELS, WIDTH = 192_000, 8, 4


def wav_of_size(path: Path, size: int) -> float:
    """A WAV of `size` bytes (less a partial frame); returns its duration in seconds."""
    frame = CHANNELS * WIDTH
    frames = (size - 44) // frame
    block = (b"\x00\x00\x00\x08" * CHANNELS + b"\x00\x00\x00\xf8" * CHANNELS) * 4096
    with wave.open(str(path), "wb") as w:
        w.setnchannels(CHANNELS)
        w.setsampwidth(WIDTH)
        w.setframerate(RATE)
        remaining = frames * frame
        while remaining > 0:
            piece = block[: min(len(block), remaining)]
            w.writeframes(piece)
            remaining -= len(piece)
    return frames / RATE


def test_a_50_mib_wav_completes_above_the_workers_inline_cap(
    stack_factory: Callable[..., Stack], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    audio = tmp_path / "long.wav"
    seconds = wav_of_size(audio, 50 * MiB)
    assert audio.stat().st_size > 50 * MiB - CHANNELS * WIDTH
    stack = stack_factory(MAX_INLINE_REQUEST_BYTES=str(WORKER_INLINE_CAP))
    stack.start_agent()
    monkeypatch.setenv("AVATAR_URL", stack.url)
    monkeypatch.setenv("AVATAR_API_KEY", API_KEY)
    sent: list[str] = []

    def record(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    with (
        httpx.Client(timeout=120, event_hooks={"request": [record]}) as http,
        AvatarClient(http=http) as client,
    ):
        job = client.run(EXAMPLES / "portrait.png", audio, "A long talk", resolution="480p")
        out = job.download(tmp_path / "long.mp4")
    # `/health` advertised the cap, so no inline attempt was made first.
    assert sent.count("POST /generate") == 1 and "POST /uploads" in sent
    check_mp4(out, seconds, 480)
    print(f"\n50 MiB WAV ({seconds:.1f} s of audio) to MP4 in {time.monotonic() - started:.1f} s")
