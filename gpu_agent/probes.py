"""Media checks the agent runs around the engine, injectable for tests.

The real probes live in `infinitetalk.media.probe` (PyAV/Pillow) and the audio's one pass
in `infinitetalk.media.audio_pass`; they are imported only when a pipeline without explicit
probes runs its first job, so importing the agent stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from infinitetalk.engine import PreparedAudio


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
    """Each raises `infinitetalk.engine.InvalidInputError` on undecodable media.

    `probe_image(image, max_pixels)` judges the size before decoding.
    `prepare_audio(audio, directory, max_seconds)` is the job's one decode of its audio: it
    checks the audio and its length and writes what the engine needs from it under
    `directory`.
    """

    probe_image: Callable[[Path, int], object]
    prepare_audio: Callable[[Path, Path, float], PreparedAudio]
    probe_video: Callable[[Path], VideoFacts]

    @classmethod
    def default(cls) -> MediaProbes:
        from infinitetalk.media import audio_pass, probe

        return cls(probe.probe_image, audio_pass.prepare_audio, probe.probe_video)
