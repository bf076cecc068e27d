"""Media checks the agent runs around the engine, injectable for tests.

The real probes live in `infinitetalk.media.probe` (PyAV/Pillow); they are imported only when
a runner is built without explicit probes, so importing the agent stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class VideoFacts(Protocol):
    """What the agent reads from `probe_video`'s result."""

    @property
    def duration_seconds(self) -> float: ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


@dataclass(frozen=True)
class MediaProbes:
    """Each probe raises `infinitetalk.engine.InvalidInputError` on undecodable media."""

    probe_image: Callable[[Path], object]
    probe_audio: Callable[[Path], object]
    probe_video: Callable[[Path], VideoFacts]

    @classmethod
    def default(cls) -> MediaProbes:
        from infinitetalk.media import probe

        return cls(probe.probe_image, probe.probe_audio, probe.probe_video)


_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, ".png"),
    (b"\xff\xd8\xff", 0, ".jpg"),
    (b"WAVE", 8, ".wav"),
    (b"ID3", 0, ".mp3"),
)


def sniff_suffix(path: Path) -> str:
    """File suffix from the first bytes (PNG, JPEG, WAV, MP3), or "" when unknown.

    Downloads are stored under neutral names; a truthful suffix helps decoders (and
    upstream InfiniteTalk) that look at the name.
    """
    with path.open("rb") as handle:
        head = handle.read(16)
    for magic, offset, suffix in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            if suffix == ".wav" and not head.startswith(b"RIFF"):
                continue
            return suffix
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return ".mp3"  # an MPEG audio frame sync without an ID3 tag
    return ""
