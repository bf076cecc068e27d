"""Shared by every test folder: the test layers, and helpers every package uses."""

import asyncio
import io
import math
import struct
import wave
import zlib
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from PIL import Image

if TYPE_CHECKING:
    from tests.edge_worker.cloudflare.fake_r2 import FakeR2

T = TypeVar("T")

# --- Test layers --------------------------------------------------------------------------
# Each test gets one layer marker (registered in pyproject's [tool.pytest.ini_options]) from
# where it lives, so `make test-fast` can select `unit or contract` without a marker on every
# test. A test that already carries a layer marker keeps it. tests/upstream_smoke runs in its
# own environment (scripts/upstream_smoke.sh) and is marked here without being imported by
# the main one.

TESTS = Path(__file__).resolve().parent
LAYER_BY_PATH = {
    "e2e": "e2e",
    "faults": "faults",
    "pyodide": "pyodide",
    "upstream_smoke": "upstream",
    "contracts_ports": "contract",
    "cf_bridge": "contract",
    "openapi": "e2e",  # a live local stack
    "browser": "browser",  # Chromium against a live local stack
    # Files elsewhere that run real processes, or a whole engine against the stand-in upstream:
    "infinitetalk/test_resident_engine.py": "e2e",  # a spawned model worker
    "infinitetalk/test_resident_worker.py": "e2e",  # the worker's whole job path, in-process
    "infinitetalk/test_subprocess_engine.py": "e2e",  # the stand-in upstream as a child
    "bench/test_gpu.py": "e2e",  # the whole bench as a process
    "bench/test_http_paths.py": "e2e",  # uvicorn servers under load
    "bench/test_device_check.py": "e2e",  # scripts/device_check.sh
    "bench/test_fanout.py": "e2e",  # an edge and sleep-engine agents as processes
    "edge_worker/cloudflare/test_pyodide_guard.py": "pyodide",  # a fresh interpreter each
}
LAYERS = frozenset({"unit", *LAYER_BY_PATH.values()})


def layer_of(path: Path) -> str:
    """The layer of a test file: the longest listed path above it decides, `unit` if none."""
    parts = path.resolve().relative_to(TESTS).parts
    for depth in range(len(parts), 0, -1):
        layer = LAYER_BY_PATH.get("/".join(parts[:depth]))
        if layer is not None:
            return layer
    return "unit"


def pytest_configure() -> None:
    """A moved or renamed file must not fall back to `unit` unnoticed."""
    missing = [path for path in LAYER_BY_PATH if not (TESTS / path).exists()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py LAYER_BY_PATH names missing paths: {missing}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(marker.name in LAYERS for marker in item.iter_markers()):
            item.add_marker(layer_of(item.path))


# --- end of test layers -------------------------------------------------------------------


# --- one S3 API server per session --------------------------------------------------------


@pytest.fixture(scope="session")
def fake_r2() -> Iterator["FakeR2"]:
    """moto's S3 server with R2's presigned-URL checks in front (fake_r2.py), shared by the
    R2 presigner, the S3 blob store, the blob-store contract and `avatar serve` tests."""
    from tests.edge_worker.cloudflare.fake_r2 import running_fake_r2  # moto: only when used

    with running_fake_r2() as r2:
        yield r2


# --- async calls from sync tests ---------------------------------------------------------


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


# --- small valid inputs -------------------------------------------------------------------


def png_bytes(size: tuple[int, int] = (96, 120)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 150, 120)).save(buf, "PNG")
    return buf.getvalue()


FACE = Path(__file__).resolve().parent / "fixtures" / "face.jpg"
"""A real face (the astronaut portrait scikit-image ships, public domain), 128 x 128."""


def two_faces_png(size: tuple[int, int] = (480, 240), side: int = 110) -> bytes:
    """Two copies of the real face, side by side on a plain background: two speakers."""
    width, height = size
    scene = Image.new("RGB", size, (90, 110, 130))
    with Image.open(FACE) as face:
        head = face.convert("RGB").resize((side, side))
    for centre in (width // 4, 3 * width // 4):
        scene.paste(head, (centre - side // 2, height // 2 - side // 2))
    buf = io.BytesIO()
    scene.save(buf, "PNG")
    return buf.getvalue()


def wav_bytes(seconds: float = 0.5, rate: int = 16000, tone_hz: float | None = None) -> bytes:
    """16-bit mono PCM: a constant level, or a sine when an engine must see the audio move."""
    frames = int(seconds * rate)
    if tone_hz is None:
        samples = b"\x00\x10" * frames
    else:
        step = 2 * math.pi * tone_hz / rate
        samples = b"".join(struct.pack("<h", int(8000 * math.sin(i * step))) for i in range(frames))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return buf.getvalue()


def mp3_bytes(seconds: int, *, rate: int = 8000, bitrate: int = 8000, xing: bool = True) -> bytes:
    """Silent mono MP3 from PyAV's LAME; at 8 kbit/s an hour is 3.6 MB (a long-audio attack).
    `xing=False` leaves out the Xing/Info header, so only the frames tell the length."""
    import av  # the agent's dependency: imported only by the tests that make MP3s
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3", options={} if xing else {"write_xing": "0"}) as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = bitrate
        silence = np.zeros((1, rate * 10), dtype=np.int16)
        for start in range(0, seconds * rate, rate * 10):
            frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def blank_png_bytes(width: int, height: int) -> bytes:
    """A transparent RGBA PNG written row by row: 8192x8192 is ~260 KB on disk and 256 MiB
    decoded (a decompression attack), without ever holding the decoded image in memory."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + 4 * width)  # filter byte 0, then transparent pixels
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def mp4_bytes(
    seconds: float = 1.0,
    size: tuple[int, int] = (96, 120),
    fps: int = 25,
    container: str = "mp4",
    faststart: bool = True,
) -> bytes:
    """A small H.264 video whose frames brighten one step each (so tests can tell frames
    apart by their level): `mp4` (faststart: `moov` first), `mov`, or `webm` (VP8)."""
    import tempfile

    options = {"movflags": "+faststart"} if faststart and container != "webm" else {}
    codec = "libvpx" if container == "webm" else "libx264"
    with tempfile.TemporaryDirectory() as scratch:  # faststart rewrites the file: no BytesIO
        path = Path(scratch) / f"video.{container}"
        _write_video(path, seconds, size, fps, container, codec, options)
        return path.read_bytes()


def _write_video(
    path: Path,
    seconds: float,
    size: tuple[int, int],
    fps: int,
    container: str,
    codec: str,
    options: dict[str, str],
) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w", format=container, options=options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        frames = max(1, round(seconds * fps))
        for index in range(frames):
            level = min(255, 40 + index * 200 // frames)
            pixels = np.full((size[1], size[0], 3), level, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
