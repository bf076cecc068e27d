"""Media checks the agent runs around the engine, injectable for tests.

The real probes live in `infinitetalk.media.probe` (PyAV/Pillow); they are imported only when
a pipeline without explicit probes runs its first job, so importing the agent stays cheap.
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
