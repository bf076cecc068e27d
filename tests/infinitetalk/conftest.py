"""Fixtures for the engine tests: media made on the fly by examples/make_examples.py."""

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from examples import make_examples


@pytest.fixture(scope="session")
def examples() -> ModuleType:
    return make_examples


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def portrait_png(examples: ModuleType, media_dir: Path) -> Path:
    return examples.make_portrait(media_dir / "portrait.png")


@pytest.fixture(scope="session")
def portrait_jpeg(portrait_png: Path, media_dir: Path) -> Path:
    path = media_dir / "portrait.jpg"
    with Image.open(portrait_png) as img:
        img.convert("RGB").save(path, format="JPEG", quality=90)
    return path


@pytest.fixture(scope="session")
def speech_wav(examples: ModuleType, media_dir: Path) -> Path:
    """Two seconds, 16 kHz mono: short enough to keep rendering tests fast."""
    return examples.make_speech_wav(media_dir / "speech.wav", seconds=2.0)


@pytest.fixture(scope="session")
def speech_mp3(examples: ModuleType, media_dir: Path) -> Path:
    return examples.make_speech_mp3(media_dir / "speech.mp3", seconds=2.0, channels=2)


@pytest.fixture
def write_bytes(tmp_path: Path) -> Callable[[str, bytes], Path]:
    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write


@pytest.fixture(scope="session")
def speech_7s(examples: ModuleType, media_dir: Path) -> Path:
    """Seven seconds: two chunks of upstream's streaming loop (175 frames)."""
    return examples.make_speech_wav(media_dir / "speech-7s.wav", seconds=7.0)


@pytest.fixture(scope="session")
def standin_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MODEL_STORAGE_PATH with every weight file (empty) the stand-in checks for."""
    from infinitetalk.settings import Quantization
    from tests.fixtures.standin import make_weights

    return make_weights(tmp_path_factory.mktemp("models"), Quantization.FP8)


@pytest.fixture
def standin_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let this process import the stand-in checkout (torch, wan, generate_infinitetalk)
    the way the model worker does, and forget those modules afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in list(sys.modules):
        if name.split(".")[0] in ("torch", "wan", "generate_infinitetalk"):
            del sys.modules[name]


@pytest.fixture(scope="session")
def speech_4s(examples: ModuleType, media_dir: Path) -> Path:
    """Four seconds: just over one chunk (100 frames), the cheapest two-chunk run."""
    return examples.make_speech_wav(media_dir / "speech-4s.wav", seconds=4.0)
