"""The media probes, loaded lazily from `infinitetalk.media`."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from gpu_agent.probes import MediaProbes


def test_default_probes_come_from_infinitetalk_media(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("infinitetalk.media")
    fake.probe_image = lambda path: "image"  # type: ignore[attr-defined]
    fake.probe_audio = lambda path: "audio"  # type: ignore[attr-defined]
    fake.probe_video = lambda path: "video"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "infinitetalk.media", fake)
    import infinitetalk

    monkeypatch.setattr(infinitetalk, "media", fake, raising=False)
    probes = MediaProbes.default()
    assert probes.probe_image(Path("x")) == "image"
    assert probes.probe_audio(Path("x")) == "audio"
    assert probes.probe_video(Path("x")) == "video"
