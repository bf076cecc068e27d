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

from contracts import SpeakerAssignment, SpeakerMode
from infinitetalk.engine import PreparedAudio, SpeakerTracks


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
    probe_video_input: Callable[[Path, Path, int, float], object] = (
        lambda video, frame, pixels, seconds: _probe_video_input(video, frame, pixels, seconds)
    )
    """`(video, first_frame, max_pixels, max_seconds)`: a video to dub decodes (its first
    frame written as a PNG) and fits the limits."""
    find_speakers: Callable[[Path], SpeakerAssignment] = lambda image: _find_speakers(image)
    prepare_speakers: Callable[
        [Path, Path, SpeakerMode, SpeakerAssignment, Path, float],
        tuple[Path, PreparedAudio, SpeakerTracks],
    ] = lambda first, second, mode, boxes, directory, seconds: _prepare_speakers(
        first, second, mode, boxes, directory, seconds
    )
    """A two-speaker job's one pass over both tracks: (mixed WAV, its pass, each speaker's)."""

    @classmethod
    def default(cls) -> MediaProbes:
        from infinitetalk.media import audio_pass, probe

        return cls(probe.probe_image, audio_pass.prepare_audio, probe.probe_video)


def _probe_video_input(video: Path, first_frame: Path, max_pixels: int, seconds: float) -> object:
    from infinitetalk.media.video_input import probe_video_input

    return probe_video_input(video, first_frame, max_pixels, seconds)


def _find_speakers(image: Path) -> SpeakerAssignment:
    from infinitetalk.media.faces import find_speakers

    return find_speakers(image)


def _prepare_speakers(
    first: Path,
    second: Path,
    mode: SpeakerMode,
    assignment: SpeakerAssignment,
    directory: Path,
    max_seconds: float,
) -> tuple[Path, PreparedAudio, SpeakerTracks]:
    from infinitetalk.media.speaker_tracks import prepare_speakers

    return prepare_speakers(first, second, mode, assignment, directory, max_seconds)
