"""Shared by every test folder: the test layers, and helpers every package uses."""

import asyncio
import io
import math
import struct
import wave
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image

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
    # Files elsewhere that run real processes, or a whole engine against the stand-in upstream:
    "infinitetalk/test_resident_engine.py": "e2e",  # a spawned model worker
    "infinitetalk/test_resident_worker.py": "e2e",  # the worker's whole job path, in-process
    "infinitetalk/test_subprocess_engine.py": "e2e",  # the stand-in upstream as a child
    "bench/test_gpu.py": "e2e",  # the whole bench as a process
    "bench/test_http_paths.py": "e2e",  # uvicorn servers under load
    "bench/test_device_check.py": "e2e",  # scripts/device_check.sh
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


# --- async calls from sync tests ---------------------------------------------------------


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


# --- small valid inputs -------------------------------------------------------------------


def png_bytes(size: tuple[int, int] = (96, 120)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 150, 120)).save(buf, "PNG")
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
