"""Media helpers: the lazily loaded probes and suffix sniffing."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from gpu_agent.probes import MediaProbes, sniff_suffix

from .conftest import PNG, WAV


def test_default_probes_come_from_infinitetalk_media(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("infinitetalk.media.probe")
    fake.probe_image = lambda path: "image"  # type: ignore[attr-defined]
    fake.probe_audio = lambda path: "audio"  # type: ignore[attr-defined]
    fake.probe_video = lambda path: "video"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "infinitetalk.media.probe", fake)
    import infinitetalk.media

    monkeypatch.setattr(infinitetalk.media, "probe", fake, raising=False)
    probes = MediaProbes.default()
    assert probes.probe_image(Path("x")) == "image"
    assert probes.probe_audio(Path("x")) == "audio"
    assert probes.probe_video(Path("x")) == "video"


@pytest.mark.parametrize(
    ("head", "suffix"),
    [
        (PNG, ".png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", ".jpg"),
        (WAV, ".wav"),
        (b"ID3\x04\x00\x00\x00", ".mp3"),
        (b"\xff\xfb\x90\x64", ".mp3"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", ""),
        (b"XXXX\x00\x00\x00\x00WAVE", ""),
        (b"GIF89a", ""),
        (b"", ""),
    ],
)
def test_sniff_suffix(tmp_path: Path, head: bytes, suffix: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(head)
    assert sniff_suffix(path) == suffix
